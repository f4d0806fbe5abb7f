"""Gap-aware window totals (e.g. 72-hour sums) of the canonical raw precipitation, as a dask graph.

The windows are planned by :mod:`precipmodes.preprocess.windows` (``anchor + k * hours``, each input step in
exactly one window). A window's *completeness* is the fraction of its steps present in the record:

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
gaps) by a reader of :mod:`precipmodes.io.readers`; the result is a dask-backed dataset, so
:func:`precipmodes.io.netcdf.write_netcdf` writes it block by block with memory
flat in the record length. The rule's file side: :mod:`precipmodes.steps.accumulate`.
"""

from __future__ import annotations

import threading
import uuid
import time as _time
from typing import Mapping

import dask
import dask.array as da
import numpy as np
import xarray as xr

from precipmodes.config import iso_utc
from precipmodes.errors import InputDataError
from precipmodes.io.readers import InProcessReader, ReaderProcesses
from precipmodes.io.sources import ALREADY_ACCUMULATED_ATTR
from precipmodes.io.sources.values import DeferredChecks
from precipmodes.logs import log
from precipmodes.preprocess.windows import (OBSERVED_ATTRS, WindowPlan, no_window_error, plan_blocks, plan_windows,
                                            resolve_anchor)
from precipmodes.steps.partitions import step_length

BLOCK_MB = 32.0  # MB of input per block: 686 -> 461 MiB peak RSS from 128 MB, same speed (bench_accumulate_cdo)


def accumulate(ds: xr.Dataset, hours: int = 72, anchor: str = "auto",
               min_completeness: float = 1.0, block_mb: float = BLOCK_MB,
               origin: str = "raw dataset", readers: ReaderProcesses | None = None,
               step: np.timedelta64 | None = None, partition: bool = False,
               checks: DeferredChecks | None = None) -> xr.Dataset:
    """Window totals of canonical ``ds.precip(time, lat, lon)`` (mm per step).

    Returns a dask-backed dataset: ``precip(time, lat, lon)`` float32 mm per window
    (``time`` = window start), ``time_bnds(time, nv)``, ``completeness(time)``, with
    attributes ``n_windows_dropped``, ``min_completeness``, ``accumulation_hours``.
    ``anchor`` is an ISO-8601 instant with offset, ``"first"`` or ``"auto"``
    (:func:`~precipmodes.preprocess.windows.resolve_anchor`; the anchor used is the attribute
    ``accumulation_anchor``, the rule that chose it ``accumulation_anchor_rule``). ``block_mb`` bounds the
    input read at once (whole windows per block).
    ``step``: the input's step length when already known (:func:`~precipmodes.steps.partitions.step_length`; else found here).
    ``partition``: ``ds`` is one partition of a record (:func:`precipmodes.steps.accumulate.accumulate_files`):
    it may hold no complete window (the record as a whole is checked when the partitions are read,
    :func:`precipmodes.steps.totals.open_totals`).
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
    reader = readers if readers is not None else InProcessReader(ds["precip"], checks)
    totals, observed, blocks = _summed_blocks(ds["precip"], plan, kept, block_mb, reader)
    out = _totals_dataset(ds, plan, kept, totals, observed, hours)
    if checks is not None:
        out.attrs["n_blocks_read"] = blocks
    out.attrs.update(
        accumulation_hours=hours,
        accumulation_anchor=iso_utc(anchor_time) + "Z",
        accumulation_anchor_rule=anchor_rule,
        input_step_hours=hours / plan.steps,
        min_completeness=float(min_completeness),
        n_windows=int(kept.size),
        n_windows_dropped=int(np.count_nonzero(~plan.kept)),  # windows touched by the record but too incomplete
        incomplete_window_totals="sum of present steps / completeness (only when min_completeness < 1)",
    )
    return out


def _summed_blocks(precip: xr.DataArray, plan: WindowPlan, kept: np.ndarray, block_mb: float,
                   reader: InProcessReader | ReaderProcesses) -> tuple[da.Array, da.Array, int]:
    """The dask graph of the window totals: the kept windows of ``plan`` (indices ``kept``) in blocks of about
    ``block_mb`` MB of ``precip(time, lat, lon)`` (:func:`~precipmodes.preprocess.windows.plan_blocks`), each
    read and summed once by ``reader``. Returns the totals (float32 ``(window, lat, lon)``, mm per window),
    the steps with a value per cell in the kept windows (int32 ``(lat, lon)``, computed from the same reads:
    the data_nan land mask's counts) and the number of blocks."""
    cell_bytes = 4 * precip.sizes["lat"] * precip.sizes["lon"]
    windows_per_block = max(1, int(block_mb * 2**20 // (cell_bytes * plan.steps)))
    chunk_steps = (precip.encoding.get("chunksizes") or (1,))[0]  # of a NetCDF input, along time
    blocks = plan_blocks(plan, kept, windows_per_block, int(chunk_steps))
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
    observed = da.stack(observed).sum(axis=0, dtype=np.int32) if observed else da.zeros(precip.shape[1:], np.int32)
    return totals, observed, len(blocks)


def _totals_dataset(ds: xr.Dataset, plan: WindowPlan, kept: np.ndarray, totals: da.Array, observed: da.Array,
                    hours: int) -> xr.Dataset:
    """The CF dataset of the window totals of ``ds``: ``precip(time, lat, lon)`` (``totals``, mm per window of
    ``hours``), ``time_bnds(time, nv)``, ``completeness(time)``, ``n_observed_steps(lat, lon)``
    (``observed``) and the starts and ``dropped_window_completeness`` of the dropped windows; ``time`` is
    the kept windows' starts (``kept``: indices into ``plan``). Attributes: ``source``, ``title`` and
    ``history`` of ``ds``."""
    starts = plan.start[kept]
    window = np.timedelta64(hours, "h").astype("timedelta64[ns]")
    return xr.Dataset(
        {
            "precip": (("time", "lat", "lon"), totals, _totals_attrs(ds["precip"].attrs, hours)),
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
