"""Train/test split of one experiment: land-only (cell, time) matrices with coverage rules.

A window goes into a part when its whole ``[start, end)`` lies inside the part's
half-open range ``[start, end)`` (ISO-8601 bounds with offsets, converted to UTC)
and it passes, in this order (each window left out is counted under the first
rule that drops it, attributes ``n_windows_dropped_<rule>``):

``months``
    its start (UTC) falls in ``experiments.<name>.months`` (all months when absent);
``completeness``
    ``accumulate`` kept it (the totals list the windows it dropped in ``dropped_window``);
``threshold``
    ``selection.nc`` keeps it (wet-area fraction);
``coverage``
    at least ``min_window_fraction`` of the chosen cells have data in it.

The chosen cells are the land cells (land mask) that have data in at least
``min_cell_fraction`` of the experiment's training windows left after months,
completeness and threshold; the same cells make the test matrix. Missing
entries of chosen cells in chosen windows stay NaN (the gap-aware fit handles
them); ``cell_coverage(cell)``, ``window_coverage(time)`` and the excluded cells
(``excluded_cell_lat/lon/coverage``) are written beside ``precip``. Land cells
are stacked with :func:`precipmodes.grid.stack_land`, so ``lat(cell)``/``lon(cell)``
travel along and every result unstacks back onto the grid. Totals are read
lazily in blocks of windows (dask), so memory is bounded by the output, not the record.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
import xarray as xr

from precipmodes.config import iso_utc, load_schema, parse_range
from precipmodes.errors import ConfigError, InputDataError
from precipmodes.grid import stack_land
from precipmodes.logs import log, timed

PARTS = ("train", "test")
DROP_RULES = ("months", "completeness", "threshold", "coverage")  # the order windows are tested in
ALL_MONTHS = tuple(range(1, 13))


def coverage_settings(coverage: Mapping | None = None) -> dict[str, float]:
    """``coverage`` with the schema's defaults for keys it leaves out (``min_cell_fraction``, ``min_window_fraction``)."""
    defaults = {key: prop["default"] for key, prop in
                load_schema()["properties"]["coverage"]["properties"].items()}
    return {key: float(value) for key, value in {**defaults, **(coverage or {})}.items()}


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


def check_months(name: str, experiment: Mapping) -> tuple[int, ...]:
    """``experiments.<name>.months`` as sorted calendar months (1..12; all when absent or null)."""
    months = experiment.get("months")
    if months is None:
        return ALL_MONTHS
    bad = [m for m in months if not (isinstance(m, (int, np.integer)) and 1 <= m <= 12)]
    if bad or not months:
        raise ConfigError(f"experiments.{name}.months: {list(months)} must list calendar months 1..12 "
                          f"(e.g. [12, 1, 2] for DJF); {bad or 'an empty list'} is not allowed")
    return tuple(sorted(set(int(m) for m in months)))


def in_months(starts: np.ndarray, months: tuple[int, ...]) -> np.ndarray:
    """Boolean per window start (naive UTC datetime64): its calendar month is in ``months``."""
    return np.isin(pd.DatetimeIndex(starts).month.values, months)


def cell_coverage(valid: xr.DataArray) -> xr.DataArray:
    """Fraction (0..1) of windows in which each cell has data: ``valid(cell, time)`` boolean -> ``(cell,)``."""
    return (valid.sum("time") / max(1, valid.sizes["time"])).rename("cell_coverage")


def window_coverage(valid: xr.DataArray) -> xr.DataArray:
    """Fraction (0..1) of cells with data in each window: ``valid(cell, time)`` boolean -> ``(time,)``."""
    return (valid.sum("cell") / max(1, valid.sizes["cell"])).rename("window_coverage")


def _at_least(coverage: xr.DataArray, minimum: float, problem) -> np.ndarray:
    """Boolean per entry of the 1-D ``coverage``: at least ``minimum`` (to rounding). When no entry is,
    ConfigError with the text ``problem(best)`` for the entry of the highest coverage."""
    chosen = coverage.values >= minimum - 1e-9
    if not chosen.any():
        raise ConfigError(problem(coverage.isel({coverage.dims[0]: int(np.argmax(coverage.values))})))
    return chosen


def _place(cell: xr.DataArray) -> str:
    """The place of one stacked cell (with lat/lon coordinates) as ``lat=.. lon=..``."""
    return f"lat={float(cell['lat']):g} lon={float(cell['lon']):g}"


def split_experiment(totals: xr.Dataset, land: xr.DataArray, selection: xr.Dataset, name: str,
                     experiment: Mapping, coverage: Mapping | None = None) -> dict[str, xr.Dataset]:
    """``{"train": ds, "test": ds}``: ``precip(cell, time)`` float32 mm of the chosen cells and windows.

    ``totals``: window totals ``precip(time, lat, lon)`` with ``time_bnds`` (and ``dropped_window``,
    the starts of windows dropped for completeness); ``land(lat, lon)`` boolean; ``selection``:
    ``kept(time)`` on the same windows; ``coverage``: ``min_cell_fraction`` and
    ``min_window_fraction`` (schema defaults for missing keys). Each part also holds
    ``completeness(time)``, ``window_coverage(time)``, ``cell_coverage(cell)`` and the land cells
    excluded by coverage (``excluded_cell_lat/lon/coverage(excluded_cell)``). Raises ConfigError
    naming the key for overlapping ranges, a range outside the data, a part without a kept window
    (by months, threshold or coverage) or no cell meeting coverage (``n_modes`` against the kept
    windows is checked by the decomposition, :func:`require_selection_holds_modes`).
    """
    ranges = check_ranges(name, experiment)
    months = check_months(name, experiment)
    rules = coverage_settings(coverage)
    min_cell, min_window = rules["min_cell_fraction"], rules["min_window_fraction"]
    if not np.array_equal(selection["time"].values, totals["time"].values):
        raise InputDataError("selection.nc and the totals have different windows; rerun the threshold rule")
    matrix = stack_land(totals["precip"], land).transpose("cell", "time")
    candidates, dropped = _candidate_windows(totals, selection, name, experiment, ranges, months)
    train_cells, cells, excluded = _covered_cells(matrix, candidates["train"], name, min_cell)
    parts = {}
    for part in PARTS:
        parts[part] = _part(totals, matrix, train_cells, cells, excluded, candidates[part], dropped[part], part,
                            name, experiment, ranges, months, min_cell, min_window)
    return parts


def _candidate_windows(totals: xr.Dataset, selection: xr.Dataset, name: str, experiment: Mapping, ranges: dict,
                       months: tuple[int, ...]) -> tuple[dict[str, np.ndarray], dict[str, dict[str, int]]]:
    """Per part, the windows inside its range, in the months and kept by the threshold (indices into
    ``totals``), and the windows dropped by months, completeness and threshold; ConfigError as
    :func:`split_experiment` says."""
    bounds = totals["time_bnds"].values
    extent = (bounds[:, 0].min(), bounds[:, 1].max())
    window = bounds[0, 1] - bounds[0, 0]
    kept = selection["kept"].values.astype(bool)
    season = in_months(totals["time"].values, months)
    incomplete = totals["dropped_window"].values if "dropped_window" in totals.coords else np.array([], "M8[ns]")
    candidates, dropped = {}, {}
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
        lost = incomplete[(incomplete >= start) & (incomplete + window <= end)]
        lost_in_season = in_months(lost, months)
        dropped[part] = {"months": int(np.count_nonzero(inside & ~season)) + int(np.count_nonzero(~lost_in_season)),
                         "completeness": int(np.count_nonzero(lost_in_season)),
                         "threshold": int(np.count_nonzero(inside & season & ~kept))}
        if inside.any() and not (inside & season).any():
            raise ConfigError(
                f"experiments.{name}.months: none of the {int(inside.sum())} windows of {key} "
                f"{experiment[part]} starts (UTC) in months {list(months)}; choose months the range holds "
                f"or widen {key}"
            )
        candidates[part] = np.flatnonzero(inside & season & kept)
        if candidates[part].size == 0:
            raise ConfigError(
                f"{key}: {experiment[part]} holds no kept window ({int((inside & season).sum())} windows lie "
                f"inside{' in the chosen months' if months != ALL_MONTHS else ''}, none passes the threshold); "
                "widen the range or lower threshold.min_wet_fraction"
            )
    return candidates, dropped


def _covered_cells(matrix: xr.DataArray, train: np.ndarray, name: str, min_cell: float):
    """``(coverage of every land cell in the kept training windows train, indices of the cells with at least
    min_cell of them, coverage of the cells excluded)``; ConfigError when no cell has."""
    with timed(f"split ({name}): cell coverage of {train.size} training windows"):
        train_cells = cell_coverage(matrix.isel(time=train).notnull()).compute()
    chosen_cells = _at_least(train_cells, min_cell, lambda best: (
        f"coverage.min_cell_fraction: no land cell of experiment {name} has data in at least {min_cell:g} "
        f"of its {train.size} kept training windows (best cell coverage "
        f"{float(best):.3f} at {_place(best)}, of {train_cells.sizes['cell']} land cells); lower "
        "coverage.min_cell_fraction or check the source for missing data"))
    cells = np.flatnonzero(chosen_cells)
    excluded = train_cells.isel(cell=np.flatnonzero(~chosen_cells))
    return train_cells, cells, excluded


def _part(totals: xr.Dataset, matrix: xr.DataArray, train_cells: xr.DataArray, cells: np.ndarray,
          excluded: xr.DataArray, candidates: np.ndarray, dropped: dict[str, int], part: str, name: str,
          experiment: Mapping, ranges: dict, months: tuple[int, ...], min_cell: float,
          min_window: float) -> xr.Dataset:
    """The dataset of ``part`` (train or test): its ``candidates`` windows with at least ``min_window`` of
    the chosen ``cells``; ``dropped`` gets the count dropped by coverage."""
    excluded_vars = {
        "excluded_cell_lat": ("excluded_cell", excluded["lat"].values, dict(excluded["lat"].attrs)),
        "excluded_cell_lon": ("excluded_cell", excluded["lon"].values, dict(excluded["lon"].attrs)),
        "excluded_cell_coverage": ("excluded_cell", excluded.values.astype(np.float32), {
            "long_name": "fraction of the kept training windows in which the excluded land cell has data",
            "units": "1"}),
    }
    key = f"experiments.{name}.{part}"
    valid = matrix.isel(cell=cells, time=candidates).notnull()
    windows = window_coverage(valid).compute()
    chosen = _at_least(windows, min_window, lambda best: (
        f"coverage.min_window_fraction: none of the {windows.sizes['time']} kept windows of {key} "
        f"{experiment[part]} has data in at least {min_window:g} of the {cells.size} chosen cells "
        f"(best window coverage {float(best):.3f}, window starting {iso_utc(best['time'].values)} UTC); "
        f"lower coverage.min_window_fraction or choose another {key} range"))
    dropped["coverage"] = int(np.count_nonzero(~chosen))
    index = candidates[chosen]
    data = matrix.isel(cell=cells, time=index)
    ds = xr.Dataset({"precip": data.astype(np.float32),
                     "time_bnds": totals["time_bnds"].isel(time=index)})
    ds["precip"].attrs = dict(totals["precip"].attrs)
    if "completeness" in totals:
        ds["completeness"] = totals["completeness"].isel(time=index)
    ds["window_coverage"] = ("time", windows.values[chosen].astype(np.float32), {
        "long_name": "fraction of the chosen cells with data in the window", "units": "1"})
    ds["cell_coverage"] = ("cell", train_cells.values[cells].astype(np.float32), {
        "long_name": "fraction of the kept training windows in which the cell has data", "units": "1"})
    ds = ds.assign(excluded_vars)  # cell keeps the land cell's index in the mask (decompose selects by it)
    n_missing = int(round(float(((1 - ds["window_coverage"].astype(np.float64)) * cells.size).sum())))
    ds.attrs.update(
        experiment=name, part=part,
        range=f"[{experiment[part][0]}, {experiment[part][1]})",
        range_utc=f"[{iso_utc(ranges[part][0])}Z, {iso_utc(ranges[part][1])}Z)",
        train_range=f"[{experiment['train'][0]}, {experiment['train'][1]})",
        test_range=f"[{experiment['test'][0]}, {experiment['test'][1]})",
        n_windows=int(index.size), n_cells=int(cells.size),
        accumulation_hours=totals.attrs.get("accumulation_hours", ""),
        months=np.int32(months), coverage_min_cell_fraction=min_cell, coverage_min_window_fraction=min_window,
        n_land_cells=int(train_cells.sizes["cell"]), n_cells_excluded_coverage=int(excluded.sizes["cell"]),
        n_missing_entries=n_missing, missing_fraction=n_missing / max(1, cells.size * index.size),
        **{f"n_windows_dropped_{rule}": dropped[rule] for rule in DROP_RULES},
        window_selection_order=", ".join(DROP_RULES) + " (each dropped window counted under the first)",
    )
    return ds


def require_selection_holds_modes(train_attrs: Mapping, name: str, n_modes: int) -> None:
    """ConfigError when ``n_modes`` exceeds the windows or cells that the selection kept for training.

    ``train_attrs``: the attributes of train.nc (``n_windows``, ``n_cells``, ``n_windows_dropped_<rule>``).
    Checked by the svd/nmf steps, not by split, so that changing n_modes does not rerun split.
    """
    if int(n_modes) <= min(int(train_attrs["n_windows"]), int(train_attrs["n_cells"])):
        return
    counts = ", ".join(f"{rule} {train_attrs.get(f'n_windows_dropped_{rule}', 0)}" for rule in DROP_RULES)
    raise ConfigError(
        f"experiments.{name}.n_modes: {n_modes} modes need at least as many training windows and cells, "
        f"but the selection keeps {train_attrs['n_windows']} windows x {train_attrs['n_cells']} cells "
        f"(windows dropped: {counts}); lower experiments.{name}.n_modes, widen experiments.{name}.train "
        "or relax the selection (experiments.<name>.months, threshold.min_wet_fraction, coverage.*)"
    )


def describe(ds: xr.Dataset) -> str:
    """One log line on a part: its size, what was dropped and why, the missing entries."""
    a = ds.attrs
    text = (f"{a['part']} = {a['n_cells']} cells x {a['n_windows']} windows; windows dropped: "
            + ", ".join(f"{rule} {a[f'n_windows_dropped_{rule}']}" for rule in DROP_RULES)
            + f"; {a['n_cells_excluded_coverage']} of {a['n_land_cells']} land cells below "
              f"coverage.min_cell_fraction {a['coverage_min_cell_fraction']:g}"
            + f"; {a['n_missing_entries']} entries missing ({100 * a['missing_fraction']:.3f}%)")
    if ds.sizes["excluded_cell"]:
        first = [f"lat={lat:g} lon={lon:g} ({cov:.3f})" for lat, lon, cov in zip(
            ds["excluded_cell_lat"].values[:5], ds["excluded_cell_lon"].values[:5],
            ds["excluded_cell_coverage"].values[:5])]
        text += "; excluded cells (coverage): " + ", ".join(first) + (" ..." if ds.sizes["excluded_cell"] > 5 else "")
    return text
