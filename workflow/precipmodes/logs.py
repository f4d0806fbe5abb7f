"""Logging for rule scripts: timestamps, progress and timing of long steps."""

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
