"""Logging for rule scripts and API calls: timestamps, progress and timing of long steps.

API users see the INFO lines (progress of long calls included) with e.g.
``logging.basicConfig(level=logging.INFO)``; rule scripts get them through :func:`configure`.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import time
from pathlib import Path
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


RULE_DONE = re.compile(r"^\S+ \S+ INFO precipmodes: rule (\w+): done in ([0-9.]+) s$", re.M)


def timing_table(log_dir: str | Path, since: float | None = None) -> list[tuple[str, str, float]]:
    """``(rule, job log, seconds)`` of every job whose log under ``log_dir`` says it finished, slowest first.

    Read from the ``rule <name>: done in <s> s`` line that :func:`precipmodes.rulescript.rule_run`
    writes at the end of every job. With ``since`` (a POSIX time, e.g. when this run started) only the
    logs written since then: the jobs of this run, not those of earlier runs in the same folder (a job's
    log is rewritten when the job runs, so an older log belongs to an earlier run).
    """
    rows = []
    for path in sorted(Path(log_dir).rglob("*.log")):
        if since is not None and path.stat().st_mtime < since:
            continue
        for rule, seconds in RULE_DONE.findall(path.read_text(errors="replace")):
            rows.append((rule, str(path.relative_to(log_dir)), float(seconds)))
    return sorted(rows, key=lambda row: -row[2])


def write_timing_table(log_dir: str | Path, since: float | None = None) -> Path | None:
    """Write ``<log_dir>/timings.tsv`` (rule, log, seconds, share of the total) of the jobs logged ``since``
    (all when None; see :func:`timing_table`) and print it; None (and a line saying so) if no job logged."""
    rows = timing_table(log_dir, since)
    if not rows:
        print("precipmodes: no job ran in this run (everything was up to date)", file=sys.stderr)
        return None
    total = sum(seconds for *_, seconds in rows)
    lines = ["rule\tlog\tseconds\tshare"] + [f"{rule}\t{log}\t{seconds:.2f}\t{seconds / total:.3f}"
                                            for rule, log, seconds in rows]
    out = Path(log_dir) / "timings.tsv"
    out.write_text("\n".join(lines) + "\n")
    width = max(len(log) for _, log, _ in rows)
    print(f"precipmodes: time per job of this run ({len(rows)} jobs, {total:.1f} s of job time in all; {out}):",
          file=sys.stderr)
    for rule, log, seconds in rows:
        print(f"  {log:<{width}}  {seconds:8.2f} s  {100 * seconds / total:5.1f} %", file=sys.stderr)
    return out
