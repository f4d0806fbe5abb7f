"""Gap-aware window totals (e.g. 72-hour sums) of the canonical raw precipitation.

Windows start at ``anchor + k * hours`` (k any integer) and are labelled by their
start; every input step (labelled by its start, with a constant length taken
from ``time_bnds``) belongs to exactly one window. A window's *completeness* is
the fraction of its steps present in the record:

* windows with completeness < ``min_completeness`` are dropped and counted
  (attribute ``n_windows_dropped``, their starts in ``dropped_window``); they are never filled with zeros, so no
  window bridges a gap in the record unless the gap is within the allowance;
* kept windows that miss steps (only when ``min_completeness < 1``) are totalled
  as ``sum of present steps / completeness``: the mean rate over the present
  steps times the window length, an estimate of the full-window amount;
* a cell that is NaN in any present step is NaN in the window total (sea stays NaN).

The computation streams: the record is cut into blocks of whole windows (about
``block_mb`` = :data:`BLOCK_MB` of input each, at least one window), each block is read once and summed (a
reshape-sum for back-to-back complete windows, ``numpy.add.reduceat`` across
gaps); the result is a dask-backed dataset, so
:func:`precipmodes.io.netcdf.write_netcdf` writes it block by block with memory
flat in the record length.

Reading is mostly zlib decompression, which netCDF-C/HDF5 run under one lock per process, so
threads take turns. :class:`ReaderProcesses` reads and sums the blocks in worker processes
instead (each opens the file itself and sends back only the window totals); the rule uses them
when it has more than one thread and the input is large (:data:`READER_PROCESSES_MIN_MB`).
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import queue
import subprocess
import sys
import tempfile
import threading
import uuid
import time as _time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Mapping

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from precipmodes.io.allocator import release_freed_memory
from precipmodes.io.blockreader import observed_steps, window_sums
from precipmodes.config import iso_utc, parse_instant
from precipmodes.errors import InputDataError, PrecipModesError
from precipmodes.logs import log, timed
from precipmodes.io.sources.values import DeferredChecks, ValuesRefused, check_window_totals, step_limit
from precipmodes.io.netcdf import chunk_cache, open_netcdf, stream_cache_bytes, values_in_slices, write_netcdf
from precipmodes.io.encoding import chunk_row_bytes, chunk_sizes

ALREADY_ACCUMULATED_ATTR = "precipmodes_already_accumulated_hours"
BLOCK_MB = 32.0  # MB of input per block: 686 -> 461 MiB peak RSS from 128 MB, same speed (bench_accumulate_cdo)
SEED_ANCHOR = "2005-12-31T15:00Z"  # 00:00 JST, where the seed's 72-hour windows start
#: decoded input size (MB) from which accumulate_files reads in worker processes when given more than
#: one thread; below it, starting the processes costs more than it saves
READER_PROCESSES_MIN_MB = 256.0
ALIGN_GROWTH = 4  # how far a block may grow beyond block_mb to end on a chunk boundary (_blocks)
OBSERVED_ATTRS = {"long_name": "number of input steps with a value (not missing) at the cell, in the kept windows",
                  "units": "1"}


@dataclass
class WindowPlan:
    """Which record steps make which window.

    ``start``: window starts (datetime64[ns], one per window touched by the record);
    ``first``/``count``: index of the window's first step in the record and number
    of its steps present; ``steps``: steps per full window; ``kept``: completeness
    >= min_completeness.
    """

    start: np.ndarray
    first: np.ndarray
    count: np.ndarray
    steps: int
    kept: np.ndarray

    @property
    def completeness(self) -> np.ndarray:
        return self.count / self.steps


def step_length(ds: xr.Dataset, origin: str = "raw dataset") -> np.timedelta64:
    """The constant length of the input steps, from ``time_bnds`` (or the time spacing)."""
    if "time_bnds" in ds.variables:
        bounds = values_in_slices(ds["time_bnds"])
        lengths = np.unique(bounds[:, 1] - bounds[:, 0])
    else:
        lengths = np.unique(np.diff(ds["time"].values))
    if lengths.size != 1 or lengths[0] <= np.timedelta64(0, "ns"):
        raise InputDataError(
            f"{origin}: time steps have different lengths {sorted(set(map(str, lengths)))[:5]}; "
            "accumulate needs a constant input step (resample the source to one step length first)"
        )
    return lengths[0].astype("timedelta64[ns]")


def plan_windows(time: np.ndarray, step: np.timedelta64, hours: int, anchor: np.datetime64,
                 min_completeness: float, origin: str = "raw dataset") -> WindowPlan:
    """Assign the record's steps (``time``: ascending starts) to windows of ``hours``.

    Raises InputDataError when ``hours`` is not a multiple of the step or a step
    does not start on the window grid defined by ``anchor``.
    """
    step_ns = int(np.timedelta64(step, "ns").astype(np.int64))
    window_ns = hours * 3_600_000_000_000
    step_text = _duration_text(step_ns)
    if window_ns % step_ns:
        raise InputDataError(
            f"accumulation.hours: {hours} h is not a multiple of the input step {step_text} of the "
            f"{origin}; choose a multiple of {step_text}"
        )
    offsets = (time.astype("datetime64[ns]") - np.datetime64(anchor, "ns")).astype(np.int64)
    misaligned = np.flatnonzero(offsets % step_ns)
    if misaligned.size:
        raise InputDataError(
            f"accumulation.anchor: {iso_utc(anchor)} UTC is not aligned with the {step_text} steps of the "
            f"{origin} (e.g. the step starting {iso_utc(time[misaligned[0]])} UTC); choose an anchor on a step "
            "start, or use 'auto' or 'first'"
        )
    index = offsets // window_ns
    windows, first, count = np.unique(index, return_index=True, return_counts=True)
    steps = window_ns // step_ns
    start = np.datetime64(anchor, "ns") + (windows * window_ns).astype("timedelta64[ns]")
    kept = count >= steps * min_completeness - 1e-9
    return WindowPlan(start=start, first=first, count=count, steps=int(steps), kept=kept)


def resolve_anchor(time: np.ndarray, step: np.timedelta64, anchor: str = "auto") -> tuple[np.datetime64, str]:
    """The window anchor (naive UTC datetime64[ns]) for the record's step starts ``time`` and a reason.

    ``anchor`` is an ISO-8601 instant with offset, ``"first"`` (the first step) or ``"auto"``:
    the seed's 00:00 JST (:data:`SEED_ANCHOR`, 15:00 UTC) when it lies on the step grid
    ``time[0] + k * step``, else the first step that starts at 00:00 UTC, else the first step.
    """
    time = np.asarray(time).astype("datetime64[ns]")
    if anchor == "first":
        return time[0], "first: the first time step"
    if anchor != "auto":
        return parse_instant(anchor), "given"
    step_ns = int(np.timedelta64(step, "ns").astype(np.int64))
    seed = parse_instant(SEED_ANCHOR)
    if int((seed - time[0]).astype("timedelta64[ns]").astype(np.int64)) % step_ns == 0:
        return seed, "auto: the seed's 00:00 JST (15:00 UTC) lies on the step grid"
    midnight = np.flatnonzero(time == time.astype("datetime64[D]").astype("datetime64[ns]"))
    if midnight.size:
        return time[midnight[0]], "auto: the first time step at 00:00 UTC (15:00 UTC is off the step grid)"
    return time[0], "auto: the first time step (neither 15:00 UTC nor 00:00 UTC is on the step grid)"


def accumulate(ds: xr.Dataset, hours: int = 72, anchor: str = "auto",
               min_completeness: float = 1.0, block_mb: float = BLOCK_MB,
               origin: str = "raw dataset", readers: ReaderProcesses | None = None,
               step: np.timedelta64 | None = None, partition: bool = False,
               checks: DeferredChecks | None = None) -> xr.Dataset:
    """Window totals of canonical ``ds.precip(time, lat, lon)`` (mm per step).

    Returns a dask-backed dataset: ``precip(time, lat, lon)`` float32 mm per window
    (``time`` = window start), ``time_bnds(time, nv)``, ``completeness(time)``, with
    attributes ``n_windows_dropped``, ``min_completeness``, ``accumulation_hours``.
    ``anchor`` is an ISO-8601 instant with offset, ``"first"`` or ``"auto"`` (:func:`resolve_anchor`;
    the anchor used is the attribute ``accumulation_anchor``, the rule that chose it
    ``accumulation_anchor_rule``). ``block_mb`` bounds the input read at once (whole windows per block).
    ``step``: the input's step length when already known (:func:`step_length`; else found here).
    ``partition``: ``ds`` is one partition of a record (:func:`accumulate_files`): it may hold no complete
    window (the record as a whole is checked when the partitions are read, :func:`precipmodes.steps.totals.open_totals`).
    ``checks``: the values of ``ds`` are not checked yet; each block read is checked and cleaned by
    :class:`~precipmodes.io.sources.values.DeferredChecks` (judged once the result is computed; attribute
    ``n_blocks_read``).
    """
    if ds.attrs.get(ALREADY_ACCUMULATED_ATTR) is not None:
        return _pass_through(ds, hours, origin)
    time = ds["time"].values.astype("datetime64[ns]")
    step = step_length(ds, origin) if step is None else step
    anchor_time, anchor_rule = resolve_anchor(time, step, anchor)
    log.info("accumulate: windows anchored at %sZ (%s)", iso_utc(anchor_time), anchor_rule)
    plan = plan_windows(time, step, hours, anchor_time, min_completeness, origin)
    kept = np.flatnonzero(plan.kept)
    if kept.size == 0 and not partition:
        raise no_window_error(origin, hours, min_completeness, plan.completeness)
    precip = ds["precip"]
    cell_bytes = 4 * precip.sizes["lat"] * precip.sizes["lon"]
    windows_per_block = max(1, int(block_mb * 2**20 // (cell_bytes * plan.steps)))
    chunk_steps = (precip.encoding.get("chunksizes") or (1,))[0]  # of a NetCDF input, along time
    blocks = _blocks(plan, kept, windows_per_block, int(chunk_steps))
    reader = readers if readers is not None else _InProcessReader(precip, checks)
    progress = _Progress(int(kept.size))
    graph_id = uuid.uuid4().hex  # the blocks are computed once: unique keys, no hashing of the data
    pieces, observed = [], []
    for number, (i0, i1, windows) in enumerate(blocks):
        inside = np.flatnonzero((plan.first >= i0) & (plan.first < i1))
        segments = plan.first[inside] - i0
        take = np.searchsorted(inside, windows)
        scale = (plan.steps / plan.count[windows]).astype(np.float32)
        scale = None if np.all(scale == 1) else scale
        # plain arguments, not dask chunks of the input: a dask collection inside a delayed call makes
        # dask import distributed (~60 MB resident) to build the graph
        total, count = dask.delayed(reader.window_sums, nout=2)(
            i0, i1, segments, take, scale, plan.steps, progress, dask_key_name=f"accumulate-block-{number}-{graph_id}")
        pieces.append(da.from_delayed(total, shape=(windows.size,) + precip.shape[1:], dtype=np.float32))
        observed.append(da.from_delayed(count, shape=precip.shape[1:], dtype=np.int32))
    totals = da.concatenate(pieces, axis=0) if kept.size else da.zeros((0,) + precip.shape[1:], np.float32)
    # computed with the totals, from the same reads: the data_nan land mask's counts
    observed = da.stack(observed).sum(axis=0, dtype=np.int32) if observed else da.zeros(precip.shape[1:], np.int32)
    starts = plan.start[kept]
    window = np.timedelta64(hours, "h").astype("timedelta64[ns]")
    out = xr.Dataset(
        {
            "precip": (("time", "lat", "lon"), totals, _totals_attrs(precip.attrs, hours)),
            "time_bnds": (("time", "nv"), np.stack([starts, starts + window], axis=1)),
            "completeness": ("time", plan.completeness[kept].astype(np.float32), {
                "long_name": "fraction of the window's input steps present in the record",
                "units": "1",
            }),
            "n_observed_steps": (("lat", "lon"), observed, OBSERVED_ATTRS),
            "dropped_window_completeness": ("dropped_window", plan.completeness[~plan.kept].astype(np.float32), {
                "long_name": "fraction of the dropped window's input steps present in the record",
                "units": "1",
            }),
        },
        coords={"time": ("time", starts, {"long_name": "start of the window", "bounds": "time_bnds",
                                          "standard_name": "time"}),
                "dropped_window": ("dropped_window", plan.start[~plan.kept], {
                    "long_name": "start of a window that overlaps the record but misses steps "
                                 "(completeness below min_completeness; not in precip)"}),
                "lat": ds["lat"], "lon": ds["lon"]},
        attrs={key: value for key, value in ds.attrs.items() if key in ("source", "title", "history")},
    )
    if checks is not None:
        out.attrs["n_blocks_read"] = len(blocks)
    dropped = int(np.count_nonzero(~plan.kept))  # windows touched by the record but too incomplete
    out.attrs.update(
        accumulation_hours=hours,
        accumulation_anchor=iso_utc(anchor_time) + "Z",
        accumulation_anchor_rule=anchor_rule,
        input_step_hours=hours / plan.steps,
        min_completeness=float(min_completeness),
        n_windows=int(kept.size),
        n_windows_dropped=dropped,
        incomplete_window_totals="sum of present steps / completeness (only when min_completeness < 1)",
    )
    return out


def no_window_error(origin: str, hours: int, min_completeness: float, completeness: np.ndarray) -> InputDataError:
    """The error of a record without a complete window (``completeness``: of the windows it touches)."""
    return InputDataError(
        f"{origin}: no {hours}-hour window reaches accumulation.min_completeness={min_completeness} "
        f"(best completeness {completeness.max() if completeness.size else 0:.3f}); lower "
        "accumulation.min_completeness or check the record for gaps")


class _InProcessReader:
    """Reads blocks of ``precip`` in this process (from xarray's lazily loaded array: the reads of dask's
    threads take turns on netCDF's lock) and sums them; the interface of :class:`ReaderProcesses`."""

    def __init__(self, precip: xr.DataArray, checks: DeferredChecks | None = None):
        self.precip = precip.variable
        self.checks = checks

    def window_sums(self, i0: int, i1: int, segments: np.ndarray, take: np.ndarray,
                    scale: np.ndarray | None, steps: int, progress: _Progress) -> tuple[np.ndarray, np.ndarray]:
        """:func:`~precipmodes.io.blockreader.window_sums` and
        :func:`~precipmodes.io.blockreader.observed_steps` of the record's steps ``[i0, i1)``, checked and
        cleaned first by ``checks`` when given."""
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
        package_root = str(Path(__file__).resolve().parent.parent)
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

    def window_sums(self, i0: int, i1: int, segments: np.ndarray, take: np.ndarray,
                    scale: np.ndarray | None, steps: int, progress: _Progress) -> tuple[np.ndarray, np.ndarray]:
        """:func:`~precipmodes.io.blockreader.window_sums` and :func:`~precipmodes.io.blockreader.observed_steps`
        of the record's steps ``[i0, i1)``, read and summed by a reader process."""
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


def _blocks(plan: WindowPlan, kept: np.ndarray, windows_per_block: int,
            chunk_steps: int = 1) -> list[tuple[int, int, np.ndarray]]:
    """Group kept windows into record ranges ``[i0, i1)`` of at most ``windows_per_block`` windows' steps.

    ``chunk_steps``: the input's chunk length along time. A block is then cut, where it can be, at a
    window end that is also a chunk boundary, and may grow to the period at which the two coincide
    (lcm of window and chunk length, if at most :data:`ALIGN_GROWTH` x the block): a chunk shared by two
    blocks is decompressed twice when the blocks go to different reader processes (the seed-scale demo,
    12-step windows in 32-step chunks, 2 readers: 16.1 s with 72-step blocks, 10.6 s with 312-step ones).
    """
    if not len(kept):
        return []
    limit = windows_per_block * plan.steps
    period = int(np.lcm(plan.steps, chunk_steps))
    if chunk_steps > 1 and period <= ALIGN_GROWTH * limit:
        limit = max(limit, period)
    blocks, current = [], []
    for w in kept:
        w = int(w)
        if current and plan.first[w] + plan.count[w] - plan.first[current[0]] > limit:
            ends = plan.first[current] + plan.count[current]
            aligned = np.flatnonzero(ends % chunk_steps == 0) if chunk_steps > 1 else np.array([], int)
            cut = int(aligned[-1]) + 1 if aligned.size else len(current)
            blocks.append(current[:cut])
            current = current[cut:]
        current.append(w)
    blocks.append(current)
    return [(int(plan.first[b[0]]), int(plan.first[b[-1]] + plan.count[b[-1]]), np.asarray(b)) for b in blocks]


def _totals_attrs(raw_attrs: Mapping, hours: int) -> dict:
    attrs = {key: raw_attrs[key] for key in ("standard_name", "units") if key in raw_attrs}
    attrs.setdefault("standard_name", "lwe_thickness_of_precipitation_amount")
    attrs.setdefault("units", "mm")
    attrs["long_name"] = f"{hours}-hour precipitation total"
    attrs["cell_methods"] = f"time: sum (interval: {hours} hours)"
    return attrs


def _pass_through(ds: xr.Dataset, hours: int, origin: str) -> xr.Dataset:
    """Raw data that already holds totals of ``hours`` (seed_binary): unchanged, completeness 1."""
    have = int(ds.attrs[ALREADY_ACCUMULATED_ATTR])
    if have != hours:
        raise InputDataError(
            f"{origin}: holds {have}-hour totals already (attribute {ALREADY_ACCUMULATED_ATTR}), but "
            f"accumulation.hours is {hours}; set accumulation.hours: {have}"
        )
    out = ds.chunk({"time": 32, "lat": -1, "lon": -1})
    out["precip"].attrs = _totals_attrs(ds["precip"].attrs, hours)
    out["n_observed_steps"] = ds["precip"].notnull().sum("time").astype(np.int32)
    out["n_observed_steps"].attrs = OBSERVED_ATTRS
    out["completeness"] = ("time", np.ones(ds.sizes["time"], np.float32),
                           {"long_name": "fraction of the window's input steps present in the record",
                            "units": "1"})
    out.attrs.update(accumulation_hours=hours, min_completeness=1.0, n_windows=int(ds.sizes["time"]),
                     n_windows_dropped=0,
                     comment="input already held window totals; passed through unchanged")
    return out


class _Progress:
    """Logs windows done / total and the elapsed time as blocks are computed (thread-safe)."""

    def __init__(self, total: int, every_s: float = 10.0):
        self.total, self.every_s = total, every_s
        self.done, self.lock = 0, threading.Lock()
        self.t0 = self.last = _time.perf_counter()

    def __getstate__(self) -> dict:  # process workers (dask.cluster: local/slurm) get a copy without the lock
        return {key: value for key, value in self.__dict__.items() if key != "lock"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, lock=threading.Lock())

    def __call__(self, windows: int) -> None:
        with self.lock:
            self.done += windows
            now = _time.perf_counter()
            if now - self.last >= self.every_s or self.done == self.total:
                self.last = now
                log.info("accumulate: %d / %d windows (%.0f%%), %.1f s", self.done, self.total,
                         100.0 * self.done / self.total, now - self.t0)


def record_plan(time: np.ndarray, step: np.timedelta64, accumulation: Mapping,
                origin: str) -> tuple[np.datetime64, str, WindowPlan]:
    """The anchor (:func:`resolve_anchor`), how it was chosen, and the windows of the whole record
    (:func:`plan_windows`) for the ``accumulation`` section."""
    anchor, rule = resolve_anchor(time, step, accumulation["anchor"])
    plan = plan_windows(time, step, int(accumulation["hours"]), anchor, float(accumulation["min_completeness"]),
                        origin)
    return anchor, rule, plan


#: decoded input (float32) a partition of ``accumulation.partition_months: auto`` holds at least: a job
#: costs ~1.7 s to start (Python, imports, Snakemake), a quarter of what it spends on 1 GiB (10 years of hourly
#: 200 x 160 maps on 2 cores: 48.6 s to train.nc in 12-month partitions, 57.5 s in 6-month ones)
PARTITION_BYTES = 2**30
#: partition lengths (months) auto chooses among below a year; above, whole years
_MONTHS_BELOW_A_YEAR = (1, 2, 3, 4, 6)
#: the longest partition (months; the schema's maximum of ``accumulation.partition_months``)
MAX_PARTITION_MONTHS = 1200
#: months from January of year 0 to January 1970 (numpy's epoch), where partition blocks are aligned
_MONTHS_BEFORE_1970 = 1970 * 12


def partition_months(setting: int | str, step: np.timedelta64, cells: int) -> int:
    """Months per partition: ``setting`` (``accumulation.partition_months``) or, for ``auto``, the fewest of
    1, 2, 3, 4, 6 or 12 k whose steps (``step`` long, on ``cells`` cells) hold :data:`PARTITION_BYTES` of
    float32 in an average month (so that appending data never changes the choice), at most
    :data:`MAX_PARTITION_MONTHS`."""
    if setting != "auto":
        return int(setting)
    steps_per_month = np.timedelta64(2_629_746, "s") / step  # 365.2425 / 12 days
    need = PARTITION_BYTES / (4.0 * cells * steps_per_month)
    below = [m for m in _MONTHS_BELOW_A_YEAR if m >= need]
    return below[0] if below else min(12 * int(np.ceil(need / 12)), MAX_PARTITION_MONTHS)


def partition_ranges(plan: WindowPlan, months: int) -> dict[str, tuple[int, int]]:
    """The partitions of the record: ``{label: (first step, end step)}``, in time order.

    A partition holds the windows (kept or dropped) whose start falls in one block of ``months`` calendar
    months (blocks counted from January of year 0, so 12 is a calendar year, 120 a decade from a year
    ending in 0, 1 a month), and all of their steps; labelled by the block's first month, ``YYYY-MM``."""
    since_year_0 = plan.start.astype("datetime64[M]").astype(np.int64) + _MONTHS_BEFORE_1970
    block = since_year_0 // months * months - _MONTHS_BEFORE_1970
    labels = np.datetime_as_string(block.astype("datetime64[M]"), unit="M")
    ranges = {}
    for label in dict.fromkeys(labels):
        windows = np.flatnonzero(labels == label)
        ranges[str(label)] = (int(plan.first[windows[0]]), int(plan.first[windows[-1]] + plan.count[windows[-1]]))
    return ranges


#: the partition of a record planned as one piece (already accumulated, or a plan the job itself refuses)
WHOLE = "all"


def _record(input_path: str | os.PathLike) -> tuple[xr.Dataset, np.timedelta64 | None, int]:
    """The coordinates of the gridded input (raw.nc, its index or upscaled.nc), its step length (None
    for already accumulated totals) and its number of grid cells, read on a handle closed at once: while a
    file is open HDF5 keeps its bookkeeping of every chunk read, and a time_bnds stored one step per chunk
    has one per step."""
    with open_netcdf(input_path) as probe:
        step = None if ALREADY_ACCUMULATED_ATTR in probe.attrs else step_length(probe, str(input_path))
        coords = xr.Dataset(coords={"time": probe["time"].values}, attrs=dict(probe.attrs))
        cells = probe.sizes["lat"] * probe.sizes["lon"]
    release_freed_memory()
    return coords, step, cells


def plan_partitions(input_path: str | os.PathLike,
                    accumulation: Mapping) -> tuple[int | None, dict[str, tuple[int, int]]]:
    """The months per partition (:func:`partition_months`) and :func:`partition_ranges` of the gridded
    input, for the workflow's DAG: one partition, :data:`WHOLE` (months None), for already accumulated
    totals or a record whose windows cannot be planned (its job then fails with the message)."""
    try:
        coords, step, cells = _record(input_path)
        if step is None:
            return None, {WHOLE: (0, coords.sizes["time"])}
        _, _, plan = record_plan(coords["time"].values, step, accumulation, str(input_path))
    except PrecipModesError:
        return None, {WHOLE: (0, 0)}
    months = partition_months(accumulation["partition_months"], step, cells)
    return months, partition_ranges(plan, months)


def partition_plan(input_path: str | os.PathLike, accumulation: Mapping) -> dict[str, dict]:
    """What each partition of :func:`plan_partitions` reads, for the workflow's DAG: ``{label: {"months":
    months per partition, "steps": [start of its first step, end of its last], "files": [the index's
    entries of the files holding its steps (path, steps, size, mtime_ns)]}}``; ``files`` only when
    ``input_path`` is an index (:mod:`precipmodes.io.sources.index`). The months are planned on the source's
    grid, and a job on the upscaled grid keeps them. A partition's job reruns when this changes."""
    from precipmodes.io.sources.index import INDEX_ATTR, is_generated, is_index

    months, ranges = plan_partitions(input_path, accumulation)
    with open_netcdf(input_path) as ds:
        bounds = values_in_slices(ds["time_bnds"]) if "time_bnds" in ds.variables else None
        files_read = is_index(ds) and not is_generated(ds)
        info = json.loads(ds.attrs[INDEX_ATTR]) if files_read else None
        step_file = ds["step_file"].values if files_read else None
    plan = {}
    for label, (i0, i1) in ranges.items():
        entry = {"months": months,
                 "steps": [iso_utc(bounds[i0, 0]), iso_utc(bounds[i1 - 1, 1])] if i1 > i0 and bounds is not None
                 else []}
        if info is not None:
            files = range(int(step_file[i0]), int(step_file[i1 - 1]) + 1) if i1 > i0 else range(len(info["files"]))
            entry["files"] = [info["files"][k] for k in files]
        plan[label] = entry
    return plan


def accumulate_files(*, input_path: str | os.PathLike, output_path: str | os.PathLike,
                     accumulation: Mapping, config: Mapping | None = None, block_mb: float = BLOCK_MB,
                     processes: int = 1, plausibility: Mapping | None = None,
                     partition: str | None = None, months: int | None = None,
                     check_while_summing: bool = True) -> Path:
    """Rule accumulate_partition: ``input_path`` (raw.nc, its index or upscaled.nc) -> window totals NetCDF.

    Parameters
    ----------
    input_path : path
        Canonical ``precip(time, lat, lon)``, mm per source step, with ``time_bnds``; or the index of the
        source's files (:mod:`precipmodes.io.sources.index`), through which only the files holding the
        partition are read (their values checked as they are).
    output_path : path
        ``precip(time, lat, lon)`` mm per window, ``time_bnds``, ``completeness(time)``.
    accumulation : mapping
        The validated ``accumulation`` section (``hours``, ``anchor``, ``min_completeness``,
        ``partition_months``).
    config : mapping, optional
        The whole config, digested into the provenance.
    block_mb : float
        Size of the blocks of whole windows read at a time (MB of input), which bounds memory.
    plausibility : mapping, optional
        ``source.max_window_mm`` and ``source.implausible`` (:func:`precipmodes.io.sources.plausibility`): each
        window total is checked as it is written (:func:`~precipmodes.io.sources.values.check_window_totals`).
    processes : int
        Reader processes (:class:`ReaderProcesses`) when more than 1 and the decoded input is at least
        :data:`READER_PROCESSES_MIN_MB` (a NetCDF input); else the blocks are read in this process.
    partition : str, optional
        A label of :func:`partition_ranges` (the windows of the record anchored as the whole record is):
        only its windows; None: the whole record.
    months : int, optional
        Months per partition as planned (:func:`partition_plan`, on the source's grid); None: from
        ``accumulation.partition_months`` and this input's grid.
    check_while_summing : bool
        Through an index, check the values on the blocks the sums read (one read of the files; needs
        dask's threaded scheduler, where the blocks are read in this process); False: in a pass of their
        own first (a dask cluster).

    Returns
    -------
    pathlib.Path
        ``output_path``.
    """
    from precipmodes.io.sources.index import is_generated, is_index, read_index

    hours = int(accumulation["hours"])
    origin = str(input_path)
    with timed(f"accumulate ({hours} h{'' if partition is None else ', partition ' + partition})"):
        coords, step, cells = _record(input_path)
        anchor, i0, i1, plan = accumulation["anchor"], 0, coords.sizes["time"], None
        if step is not None and partition is not None:
            anchor_time, rule, plan = record_plan(coords["time"].values, step, accumulation, origin)
            if months is None:
                months = partition_months(accumulation["partition_months"], step, cells)
            ranges = partition_ranges(plan, months)
            if partition not in ranges:
                raise InputDataError(f"{origin}: no partition {partition!r} in the record (it has "
                                     f"{', '.join(ranges)}); run snakemake again, which plans the partitions anew")
            (i0, i1), anchor = ranges[partition], iso_utc(anchor_time) + "Z"
        # netCDF-C caches 64 MiB per variable and file by default; the stream needs two rows of chunks of
        # each (stream_cache_bytes): 1 year of hourly 320 x 400 maps on 2 threads,
        # 457-466 -> 380-415 MiB peak (bench_accumulate_cdo)
        input_cache = stream_cache_bytes(input_row_bytes(input_path))
        readers = checks = verify = None
        if is_index(coords):
            with open_netcdf(input_path) as index:
                index = index.load()
            # the values are checked on the blocks the sums read (one read of the files, not two); chunks
            # cut at the window starts, so that no chunk is decompressed for two blocks
            raw = read_index(index, i0, i1, origin=origin, check_values=not check_while_summing,
                             cuts=None if plan is None else plan.first)
            checks = (_value_checks(raw, index, i0, i1, plausibility)
                      if check_while_summing and not is_generated(index) else None)
        else:
            with chunk_cache(input_cache):
                raw = open_netcdf(input_path)
            input_mb = raw["precip"].size * raw["precip"].dtype.itemsize / 1e6
            if processes > 1 and input_mb >= READER_PROCESSES_MIN_MB and _readable_by_readers(raw):
                readers = ReaderProcesses(input_path, processes, input_cache, offset=i0)
                log.info("accumulate: reading %.0f MB (decoded) in %d reader processes", input_mb, processes)
            raw = raw.isel(time=slice(i0, i1))
        with readers or contextlib.nullcontext():
            totals = accumulate(raw, hours, anchor, float(accumulation["min_completeness"]), block_mb=block_mb,
                                origin=origin, readers=readers, step=step, partition=partition is not None,
                                checks=checks)
            if checks is not None:
                blocks = totals.attrs.pop("n_blocks_read")
                verify = lambda: checks.judge(blocks)  # noqa: E731
            if partition is not None and step is not None:
                totals.attrs["accumulation_anchor_rule"] = rule
            origin = f"{input_path} ({raw.attrs['source']})" if "source" in raw.attrs else str(input_path)
            totals = check_window_totals(totals, plausibility, origin)
            log.info("accumulate: %d windows of %d h kept, %d dropped (min_completeness %s), anchor %s",
                     totals.attrs["n_windows"], hours, totals.attrs["n_windows_dropped"],
                     totals.attrs["min_completeness"], totals.attrs.get("accumulation_anchor", "(passed through)"))
            precip = totals["precip"]
            output_row = chunk_row_bytes(precip.shape, chunk_sizes(precip.shape, precip.dims),
                                         precip.dtype.itemsize)
            try:
                with chunk_cache(stream_cache_bytes(output_row)):
                    return write_netcdf(totals, output_path, inputs=[input_path], config=config, verify=verify,
                                        step=f"accumulate: {hours}-hour totals from {Path(input_path).name}"
                                             + ("" if partition is None else f", partition {partition}"))
            except ValuesRefused:
                checks.refuse()
                raise


def _value_checks(raw: xr.Dataset, index: xr.Dataset, i0: int, i1: int,
                  plausibility: Mapping | None) -> DeferredChecks:
    """The checks of the values of steps ``[i0, i1)`` of ``index`` (``raw``: read unchecked) on the blocks
    the sums read, with the messages of :func:`~precipmodes.io.sources.values.judge_values` naming the files
    and the source's config key."""
    from precipmodes.io.sources.files import paths_origin
    from precipmodes.io.sources.index import step_files

    bounds = raw["time_bnds"].values
    limit = step_limit(plausibility, (bounds[:, 1] - bounds[:, 0]) / np.timedelta64(1, "s"))
    files, key = step_files(index, i0, i1)
    return DeferredChecks(raw["precip"], limit, plausibility, files, paths_origin(list(dict.fromkeys(files))), key)


def _readable_by_readers(raw: xr.Dataset) -> bool:
    """Whether reader processes give what xarray reads: ``precip`` decoded to float32 and stored as
    float32 unpacked, or as int16 packed with float32 scale_factor/add_offset (CF packing, as E-OBS
    ships), and not already window totals."""
    encoding = raw["precip"].encoding
    packing = [encoding[key] for key in ("scale_factor", "add_offset") if key in encoding]
    stored = encoding.get("dtype")
    return (raw["precip"].dtype == np.float32 and ALREADY_ACCUMULATED_ATTR not in raw.attrs
            and ((stored == np.float32 and not packing)
                 or (stored == np.int16 and all(np.asarray(v).dtype == np.float32 for v in packing))))


def input_row_bytes(path: str | os.PathLike, variable: str = "precip") -> int:
    """:func:`chunk_row_bytes` of ``variable`` in the NetCDF file ``path`` (0 when unreadable: the open
    that follows reports it)."""
    import netCDF4

    try:
        with netCDF4.Dataset(path) as nc:
            var = nc[variable]
            chunking = var.chunking()  # a contiguous (or netCDF-3: None) variable is read without the chunk cache
            return 0 if chunking in ("contiguous", None) else chunk_row_bytes(var.shape, tuple(chunking),
                                                                        var.dtype.itemsize)
    except (OSError, IndexError, KeyError, RuntimeError):
        return 0


def _duration_text(ns: int) -> str:
    return str(pd.Timedelta(ns, "ns")).replace("0 days ", "")
