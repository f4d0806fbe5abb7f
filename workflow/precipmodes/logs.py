"""Logging for rule scripts and API calls: timestamps, progress and timing of long steps.

API users see the INFO lines (progress of long calls included) with e.g.
``logging.basicConfig(level=logging.INFO)``; rule scripts get them through :func:`configure`.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from typing import Iterator

LOGGER_NAME = "precipmodes"
log = logging.getLogger(LOGGER_NAME)


def configure(log_path: str | None = None, level: int = logging.INFO) -> logging.Logger:
    """Send ``precipmodes`` log records to stderr and, if given, to ``log_path``.

    Also installs :func:`log_uncaught` as ``sys.excepthook``: an exception that ends a rule
    script is written (type, message, traceback) to the rule's own log, not only to
    Snakemake's terminal, before the script exits non-zero.
    """
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    log.setLevel(level)
    log.handlers.clear()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        handlers.append(logging.FileHandler(log_path, mode="w"))
    for handler in handlers:
        handler.setFormatter(formatter)
        log.addHandler(handler)
    log.propagate = False
    sys.excepthook = log_uncaught
    return log


def log_uncaught(exc_type, exc_value, exc_traceback) -> None:
    """``sys.excepthook``: log an uncaught exception with its traceback (stderr and the log file)."""
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc_value, exc_traceback)
        return
    log.error("failed: %s: %s", exc_type.__name__, exc_value, exc_info=(exc_type, exc_value, exc_traceback))
    for handler in log.handlers:
        handler.flush()


@contextlib.contextmanager
def timed(step: str) -> Iterator[None]:
    """Log the start and the elapsed wall time of ``step`` (or how long it ran before it failed)."""
    start = time.perf_counter()
    log.info("%s: started", step)
    try:
        yield
    except BaseException:
        log.error("%s: failed after %.2f s", step, time.perf_counter() - start)
        raise
    log.info("%s: done in %.2f s", step, time.perf_counter() - start)


PROGRESS_EVERY_S = 10.0  # seconds between two progress lines of one long call (Progress)
progress_log = log.getChild("progress")  # not silenced by quiet(): a call whose inner fits are quiet still reports


@contextlib.contextmanager
def quiet(level: int = logging.WARNING) -> Iterator[None]:
    """Drop the package's own log records below ``level`` (e.g. the INFO lines of each refit of a bootstrap);
    :class:`Progress` lines (logger ``precipmodes.progress``) still pass."""
    def keep(record: logging.LogRecord) -> bool:
        return record.levelno >= level

    log.addFilter(keep)
    try:
        yield
    finally:
        log.removeFilter(keep)


class Progress:
    """Rate-limited progress of a long call at INFO: at most one line per ``every_s`` seconds (default
    :data:`PROGRESS_EVERY_S`), e.g. ``svd bootstrap: 40 of 200 resamples, 12.1 s, about 48 s left``."""

    def __init__(self, step: str, total: int, unit: str, every_s: float | None = None):
        self.step, self.total, self.unit = step, int(total), unit
        self.every_s = PROGRESS_EVERY_S if every_s is None else every_s
        self.done = 0
        self.start = self.last = time.perf_counter()

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more units done; log a line if ``every_s`` passed since the last one (not after the last unit:
        the call's own end line says it)."""
        self.done += n
        now = time.perf_counter()
        if self.done < self.total and now - self.last >= self.every_s:
            elapsed = now - self.start
            left = elapsed / self.done * (self.total - self.done)
            progress_log.info("%s: %d of %d %s, %.1f s, about %.0f s left", self.step, self.done, self.total,
                              self.unit, elapsed, left)
            self.last = now
