"""Chunked passes over the land-cell x window matrix: :class:`CellBlocks`, the scan, the BLAS limits.

The matrix ``X (cell, time)`` (an ``xarray.DataArray``, see :mod:`precipmodes.decomposition.matrix`; here only
its ``.data``, ``.shape`` and ``.dtype`` are read) is backed by numpy or by dask (e.g. ``open_netcdf(path,
chunks={"cell": 20000})``). :class:`CellBlocks` walks it in chunks of whole rows (cells x all windows): with
numpy data it slices views, with dask data every chunk is loaded by one task and all tasks of a pass run under
the current dask scheduler (threads, a local or a distributed cluster). Only one pass's per-chunk results are
held at once, so memory stays near ``chunk size x workers``.
"""

from __future__ import annotations

import contextlib
import functools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Sequence

import dask
import dask.array as da
import numpy as np
from threadpoolctl import ThreadpoolController

#: BLAS threads per dask task while several tasks of a pass run at once (None: leave BLAS as it is).
#: Each task multiplies one chunk; with w workers x b BLAS threads on w cores the threads fight
#: over the cores (benchmarks/bench_threads.py measures the cost).
TASK_BLAS_THREADS = 1


@functools.lru_cache(maxsize=1)
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


def _parallel_tasks() -> bool:
    """Whether dask runs several tasks at once: not the synchronous scheduler, nor ``num_workers = 1``.

    The BLAS limit is set in this process around the pass, so it reaches the threaded scheduler's
    tasks; workers of a distributed cluster are other processes and keep their own settings.
    """
    return _local_workers() > 1


def _local_workers() -> int:
    """Threads for the chunks of an in-memory pass: dask's ``num_workers`` (a rule's ``threads``,
    :func:`precipmodes.steps.rulescript.rule_run`), the CPU count when unset, 1 under the synchronous scheduler."""
    if dask.config.get("scheduler", None) in ("sync", "synchronous", "single-threaded"):
        return 1
    workers = dask.config.get("num_workers", None)
    return int(workers) if workers is not None else (os.cpu_count() or 1)


def _task_blas_limit():
    """BLAS limited to :data:`TASK_BLAS_THREADS` around a pass whose tasks run at once (None: left as it is)."""
    if TASK_BLAS_THREADS is None:
        return contextlib.nullcontext()
    return _blas_controller().limit(limits=TASK_BLAS_THREADS, user_api="blas")


class CellBlocks:
    """Chunks of whole rows of a ``(cell, time)`` matrix, for passes over the data.

    ``cell_chunk`` is the largest number of cells per chunk for numpy data, cut into
    ``ceil(cells / cell_chunk)`` chunks of equal size (within one cell: two workers then share a
    23,310-cell matrix evenly, not as 20,000 + 3,310); dask data keep their own cell chunks
    (rechunked to whole rows when the time axis is split). ``X``: the ``(cell, time)`` matrix, a DataArray
    (its ``.data``, numpy or dask, ``.shape`` and ``.dtype`` are read).
    """

    def __init__(self, X, cell_chunk: int = 20000):
        data = X.data
        self.shape = X.shape
        self.dtype = X.dtype
        if isinstance(data, da.Array):
            if len(data.chunks[1]) > 1:
                data = data.rechunk({0: data.chunks[0], 1: -1})
            self.lazy = True
            self._delayed = list(data.to_delayed()[:, 0])
            bounds = np.cumsum((0,) + data.chunks[0])
        else:
            self.lazy = False
            self._array = np.asarray(data)
            n_chunks = max(1, -(-self.shape[0] // max(1, cell_chunk)))
            bounds = np.linspace(0, self.shape[0], n_chunks + 1).round().astype(int)
        self.slices = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]

    def __len__(self) -> int:
        return len(self.slices)

    def map(self, func: Callable, *per_block: Sequence) -> list:
        """``[func(block_i, *(arg[i] for arg in per_block)) for each chunk i]``.

        ``block_i`` is the chunk as a numpy array ``(cells_i, time)``; each entry of
        ``per_block`` is a list with one argument per chunk (e.g. that chunk's rows of a
        factor). Dask chunks are loaded and processed by parallel tasks; in-memory chunks by
        :func:`_local_workers` threads when there are several chunks (the kernels release the GIL:
        numpy, BLAS, the compiled HALS sweeps). Either way the results come back in chunk order, so
        sums over them do not depend on the number of threads.
        """
        if not self.lazy:
            calls = [(self._array[s], *(arg[i] for arg in per_block)) for i, s in enumerate(self.slices)]
            workers = min(_local_workers(), len(calls))
            if workers == 1:
                return [func(*call) for call in calls]
            with _task_blas_limit(), ThreadPoolExecutor(workers, thread_name_prefix="precipmodes-pass") as pool:
                return list(pool.map(lambda call: func(*call), calls))
        tasks = [
            dask.delayed(func, pure=False)(block, *(arg[i] for arg in per_block))
            for i, block in enumerate(self._delayed)
        ]
        if not _parallel_tasks():
            return list(dask.compute(*tasks))
        with _task_blas_limit():
            return list(dask.compute(*tasks))

    def assign(self, flat_indices: Sequence[np.ndarray], values: Sequence[np.ndarray]) -> None:
        """Set each chunk's entries at its flat (row-major) indices, in place: numpy data only.

        For a private copy of a matrix (e.g. missing entries refilled by an EM loop).
        """
        if self.lazy:
            raise ValueError("CellBlocks.assign: dask-backed chunks cannot be written")
        for s, idx, v in zip(self.slices, flat_indices, values):
            self._array[s].reshape(-1)[idx] = v

    def split(self, array: np.ndarray) -> list[np.ndarray]:
        """Rows of ``array`` (leading dimension = cells) cut like the chunks."""
        return [array[s] for s in self.slices]


@dataclass
class MatrixScan:
    """What one pass over a matrix finds (all per cell unless stated). NaN = a missing entry."""

    infinite_cells: np.ndarray  # bool (cell,): some +-inf in the row
    infinite_windows: np.ndarray  # bool (time,)
    negative_cells: np.ndarray  # bool (cell,)
    negative_windows: np.ndarray  # bool (time,)
    nonzero_cells: np.ndarray  # bool (cell,): some observed value != 0
    row_sum: np.ndarray  # float64 (cell,): sum of the observed (finite) values
    observed_cells: np.ndarray  # int64 (cell,): number of observed entries in the row
    observed_windows: np.ndarray  # int64 (time,): number of observed entries in the column
    sum_squares: float  # float64 squared Frobenius norm of the observed entries

    @property
    def n_missing(self) -> int:
        """Number of NaN entries."""
        return int(self.observed_windows.size * self.observed_cells.size - self.observed_cells.sum())


def _scan_block(block: np.ndarray) -> tuple:
    finite = np.isfinite(block)
    infinite = np.isinf(block)
    negative = block < 0
    values = np.where(finite, block, 0).astype(np.float64, copy=False)
    return (
        infinite.any(axis=1),
        infinite.any(axis=0),
        negative.any(axis=1),
        negative.any(axis=0),
        (values != 0).any(axis=1),
        values.sum(axis=1),
        finite.sum(axis=1),
        finite.sum(axis=0),
        float(np.einsum("ij,ij->", values, values)),
    )


def scan(blocks: CellBlocks) -> MatrixScan:
    """One pass: infinite and negative cells/windows, all-zero cells, observed counts and sums, ||X||_F^2."""
    parts = blocks.map(_scan_block)
    return MatrixScan(
        infinite_cells=np.concatenate([p[0] for p in parts]),
        infinite_windows=np.logical_or.reduce([p[1] for p in parts]),
        negative_cells=np.concatenate([p[2] for p in parts]),
        negative_windows=np.logical_or.reduce([p[3] for p in parts]),
        nonzero_cells=np.concatenate([p[4] for p in parts]),
        row_sum=np.concatenate([p[5] for p in parts]),
        observed_cells=np.concatenate([p[6] for p in parts]).astype(np.int64),
        observed_windows=np.sum([p[7] for p in parts], axis=0).astype(np.int64),
        sum_squares=float(sum(p[8] for p in parts)),
    )


MODEL_PIECE = 8192  # entries per piece of low_rank_at: two (piece, k) float64 gathers stay in cache


def low_rank_at(left: np.ndarray, right: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``(left right^T)[rows, cols]`` for ``left (m, k)``, ``right (n, k)``: float64 ``(n_entries,)``.

    Gathers whole rows of both factors (contiguous k-vectors), :data:`MODEL_PIECE` entries
    at a time: 2.5x faster at the seed's size than one gather of them all (which no longer
    fits in cache) or a gather of factor columns (strided).
    """
    left = np.ascontiguousarray(left, dtype=np.float64)
    right = np.ascontiguousarray(right, dtype=np.float64)
    out = np.empty(rows.size)
    for start in range(0, rows.size, MODEL_PIECE):
        piece = slice(start, start + MODEL_PIECE)
        np.einsum("ik,ik->i", left[rows[piece]], right[cols[piece]], out=out[piece])
    return out


def missing_indices(blocks: CellBlocks) -> list[np.ndarray]:
    """Per chunk, the flat (row-major) indices of its NaN entries (int64)."""
    return blocks.map(lambda block: np.flatnonzero(np.isnan(block)))
