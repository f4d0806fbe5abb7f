"""The land-cell x window matrix that the estimators see: its layout, its checks, its weights.

A matrix is an ``xarray.DataArray`` ``(cell, time)`` with coordinates ``lat(cell)``, ``lon(cell)`` and
``time`` (see :mod:`precipmodes.grid`), backed by numpy or by dask; the chunked passes over it are
:mod:`precipmodes.linalg.blocks`, opening one from a file is :func:`precipmodes.io.matrix.open_matrix`.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from precipmodes.errors import InputDataError, RankError
from precipmodes.linalg.blocks import MatrixScan


def as_cell_time(X: xr.DataArray, label: str) -> xr.DataArray:
    """``X`` transposed to ``(cell, time)``; InputDataError naming ``label`` when dims differ."""
    if not isinstance(X, xr.DataArray) or set(X.dims) != {"cell", "time"}:
        dims = getattr(X, "dims", None)
        raise InputDataError(
            f"{label}: expected a (cell, time) matrix of land cells x windows, got dims {dims}; "
            "build it with precipmodes.grid.stack_land (rule split)"
        )
    return X.transpose("cell", "time")


def describe_cells(X: xr.DataArray, flags: np.ndarray, limit: int = 3) -> str:
    """``"N cells (first: lat=.. lon=.., ...)"`` for the flagged rows of ``X``."""
    idx = np.flatnonzero(flags)
    shown = ", ".join(
        f"lat={float(X['lat'].values[i]):.4g} lon={float(X['lon'].values[i]):.4g}"
        if "lat" in X.coords and "lon" in X.coords
        else f"cell {i}"
        for i in idx[:limit]
    )
    return f"{idx.size} cells (first: {shown})"


def describe_windows(X: xr.DataArray, flags: np.ndarray, limit: int = 3) -> str:
    """``"N windows (first: <time>, ...)"`` for the flagged columns of ``X``."""
    idx = np.flatnonzero(flags)
    times = X["time"].values if "time" in X.coords else np.arange(X.sizes["time"])
    shown = ", ".join(str(times[i])[:16] for i in idx[:limit])
    return f"{idx.size} windows (first: {shown})"


def require_usable(X: xr.DataArray, found: MatrixScan, label: str, source: str) -> None:
    """InputDataError naming where infinite values, cells or windows without any data sit.

    NaN entries are missing data and allowed, as long as every cell and every window
    has at least one observed value.
    """
    if found.infinite_cells.any():
        raise InputDataError(
            f"{label}: infinite values in {describe_cells(X, found.infinite_cells)} and "
            f"{describe_windows(X, found.infinite_windows)}; they came from {source}: "
            "check the raw data's fill values and scale_factor and rerun from raw"
        )
    empty_cells = found.observed_cells == 0
    if empty_cells.any():
        raise InputDataError(
            f"{label}: no data at all in {describe_cells(X, empty_cells)}; they came from {source}: "
            "mask them out (land_mask) or let the coverage rules of the split step drop them, and rerun split"
        )
    empty_windows = found.observed_windows == 0
    if empty_windows.any():
        raise InputDataError(
            f"{label}: no data at all in {describe_windows(X, empty_windows)}; they came from {source}: "
            "drop them upstream (accumulation.min_completeness or the coverage rules of split) and rerun split"
        )


def require_rank(n: int, n_cells: int, n_windows: int, label: str, parameter: str) -> None:
    """:class:`RankError` (an InputDataError naming ``parameter``) when ``n`` exceeds min(cells, windows)."""
    if n > min(n_cells, n_windows):
        raise RankError(
            parameter,
            f"{label}: {parameter} = {n} is larger than min(cells, windows) = min({n_cells}, {n_windows}); "
            f"lower {parameter} or widen the training period"
        )


def area_weights(lat: np.ndarray) -> np.ndarray:
    """sqrt(cos(lat)) weights (float64, cell), so squared weighted values scale with cell area."""
    return np.sqrt(np.clip(np.cos(np.deg2rad(np.asarray(lat, dtype=np.float64))), 1e-12, None))
