"""The partitions of the totals, planned for the workflow's DAG from the gridded input (raw.nc, the index
of the source's files, or upscaled.nc): :func:`partition_plan`, read by the Snakefile whenever the checkpoint
raw changes. Imports no dask (the Snakefile is parsed for every run and dry run), and reads the record with
netCDF4 alone (:func:`read_planning_record`)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import xarray as xr

from precipmodes.config import iso_utc
from precipmodes.errors import InputDataError, PrecipModesError
from precipmodes.io.encoding import TIME_UNITS
from precipmodes.io.netcdf import STEPS_PER_READ, values_in_slices
from precipmodes.io.sources import ALREADY_ACCUMULATED_ATTR
from precipmodes.preprocess.windows import partition_months, partition_ranges, record_plan

def step_length(ds: xr.Dataset, origin: str = "raw dataset") -> np.timedelta64:
    """The constant length of the input steps, from ``time_bnds`` (or the time spacing)."""
    bounds = values_in_slices(ds["time_bnds"]) if "time_bnds" in ds.variables else None
    return _step_of(ds["time"].values, bounds, origin)


def _step_of(time: np.ndarray, bounds: np.ndarray | None, origin: str) -> np.timedelta64:
    lengths = np.unique(bounds[:, 1] - bounds[:, 0]) if bounds is not None else np.unique(np.diff(time))
    if lengths.size != 1 or lengths[0] <= np.timedelta64(0, "ns"):
        raise InputDataError(
            f"{origin}: time steps have different lengths {sorted(set(map(str, lengths)))[:5]}; "
            "accumulate needs a constant input step (resample the source to one step length first)"
        )
    return lengths[0].astype("timedelta64[ns]")


#: the partition of a record planned as one piece (already accumulated, or a plan the job itself refuses)
WHOLE = "all"


@dataclass(frozen=True)
class Record:
    """What the planning needs of the gridded input: ``time`` and ``bounds`` (datetime64[ns], ``(step,)``
    and ``(step, 2)``; no bounds: None), the global ``attrs``, the number of grid ``cells``, and for an index
    ``step_file`` (which file holds each step)."""

    time: np.ndarray
    bounds: np.ndarray | None
    attrs: dict
    cells: int
    step_file: np.ndarray | None


def _own_times(var, time, origin: str) -> np.ndarray:
    """The datetime64[ns] values of ``var``, a netCDF4 variable in the units and calendar of ``time`` (itself,
    or the time its bounds belong to), decoded as xarray decodes them (``decode_cf_datetime``) and read
    :data:`~precipmodes.io.netcdf.STEPS_PER_READ` steps at a time."""
    from xarray.coding.times import decode_cf_datetime

    var.set_auto_maskandscale(False)
    values = np.concatenate([np.asarray(var[i:i + STEPS_PER_READ])
                             for i in range(0, max(var.shape[0], 1), STEPS_PER_READ)])
    units, calendar = getattr(time, "units", None), getattr(time, "calendar", None)
    try:
        decoded = decode_cf_datetime(values, units, calendar)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InputDataError(f"{origin}: {var.name} cannot be read as time stamps ({exc}); delete it and "
                             "rerun") from exc
    if decoded.dtype.kind != "M":
        raise InputDataError(f"{origin}: {var.name} is in {units!r} ({calendar}), not in a calendar of numpy's "
                             f"time stamps as the workflow writes it ({TIME_UNITS!r}); delete it and rerun")
    return decoded.astype("datetime64[ns]")


def read_planning_record(input_path: str | os.PathLike) -> Record:
    """The :class:`Record` of the gridded input (raw.nc, its index or upscaled.nc, files the workflow wrote),
    read by netCDF4 alone on a handle closed at once: this runs in Snakemake's own process whenever the
    checkpoint raw has run, where xarray's first dataset costs 0.5 s (it imports dask.array to tell dask
    arrays from others)."""
    import netCDF4

    origin = str(input_path)
    with netCDF4.Dataset(input_path) as nc:
        variables = nc.variables
        time = variables["time"]
        return Record(time=_own_times(time, time, origin),
                      bounds=_own_times(variables["time_bnds"], time, origin) if "time_bnds" in variables else None,
                      attrs={name: nc.getncattr(name) for name in nc.ncattrs()},
                      cells=len(nc.dimensions["lat"]) * len(nc.dimensions["lon"]),
                      step_file=np.asarray(variables["step_file"][:]) if "step_file" in variables else None)


def read_record(input_path: str | os.PathLike) -> tuple[xr.Dataset, np.timedelta64 | None, int]:
    """The coordinates of the gridded input (:func:`read_planning_record`) as a dataset, its step length
    (None for already accumulated totals) and its number of grid cells."""
    record = read_planning_record(input_path)
    return xr.Dataset(coords={"time": record.time}, attrs=record.attrs), _record_step(record, input_path), record.cells


def _record_step(record: Record, input_path: str | os.PathLike) -> np.timedelta64 | None:
    """The step length of ``record`` (:func:`_step_of`); None when it holds window totals already."""
    return None if ALREADY_ACCUMULATED_ATTR in record.attrs else _step_of(record.time, record.bounds, str(input_path))


def plan_partitions(input_path: str | os.PathLike,
                    accumulation: Mapping) -> tuple[int | None, dict[str, tuple[int, int]], Record | None]:
    """The months per partition (:func:`~precipmodes.preprocess.windows.partition_months`) and
    :func:`~precipmodes.preprocess.windows.partition_ranges` of the gridded
    input, for the workflow's DAG: one partition, :data:`WHOLE` (months None), for already accumulated
    totals or a record whose windows cannot be planned (its job then fails with the message); and the
    :class:`Record` read (None when it could not be)."""
    record = None
    try:
        record = read_planning_record(input_path)
        step = _record_step(record, input_path)
        if step is None:
            return None, {WHOLE: (0, record.time.size)}, record
        _, _, plan = record_plan(record.time, step, accumulation, str(input_path))
    except PrecipModesError:
        return None, {WHOLE: (0, 0)}, record
    months = partition_months(accumulation["partition_months"], step, record.cells)
    return months, partition_ranges(plan, months), record


def partition_plan(input_path: str | os.PathLike, accumulation: Mapping) -> dict[str, dict]:
    """What each partition of :func:`plan_partitions` reads, for the workflow's DAG: ``{label: {"months":
    months per partition, "steps": [start of its first step, end of its last], "files": [the index's
    entries of the files holding its steps (path, steps, size, mtime_ns)]}}``; ``files`` only when
    ``input_path`` is an index (:mod:`precipmodes.io.sources.index`). The months are planned on the source's
    grid, and a job on the upscaled grid keeps them. A partition's job reruns when this changes."""
    from precipmodes.io.sources.index import INDEX_ATTR, is_generated, is_index

    months, ranges, record = plan_partitions(input_path, accumulation)
    bounds = None if record is None else record.bounds
    files_read = record is not None and is_index(record.attrs) and not is_generated(record.attrs)
    info = json.loads(record.attrs[INDEX_ATTR]) if files_read else None
    step_file = record.step_file if files_read else None
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


def partition_threads(position: int, count: int, threads: int, cores: int | None) -> int:
    """Threads of the partition at ``position`` (0-based, in plan order) of ``count`` partitions of ``threads``
    threads each, run on ``cores`` cores by one machine (None: a cluster, where each job is sized alone).

    ``cores // threads`` partitions run side by side; when ``count`` is not a multiple of that, the last
    round would leave cores idle (3 partitions on 2 cores: the third runs alone on one), so its partitions,
    the last ``count % (cores // threads)``, share the cores of the round (each reads its blocks with
    that many threads). The partitions and their totals stay the same; only the cores each job gets change."""
    side_by_side = max(1, (cores or 0) // threads)
    last_round = count % side_by_side
    if cores is None or last_round == 0 or position < count - last_round:
        return threads
    return threads * (side_by_side // last_round)
