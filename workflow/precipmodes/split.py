"""Train/test split of one experiment: land-only (cell, time) matrices.

A window goes into a part when it is kept by the threshold and its whole
``[start, end)`` lies inside the part's half-open range ``[start, end)`` (ISO-8601
bounds with offsets, converted to UTC). Land cells are stacked with
:func:`precipmodes.grid.stack_land`, so ``lat(cell)``/``lon(cell)`` travel along
and every result unstacks back onto the grid. Totals are read lazily in blocks
of windows (dask), so memory is bounded by the output, not the record.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np
import xarray as xr

from .accumulate import iso_utc
from .config import parse_range
from .errors import ConfigError, InputDataError
from .grid import stack_land
from .logs import log, timed
from .netcdf import open_netcdf, write_netcdf
from .threshold import TIME_CHUNK, land_of

PARTS = ("train", "test")


def check_ranges(name: str, experiment: Mapping) -> dict[str, tuple[np.datetime64, np.datetime64]]:
    """Parsed UTC ranges of ``experiments.<name>``; ConfigError when train and test overlap."""
    ranges = {part: parse_range(experiment[part]) for part in PARTS}
    (a, b), (c, d) = ranges["train"], ranges["test"]
    if a < d and c < b:
        raise ConfigError(
            f"experiments.{name}: train {experiment['train']} and test {experiment['test']} overlap; "
            "ranges are half-open [start, end): make them disjoint (e.g. train end = test start)"
        )
    return ranges


def split_experiment(totals: xr.Dataset, land: xr.DataArray, selection: xr.Dataset, name: str,
                     experiment: Mapping) -> dict[str, xr.Dataset]:
    """``{"train": ds, "test": ds}``: ``precip(cell, time)`` float32 mm of kept windows in each range.

    ``totals``: window totals ``precip(time, lat, lon)`` with ``time_bnds``; ``land(lat, lon)``
    boolean; ``selection``: ``kept(time)`` on the same windows. Raises ConfigError
    naming the experiment for overlapping ranges, a range outside the data or an
    empty part.
    """
    ranges = check_ranges(name, experiment)
    if not np.array_equal(selection["time"].values, totals["time"].values):
        raise InputDataError("selection.nc and totals.nc have different windows; rerun the threshold rule")
    bounds = totals["time_bnds"].values
    extent = (bounds[:, 0].min(), bounds[:, 1].max())
    window = bounds[0, 1] - bounds[0, 0]
    kept = selection["kept"].values.astype(bool)
    parts = {}
    for part, (start, end) in ranges.items():
        key = f"experiments.{name}.{part}"
        if end <= extent[0] or start >= extent[1]:
            raise ConfigError(
                f"{key}: {experiment[part]} lies outside the data, which covers {iso_utc(extent[0])} .. "
                f"{iso_utc(extent[1])} UTC; choose a range inside it"
            )
        if start < extent[0] - window or end > extent[1] + window:  # more than a window's rounding
            log.warning("%s: %s reaches beyond the data (%s .. %s UTC); using the windows inside it",
                        key, experiment[part], iso_utc(extent[0]), iso_utc(extent[1]))
        inside = (bounds[:, 0] >= start) & (bounds[:, 1] <= end)
        chosen = np.flatnonzero(inside & kept)
        if chosen.size == 0:
            raise ConfigError(
                f"{key}: {experiment[part]} holds no kept window ({int(inside.sum())} windows lie inside, "
                f"none passes the threshold); widen the range or lower threshold.min_wet_fraction"
            )
        matrix = stack_land(totals["precip"].isel(time=chosen), land).transpose("cell", "time")
        ds = xr.Dataset({"precip": matrix.astype(np.float32),
                         "time_bnds": totals["time_bnds"].isel(time=chosen)})
        if "completeness" in totals:
            ds["completeness"] = totals["completeness"].isel(time=chosen)
        ds["precip"].attrs = dict(totals["precip"].attrs)
        ds.attrs.update(
            experiment=name, part=part,
            range=f"[{experiment[part][0]}, {experiment[part][1]})",
            range_utc=f"[{iso_utc(start)}Z, {iso_utc(end)}Z)",
            train_range=f"[{experiment['train'][0]}, {experiment['train'][1]})",
            test_range=f"[{experiment['test'][0]}, {experiment['test'][1]})",
            n_windows=int(chosen.size), n_cells=int(matrix.sizes["cell"]),
            accumulation_hours=totals.attrs.get("accumulation_hours", ""),
        )
        parts[part] = ds
    return parts


def split_files(totals_path: str | os.PathLike, land_mask_path: str | os.PathLike,
                selection_path: str | os.PathLike, name: str, experiment: Mapping,
                train_path: str | os.PathLike, test_path: str | os.PathLike,
                config: Mapping | None = None) -> tuple[Path, Path]:
    """Rule split: totals.nc + land_mask.nc + selection.nc -> train.nc, test.nc of experiment ``name``."""
    with timed(f"split ({name})"):
        totals = open_netcdf(totals_path, chunks={"time": TIME_CHUNK})
        land = land_of(open_netcdf(land_mask_path), totals, str(land_mask_path), str(totals_path))
        parts = split_experiment(totals, land, open_netcdf(selection_path), name, experiment)
        inputs = [totals_path, land_mask_path, selection_path]
        for part, path in (("train", train_path), ("test", test_path)):
            log.info("split %s: %s = %d land cells x %d windows", name, part, parts[part].sizes["cell"],
                     parts[part].sizes["time"])
            write_netcdf(parts[part], path, inputs=inputs, config=config,
                         step=f"split: {part} windows of experiment {name}")
    return Path(train_path), Path(test_path)
