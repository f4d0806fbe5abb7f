"""The partitions of the totals, planned for the workflow's DAG from the gridded input (raw.nc, the index
of the source's files, or upscaled.nc): :func:`partition_plan`, read by the Snakefile whenever the checkpoint
raw changes. Imports no dask (the Snakefile is parsed for every run and dry run)."""

from __future__ import annotations

import json
import os
from typing import Mapping

import numpy as np
import xarray as xr

from precipmodes.config import iso_utc
from precipmodes.errors import InputDataError, PrecipModesError
from precipmodes.io.allocator import release_freed_memory
from precipmodes.io.netcdf import open_netcdf, values_in_slices
from precipmodes.io.sources import ALREADY_ACCUMULATED_ATTR
from precipmodes.preprocess.windows import partition_months, partition_ranges, record_plan

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


#: the partition of a record planned as one piece (already accumulated, or a plan the job itself refuses)
WHOLE = "all"


def read_record(input_path: str | os.PathLike) -> tuple[xr.Dataset, np.timedelta64 | None, int]:
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
    """The months per partition (:func:`~precipmodes.preprocess.windows.partition_months`) and
    :func:`~precipmodes.preprocess.windows.partition_ranges` of the gridded
    input, for the workflow's DAG: one partition, :data:`WHOLE` (months None), for already accumulated
    totals or a record whose windows cannot be planned (its job then fails with the message)."""
    try:
        coords, step, cells = read_record(input_path)
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
