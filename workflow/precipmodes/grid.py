"""Land-cell stacking: grid (lat, lon) <-> land cells (cell).

The matrix that SVD and NMF see is (cell, time) over land cells only. Stacked
arrays carry ``lat(cell)`` and ``lon(cell)`` coordinates so any result can be put
back onto the grid with :func:`unstack_cells` given the grid's 1-D coordinates.
Cells are numbered in row-major order of the ascending-lat grid.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

GRID_ATOL = 1e-4  # degrees: axes whose cell centres agree this well are the same grid


def normalise_domain_lon(west: float, east: float) -> tuple[float, float]:
    """``domain.lon`` as an increasing ``(west, east)``, west in -180..180: a domain given in 0..360 east of
    180° is shifted to -180..180; one across the 180° meridian (east beyond 180, or east below west as in
    ``[150, -150]``) keeps longitudes past 180 (``(150, 210)``), so its cells stay in one contiguous,
    increasing run."""
    west, east = float(west), float(east)
    if west >= 180:
        west, east = west - 360, east - 360
    if east < west:
        east += 360
    return west, east


def same_axis(a, b) -> bool:
    """True when two 1-D coordinate axes (degrees) have the same length and agree within GRID_ATOL."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=0.0, atol=GRID_ATOL))


def same_grid(a, b) -> bool:
    """True when the ``lat`` and ``lon`` axes of ``a`` and ``b`` (datasets or arrays) are the same grid."""
    return same_axis(a["lat"].values, b["lat"].values) and same_axis(a["lon"].values, b["lon"].values)


def stack_land(da: xr.DataArray, land: xr.DataArray) -> xr.DataArray:
    """Select the land cells of ``da(..., lat, lon)`` into ``da(..., cell)``.

    ``land(lat, lon)`` is boolean. The result has coordinates ``cell`` (0..n-1),
    ``lat(cell)``, ``lon(cell)`` in degrees; other dimensions keep their order.
    """
    land = land.astype(bool)
    if not same_grid(da, land):
        raise ValueError("stack_land: data and land mask are on different lat/lon grids")
    iy, ix = np.nonzero(land.values)
    stacked = da.isel(lat=xr.DataArray(iy, dims="cell"), lon=xr.DataArray(ix, dims="cell"))
    stacked = stacked.assign_coords(cell=np.arange(iy.size, dtype=np.int32))
    stacked["lat"].attrs = dict(da["lat"].attrs)
    stacked["lon"].attrs = dict(da["lon"].attrs)
    stacked["cell"].attrs = {"long_name": "land cell index (row-major over the ascending-lat grid)"}
    return stacked


def unstack_cells(da: xr.DataArray, lat: xr.DataArray, lon: xr.DataArray) -> xr.DataArray:
    """Put ``da(..., cell)`` with ``lat(cell)``/``lon(cell)`` back on the grid ``(..., lat, lon)``.

    ``lat`` and ``lon`` are the grid's 1-D coordinates (e.g. from the land mask);
    cells not in ``da`` are NaN.
    """
    lat_values = np.asarray(lat.values)
    lon_values = np.asarray(lon.values)
    iy = _index_of(lat_values, da["lat"].values, "lat")
    ix = _index_of(lon_values, da["lon"].values, "lon")
    other_dims = [d for d in da.dims if d != "cell"]
    values = da.transpose(*other_dims, "cell").values
    shape = tuple(da.sizes[d] for d in other_dims) + (lat_values.size, lon_values.size)
    dtype = np.result_type(values.dtype, np.float32)
    grid = np.full(shape, np.nan, dtype=dtype)
    grid[..., iy, ix] = values
    coords = {d: da[d] for d in other_dims if d in da.coords}
    coords.update(lat=lat, lon=lon)
    out = xr.DataArray(grid, dims=other_dims + ["lat", "lon"], coords=coords, name=da.name, attrs=da.attrs)
    for name, coord in da.coords.items():
        if name not in out.coords and "cell" not in coord.dims and set(coord.dims) <= set(other_dims):
            out = out.assign_coords({name: coord})
    return out


def _index_of(axis: np.ndarray, values: np.ndarray, name: str) -> np.ndarray:
    """Index of each of ``values`` on the 1-D ``axis`` (to 1e-6 degrees)."""
    index = np.searchsorted(axis, values)
    index = np.clip(index, 0, axis.size - 1)
    left = np.clip(index - 1, 0, axis.size - 1)
    index = np.where(np.abs(axis[left] - values) < np.abs(axis[index] - values), left, index)
    if np.any(np.abs(axis[index] - values) > 1e-6):
        raise ValueError(f"unstack_cells: some cell {name} values are not on the grid's {name} axis")
    return index
