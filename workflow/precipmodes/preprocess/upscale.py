"""Block-mean coarsening of a fine grid (the seed's x5 / x6 upscaling of a 1 km grid to 0.0625 x 0.05 deg).

Each output cell is the mean of a block of ``factor = [lon, lat]`` input cells;
its ``lat``/``lon`` are the means of the block's cell centres. Missing values:
a block's value is the mean of its valid (non-NaN) cells, and NaN only when all
of its cells are NaN at that time step. So coastal blocks keep the mean of
their land cells, and a block is sea (NaN at every step) only when it has no
valid cell; this matches the seed, which averaged the land cells of each block.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import xarray as xr

from precipmodes.errors import ConfigError


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def check_factor(nlon: int, nlat: int, factor: Sequence[int], origin: str = "input") -> tuple[int, int]:
    """``(fx, fy)`` if they divide the grid, else ConfigError naming the factors that would."""
    fx, fy = (int(f) for f in factor)
    if nlon % fx or nlat % fy:
        raise ConfigError(
            f"upscale.factor {[fx, fy]}: the grid of {origin} has {nlon} lon x {nlat} lat cells, which are "
            f"not multiples of [{fx}, {fy}]; factors that divide the grid are lon {_divisors(nlon)} and "
            f"lat {_divisors(nlat)}")
    return fx, fy


def block_means(ds: xr.Dataset, factor: Sequence[int], origin: str = "input") -> xr.Dataset:
    """Block means of every ``(..., lat, lon)`` variable of ``ds`` over ``factor = [lon, lat]`` cells.

    Lazy (dask) when ``ds`` is; variables without lat/lon (``time_bnds``) are kept.
    Returns the dataset on the coarse grid (lat/lon = block-centre means, degrees).
    """
    fx, fy = check_factor(ds.sizes["lon"], ds.sizes["lat"], factor, origin)
    gridded = [name for name, var in ds.data_vars.items() if {"lat", "lon"} <= set(var.dims)]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)  # all-NaN blocks
        coarse = ds[gridded].coarsen(lon=fx, lat=fy, boundary="exact").mean(keep_attrs=True)  # NaN skipped
    coarse = coarse.assign_coords(lat=np.round(coarse["lat"].values, 10), lon=np.round(coarse["lon"].values, 10))
    out = xr.merge([coarse, ds.drop_vars(gridded + ["lat", "lon"])], combine_attrs="override")
    for name in gridded:
        out[name] = out[name].astype(ds[name].dtype)
        out[name].attrs = dict(ds[name].attrs)
    for name in ("lat", "lon"):
        out[name].attrs = dict(ds[name].attrs)
    if "precip" in out:
        out["precip"].attrs["cell_methods"] = (
            f"{ds['precip'].attrs.get('cell_methods', 'time: sum')} area: mean "
            f"(block mean of {fx} lon x {fy} lat cells, ignoring missing cells)")
    out.attrs = dict(ds.attrs)
    out.attrs["upscale_factor_lon_lat"] = np.array([fx, fy], dtype=np.int32)
    return out
