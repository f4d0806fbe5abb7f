"""Window sums of blocks of a record, and the reader process that computes them from a NetCDF file.

:func:`window_sums` is the accumulation's arithmetic (:class:`precipmodes.io.readers.InProcessReader` calls
it on the blocks it reads itself). Run as a module, this is one reader process of
:class:`precipmodes.io.readers.ReaderProcesses`::

    python -m precipmodes.io.blockreader PATH CACHE_BYTES

It opens ``precip(time, lat, lon)`` (float32, or int16 packed) of the NetCDF file ``PATH`` with a
netCDF-C chunk cache of ``CACHE_BYTES``, then answers requests until its standard input ends: each
request is a pickled ``(i0, i1, segments, take, scale, steps)``, each answer a pickled ``("ok", (sums,
observed))`` (float32 ``(len(take), lat, lon)``, mm per window, and :func:`observed_steps` of the steps
read) or ``("error", traceback_text)``. Values equal to the
variable's ``_FillValue`` or ``missing_value`` are read as NaN and packed values unpacked, as xarray
decodes them; the file is reopened every :data:`REOPEN_STEPS` steps read, so that memory stays flat in
record length. It imports numpy and netCDF4 only (42 MB resident against ~115 MB for xarray and dask),
so the processes that decompress the input side by side stay small.
"""

from __future__ import annotations

import os
import pickle
import sys
import traceback

import numpy as np

from precipmodes.io.allocator import release_freed_memory

PIECE_BYTES = 8 * 2**20  # steps read at a time by a reader process, for blocks of complete windows
REOPEN_STEPS = 4096  # steps a reader process reads before it reopens the file (_StoredPrecip)


def back_to_back(n_steps: int, segments: np.ndarray, steps: int) -> bool:
    """Whether ``n_steps`` steps are exactly complete windows of ``steps`` starting at ``segments``."""
    return n_steps == segments.size * steps and np.array_equal(segments, np.arange(segments.size) * steps)


def window_sums(block: np.ndarray, segments: np.ndarray, take: np.ndarray,
                scale: np.ndarray | None, steps: int) -> np.ndarray:
    """Sums of ``block(step, lat, lon)`` over the runs starting at ``segments``; rows ``take``; float32.

    ``scale`` (one factor per kept window, or None) turns the sum of a window's present steps into the
    window total estimate. Complete back-to-back windows (the usual case) are summed as a reshape-sum,
    about 10x faster than ``np.add.reduceat``, which handles blocks with gaps.
    """
    if back_to_back(block.shape[0], segments, steps):
        sums = block.reshape((segments.size, steps) + block.shape[1:]).sum(axis=1)[take]
    else:
        sums = np.add.reduceat(block, segments, axis=0)[take]
    if scale is not None:
        sums *= scale[:, None, None]
    return sums.astype(np.float32, copy=False)


def observed_steps(block: np.ndarray, segments: np.ndarray | None = None,
                   take: np.ndarray | None = None) -> np.ndarray:
    """Steps with a value (not NaN) per cell of ``block(step, lat, lon)``, int32 ``(lat, lon)``; with
    ``segments`` and ``take`` (as :func:`window_sums` takes them) only the steps of the windows taken."""
    if segments is not None:
        ends = np.append(segments[1:], block.shape[0])
        rows = np.concatenate([np.arange(segments[t], ends[t]) for t in take] or [np.array([], int)])
        if rows.size != block.shape[0]:
            block = block[rows]
    return (block.shape[0] - np.isnan(block).sum(axis=0, dtype=np.int32)).astype(np.int32, copy=False)


def streamed_window_sums(read, i0: int, windows: int, steps: int, piece_steps: int,
                         observed: np.ndarray | None = None) -> np.ndarray:
    """Sums of ``windows`` back-to-back complete windows of ``steps`` steps from step ``i0``, float32.

    ``read(j0, j1)`` returns steps ``[j0, j1)`` as float32 ``(step, lat, lon)``; they are read
    ``piece_steps`` at a time and added map after map in record order, which is the order in which
    :func:`window_sums`' reshape-sum adds them (so the totals are the same), without holding a
    window's steps at once. ``observed``, when given, has :func:`observed_steps` of the pieces added to it.
    """
    sums = None
    for w in range(windows):
        total = None
        for j0 in range(i0 + w * steps, i0 + (w + 1) * steps, piece_steps):
            piece = read(j0, min(j0 + piece_steps, i0 + (w + 1) * steps))
            if observed is not None:
                observed += observed_steps(piece)
            start = 0
            if total is None:
                total, start = piece[0].copy(), 1
            for k in range(start, piece.shape[0]):
                total += piece[k]
        if sums is None:
            sums = np.empty((windows,) + total.shape, np.float32)
        sums[w] = total
    return sums


def fill_values(var) -> list:
    """The non-NaN ``_FillValue`` and ``missing_value`` of a netCDF4 variable (read as NaN)."""
    values = []
    for name in ("_FillValue", "missing_value"):
        if name in var.ncattrs():
            values.extend(v for v in np.atleast_1d(var.getncattr(name)) if not np.isnan(v))
    return values


class _StoredPrecip:
    """``precip`` of the NetCDF file ``path`` read as xarray decodes it: float32, NaN for the
    ``_FillValue``/``missing_value``, unpacked with float32 ``scale_factor``/``add_offset``.

    Reopened every :data:`REOPEN_STEPS` steps read (:meth:`refresh`): while the file is open HDF5 keeps
    bookkeeping for every chunk read, which would grow with the record (4 years of hourly maps in
    one-map chunks: ~7 MB per reader).
    """

    def __init__(self, path: str):
        self.path, self.nc = path, None
        self.open()

    def open(self) -> None:
        import netCDF4

        self.nc = netCDF4.Dataset(self.path)
        self.var = self.nc["precip"]
        self.var.set_auto_maskandscale(False)
        self.fills = fill_values(self.var)
        self.scale_factor, self.add_offset = (np.float32(self.var.getncattr(a)) if a in self.var.ncattrs()
                                              else None for a in ("scale_factor", "add_offset"))
        self.map_bytes = 4 * int(np.prod(self.var.shape[1:]))
        self.steps_read = 0

    def close(self) -> None:
        if self.nc is not None:
            self.nc.close()
            self.nc = None

    def refresh(self) -> None:
        """Reopen the file once :data:`REOPEN_STEPS` steps were read since it was opened."""
        if self.steps_read >= REOPEN_STEPS:
            self.close()
            release_freed_memory()
            self.open()

    def read(self, j0: int, j1: int) -> np.ndarray:
        stored = self.var[j0:j1]
        self.steps_read += j1 - j0
        block = np.asarray(stored, dtype=np.float32)
        for fill in self.fills:  # in stored units, before unpacking (CF)
            block[stored == fill] = np.nan
        if self.scale_factor is not None:  # float32 arithmetic in xarray's order: what it decodes, bit for bit
            block *= self.scale_factor
        if self.add_offset is not None:
            block += self.add_offset
        return block


def serve(path: str, cache_bytes: int, requests, answers, piece_bytes: int = PIECE_BYTES) -> None:
    """Answer pickled requests from the binary stream ``requests`` on ``answers`` until it ends.

    Blocks of complete back-to-back windows are read ``piece_bytes`` at a time
    (:func:`streamed_window_sums`); others whole (:func:`window_sums`).
    """
    import netCDF4

    _, elements, preemption = netCDF4.get_chunk_cache()
    netCDF4.set_chunk_cache(int(cache_bytes), elements, preemption)
    precip = _StoredPrecip(path)
    try:
        while True:
            try:
                i0, i1, segments, take, scale, steps = pickle.load(requests)
            except EOFError:
                return
            try:
                precip.refresh()
                complete = (back_to_back(i1 - i0, segments, steps) and scale is None
                            and np.array_equal(take, np.arange(segments.size)))
                if complete:
                    observed = np.zeros(precip.var.shape[1:], np.int32)
                    sums = streamed_window_sums(precip.read, i0, segments.size, steps,
                                                max(1, piece_bytes // precip.map_bytes), observed)
                else:
                    block = precip.read(i0, i1)
                    sums = window_sums(block, segments, take, scale, steps)
                    observed = observed_steps(block, segments, take)
                answer = ("ok", (sums, observed))
            except Exception:  # sent to the parent, which raises it with the file and steps named
                answer = ("error", traceback.format_exc())
            pickle.dump(answer, answers, protocol=pickle.HIGHEST_PROTOCOL)
            answers.flush()
    finally:
        precip.close()


def main(argv: list[str]) -> int:
    path, cache_bytes = argv
    answers = os.fdopen(os.dup(1), "wb")  # the protocol's channel; anything printed goes to stderr
    os.dup2(2, 1)
    serve(path, int(cache_bytes), sys.stdin.buffer, answers)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
