"""The window totals as the rules after accumulate read them: the partitions' files (rule
accumulate_partition, :func:`precipmodes.steps.accumulate.accumulate_files`) opened side by side as one
dataset. No gathered copy is written: land_mask, threshold and split each open the partitions; split as
one dask-backed dataset (:func:`open_totals`), land_mask and threshold without dask (:func:`open_partitions`), the
totals read a block of windows at a time (:func:`precip_blocks`): these small jobs need no task graph."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator, Mapping, Sequence

import numpy as np
import xarray as xr

from precipmodes.io.netcdf import open_netcdf
from precipmodes.preprocess.windows import OBSERVED_ATTRS, no_window_error


def combine_partitions(parts: Sequence[xr.Dataset], origin: str = "totals") -> xr.Dataset:
    """The partitions ``parts`` (in time order) as one totals dataset.

    Returns ``precip(time, lat, lon)`` mm per window with ``time_bnds``, ``completeness(time)``, the windows
    dropped for completeness (``dropped_window``, with ``dropped_window_completeness``), ``n_observed_steps
    (lat, lon)`` summed over the partitions (the ``data_nan`` land mask's count) and the record's counts
    ``n_windows``, ``n_windows_dropped``, ``n_partitions``. Lazy where ``parts`` are. Raises InputDataError
    (naming ``origin``) when no partition holds a complete window.
    """
    timed_vars = [ds.drop_dims("dropped_window", errors="ignore") for ds in parts]
    # totals passed through (seed_binary) drop no window
    dropped = [ds[["dropped_window_completeness"]] for ds in parts if "dropped_window" in ds.dims]
    kept = sum(int(ds.attrs["n_windows"]) for ds in parts)
    if kept == 0:
        first = parts[0].attrs
        completeness = np.concatenate([ds["dropped_window_completeness"].values for ds in dropped] or [[]])
        raise no_window_error(origin, int(first["accumulation_hours"]), float(first["min_completeness"]),
                              completeness)
    joined = [xr.concat(timed_vars, dim="time", data_vars="minimal", coords="minimal", compat="override",
                        combine_attrs="override")]
    if dropped:
        joined.append(xr.concat(dropped, dim="dropped_window", data_vars="minimal", coords="minimal",
                                compat="override", combine_attrs="override"))
    out = xr.merge(joined, combine_attrs="override")
    out.attrs.update(n_windows=kept, n_windows_dropped=sum(int(ds.attrs["n_windows_dropped"]) for ds in parts),
                     n_partitions=len(parts))
    out["n_observed_steps"] = sum(ds["n_observed_steps"] for ds in parts).astype(np.int32)
    out["n_observed_steps"].attrs = OBSERVED_ATTRS
    return out


@contextlib.contextmanager
def open_partitions(parts: Sequence[str | os.PathLike]) -> Iterator[tuple[xr.Dataset, list[xr.Dataset]]]:
    """The partitions' files ``parts`` (in time order) opened without dask: ``(record, partitions)``.

    ``record`` is :func:`combine_partitions` of everything but ``precip`` (the windows' coordinates, bounds and
    completeness, the summed ``n_observed_steps``, the record's counts; read into memory, none of it larger than
    a map or a series); ``partitions`` are the files themselves, whose ``precip`` :func:`precip_blocks` reads.
    Closed on leaving the block."""
    with contextlib.ExitStack() as stack:
        opened = [stack.enter_context(open_netcdf(path)) for path in parts]
        yield combine_partitions([ds.drop_vars("precip") for ds in opened], totals_origin(parts)), opened


def precip_blocks(partition: xr.Dataset, windows: int) -> Iterator[xr.DataArray]:
    """``precip(time, lat, lon)`` of one of the ``partitions`` of :func:`open_partitions`, read ``windows``
    windows at a time (numpy): memory bounded by a block, not by the record."""
    for start in range(0, partition.sizes["time"], windows):
        yield partition["precip"].isel(time=slice(start, start + windows)).load()


def totals_origin(parts: Sequence[str | os.PathLike]) -> str:
    """How messages name the partitions' files ``parts``: the one file, or the first .. the last."""
    return str(parts[0]) if len(parts) == 1 else f"{parts[0]} .. {parts[-1]}"


@contextlib.contextmanager
def open_totals(parts: Sequence[str | os.PathLike], chunks: Mapping | None = None) -> Iterator[xr.Dataset]:
    """The partitions' files ``parts`` (in time order) opened as one dataset (:func:`combine_partitions`),
    read lazily in ``chunks`` (dask; default one chunk per partition); closed on leaving the block."""
    opened = []
    try:
        for path in parts:
            opened.append(open_netcdf(path, chunks=dict(chunks or {})))
        yield combine_partitions(opened, totals_origin(parts))
    finally:
        for ds in opened:
            ds.close()
