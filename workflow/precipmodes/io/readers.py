"""The readers of the accumulation's blocks: each reads the record's steps ``[i0, i1)`` of ``precip`` and
sums them to window totals (:func:`precipmodes.io.blockreader.window_sums`), for
:func:`precipmodes.steps.windowtotals.accumulate`.

Reading is mostly zlib decompression, which netCDF-C/HDF5 run under one lock per process, so the
threads of :class:`InProcessReader` take turns. :class:`ReaderProcesses` reads and sums the blocks in
worker processes instead (each opens the file itself and sends back only the window totals;
:mod:`precipmodes.io.blockreader` is the worker side).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Callable

import numpy as np
import xarray as xr

from precipmodes.errors import InputDataError, PrecipModesError
from precipmodes.io.blockreader import observed_steps, window_sums
from precipmodes.io.sources.values import DeferredChecks


class InProcessReader:
    """Reads blocks of ``precip`` in this process (from xarray's lazily loaded array: the reads of dask's
    threads take turns on netCDF's lock) and sums them; the interface of :class:`ReaderProcesses`."""

    def __init__(self, precip: xr.DataArray, checks: DeferredChecks | None = None):
        self.precip = precip.variable
        self.checks = checks

    def window_sums(self, i0: int, i1: int, segments: np.ndarray, take: np.ndarray, scale: np.ndarray | None,
                    steps: int, progress: Callable[[int], None]) -> tuple[np.ndarray, np.ndarray]:
        """:func:`~precipmodes.io.blockreader.window_sums` and
        :func:`~precipmodes.io.blockreader.observed_steps` of the record's steps ``[i0, i1)``, checked and
        cleaned first by ``checks`` when given; ``progress`` is told the number of windows summed."""
        block = self.precip[i0:i1].values
        if self.checks is not None:
            block = self.checks(block, i0, i1)
        sums = window_sums(block, segments, take, scale, steps)
        progress(take.size)
        return sums, observed_steps(block, segments, take)


class ReaderProcesses:
    """Reader processes (:mod:`precipmodes.io.blockreader`) that read blocks of ``precip`` from the NetCDF
    file ``path`` and sum them to windows.

    Each of ``processes`` readers opens the file once (chunk cache ``cache_bytes`` per variable) and
    sends back only the window totals (``steps`` times smaller than what it read), so the zlib
    decompression that one process runs under HDF5's lock runs in ``processes`` at once. They are
    plain subprocesses of ``python -m precipmodes.io.blockreader`` that import numpy and netCDF4 only:
    no re-import of the caller's main script (no ``if __name__ == "__main__":`` needed) and ~40 MB
    each. Use as a context manager; :meth:`window_sums` blocks until a reader is free and done (call
    it from dask threads). ``offset``: the file's step that is step 0 of the requests (a partition's first).
    """

    def __init__(self, path: str | os.PathLike, processes: int, cache_bytes: int, offset: int = 0):
        self.path, self.processes, self.offset = str(path), int(processes), int(offset)
        package_root = str(Path(__file__).resolve().parents[2])  # the folder holding precipmodes/
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                   PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
        self.readers: list[subprocess.Popen] = []
        self.stderr: dict[int, IO[bytes]] = {}  # by pid: what each reader wrote to its stderr
        self.idle: queue.Queue = queue.Queue()
        for _ in range(self.processes):
            stderr = tempfile.TemporaryFile()
            reader = subprocess.Popen([sys.executable, "-m", "precipmodes.io.blockreader", self.path,
                                       str(int(cache_bytes))],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env)
            self.stderr[reader.pid] = stderr
            self.readers.append(reader)
            self.idle.put(reader)

    def __enter__(self) -> ReaderProcesses:
        return self

    def __exit__(self, *exc_info) -> None:
        for reader in self.readers:
            with contextlib.suppress(OSError):
                reader.stdin.close()  # end of requests: the reader returns
        for reader in self.readers:
            try:
                reader.wait(timeout=30)
            except subprocess.TimeoutExpired:
                reader.kill()
                reader.wait()
            reader.stdout.close()
            self.stderr[reader.pid].close()

    def window_sums(self, i0: int, i1: int, segments: np.ndarray, take: np.ndarray, scale: np.ndarray | None,
                    steps: int, progress: Callable[[int], None]) -> tuple[np.ndarray, np.ndarray]:
        """:func:`~precipmodes.io.blockreader.window_sums` and :func:`~precipmodes.io.blockreader.observed_steps`
        of the record's steps ``[i0, i1)``, read and summed by a reader process; ``progress`` is told the
        number of windows summed."""
        reader = self.idle.get()
        try:
            pickle.dump((i0 + self.offset, i1 + self.offset, segments, take, scale, steps), reader.stdin,
                        protocol=pickle.HIGHEST_PROTOCOL)
            reader.stdin.flush()
            status, value = pickle.load(reader.stdout)
        except (OSError, EOFError, pickle.UnpicklingError) as exc:
            reader.kill()
            reader.wait()
            stderr = self.stderr[reader.pid]
            stderr.seek(0)
            said = stderr.read().decode(errors="replace").strip()[-2000:]
            raise PrecipModesError(
                f"accumulate: the reader process of {self.path} ended with status {reader.returncode} while "
                f"reading steps {i0}-{i1} ({type(exc).__name__}; a negative status is the signal, -9 e.g. "
                "killed for memory: give the rule more mem_mb or fewer threads, resources: {accumulate: "
                "{threads: 1}})" + (f"; it said:\n{said}" if said else "")
            ) from exc
        self.idle.put(reader)
        if status != "ok":
            raise InputDataError(f"{self.path}: reading precip steps {i0}-{i1} failed in a reader process:\n{value}")
        progress(take.size)
        return value
