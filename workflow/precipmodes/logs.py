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
    """Send ``precipmodes`` log records to stderr and, if given, to ``log_path``."""
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
    return log


@contextlib.contextmanager
def timed(step: str) -> Iterator[None]:
    """Log the start and the elapsed wall time of ``step``."""
    start = time.perf_counter()
    log.info("%s: started", step)
    yield
    log.info("%s: done in %.2f s", step, time.perf_counter() - start)
