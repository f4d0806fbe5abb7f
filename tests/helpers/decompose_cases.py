"""Small synthetic (cell, time) matrices for the decomposition tests (no files, no network)."""

from __future__ import annotations

import numpy as np
import xarray as xr

import pandas as pd


def matrix(n_cells: int = 300, n_windows: int = 120, rank: int = 6, noise: float = 0.05, seed: int = 0,
           dtype=np.float64, start: str = "2006-01-01T15:00") -> xr.DataArray:
    """Non-negative low-rank + noise ``precip(cell, time)`` mm with lat/lon/time coordinates."""
    rng = np.random.default_rng(seed)
    W = rng.gamma(0.6, 1.0, (n_cells, rank))
    H = rng.gamma(0.6, 10.0, (rank, n_windows))
    values = W @ H + noise * rng.gamma(0.5, 1.0, (n_cells, n_windows))
    return wrap(values.astype(dtype), start)


def wrap(values: np.ndarray, start: str = "2006-01-01T15:00") -> xr.DataArray:
    n_cells, n_windows = values.shape
    side = int(np.ceil(np.sqrt(n_cells)))
    lat = 30.0 + 0.25 * (np.arange(n_cells) // side)
    lon = 128.0 + 0.25 * (np.arange(n_cells) % side)
    time = pd.date_range(start, periods=n_windows, freq="72h").values
    return xr.DataArray(values, dims=("cell", "time"), name="precip", attrs={"units": "mm"}, coords={
        "cell": np.arange(n_cells, dtype=np.int32), "lat": ("cell", lat), "lon": ("cell", lon), "time": time})


def grid_axes(X: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """The 1-D lat/lon axes of the grid the cells of ``X`` lie on."""
    lat = np.unique(X["lat"].values)
    lon = np.unique(X["lon"].values)
    return xr.DataArray(lat, dims="lat", coords={"lat": lat}), xr.DataArray(lon, dims="lon", coords={"lon": lon})


def field_with_sea(X):
    """The (cell, time) matrix ``X`` as a (time, lat, lon) field, NaN on the grid points that are not cells."""
    lat, lon = grid_axes(X)
    grid = np.full((X.sizes["time"], lat.size, lon.size), np.nan)
    iy = np.searchsorted(lat.values, X["lat"].values)
    ix = np.searchsorted(lon.values, X["lon"].values)
    grid[:, iy, ix] = X.values.T
    field = xr.DataArray(grid, dims=("time", "lat", "lon"), coords={"time": X["time"], "lat": lat, "lon": lon})
    land = xr.DataArray(~np.isnan(grid).all(axis=0), dims=("lat", "lon"), coords={"lat": lat, "lon": lon})
    return field, land
