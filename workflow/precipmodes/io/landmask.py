"""Reading gridded inputs of the land mask: a user's mask file (NetCDF or the seed's .npy) and a grid streamed in
time chunks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr

from precipmodes.errors import ConfigError, InputDataError
from precipmodes.grid import GRID_ATOL, same_axis
from precipmodes.io.netcdf import open_netcdf
from precipmodes.preprocess import landmask
from precipmodes.preprocess.landmask import SEED_MASK_SHAPE, seed_mask_grid


def _grid_text(lat: np.ndarray, lon: np.ndarray) -> str:
    return (f"{lat.size} lat x {lon.size} lon, lat {lat.min():.5g}..{lat.max():.5g}, "
            f"lon {lon.min():.5g}..{lon.max():.5g} (cell centres)")


def _check_same_grid(mask: xr.DataArray, lat: xr.DataArray, lon: xr.DataArray, path: Path) -> xr.DataArray:
    """``mask`` on the data grid (coordinates replaced by the data's), or InputDataError naming ``path``."""
    mlat, mlon = mask["lat"].values, mask["lon"].values
    same = same_axis(mlat, lat.values) and same_axis(mlon, lon.values)
    if not same:
        raise InputDataError(
            f"{path}: the mask's grid ({_grid_text(mlat, mlon)}) does not match the data grid "
            f"({_grid_text(lat.values, lon.values)}); make the mask on the data grid, or use "
            f"land_mask.method: global_land_mask or data_nan")
    return mask.assign_coords(lat=lat, lon=lon)


def read_seed_npy(path: str | os.PathLike) -> xr.DataArray:
    """The seed's ``mask_x5_y6.npy`` (320 x 320, row 0 = north) as land fraction ``(lat, lon)``, lat ascending."""
    path = Path(path)
    try:
        values = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputDataError(f"{path}: not a readable .npy array ({exc}); land_mask.path must be the "
                             f"seed's mask_x5_y6.npy or a NetCDF file") from exc
    if values.shape != SEED_MASK_SHAPE:
        raise InputDataError(f"{path}: shape {values.shape}, but the seed's mask layout is "
                             f"{SEED_MASK_SHAPE} (0.0625 x 0.05 deg over 128-148E, 30-46N); "
                             f"give a NetCDF mask with lat/lon for other grids")
    lat, lon = seed_mask_grid()
    fraction = np.nan_to_num(values.astype(np.float32)[::-1], nan=0.0)  # row 0 = north -> ascending lat
    return xr.DataArray(fraction, dims=("lat", "lon"), coords={"lat": lat, "lon": lon})


def read_netcdf_mask(path: str | os.PathLike) -> xr.DataArray:
    """``land_fraction`` (or ``land``) of a NetCDF mask file as ``(lat, lon)``, lat ascending, lon as in the file."""
    path = Path(path)
    with open_netcdf(path) as ds:
        ds = ds.rename({old: new for old, new in (("latitude", "lat"), ("longitude", "lon")) if old in ds.variables})
        name = next((n for n in ("land_fraction", "land") if n in ds.data_vars), None)
        if name is None:
            raise InputDataError(f"{path}: no variable 'land_fraction' or 'land' (variables: "
                                 f"{sorted(ds.data_vars)}); rename the mask variable to one of them")
        mask = ds[name].squeeze(drop=True)
        if set(mask.dims) != {"lat", "lon"}:
            raise InputDataError(f"{path}: variable {name} has dims {mask.dims}; a land mask needs (lat, lon)")
        return mask.sortby("lat").transpose("lat", "lon").astype(np.float32).fillna(0.0).load()


def read_mask_file(path: str | os.PathLike | None, lat: xr.DataArray, lon: xr.DataArray) -> xr.DataArray:
    """Land fraction from a user file (NetCDF or the seed's .npy), checked against the data grid."""
    if not path:
        raise ConfigError("land_mask.path: method 'file' needs a path (a NetCDF mask or the seed's "
                          "mask_x5_y6.npy)")
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: land mask file (land_mask.path) not found; fix the path")
    mask = read_seed_npy(path) if path.suffix == ".npy" else read_netcdf_mask(path)
    west = float(lon.min()) - GRID_ATOL  # longitudes into the data's [west, west + 360) (0..360, or across 180°)
    mask = mask.assign_coords(lon=mask["lon"] - 360.0 * np.floor((mask["lon"] - west) / 360.0)).sortby("lon")
    values = mask.values
    if np.nanmin(values) < 0 or np.nanmax(values) > 1:
        raise InputDataError(f"{path}: land mask values range {np.nanmin(values):g}..{np.nanmax(values):g}; "
                             f"expected a land fraction in [0, 1] or 0/1 flags")
    return _check_same_grid(mask, lat, lon, path)


def open_streamed(path: str | os.PathLike, variable: str = "precip") -> xr.Dataset:
    """Open a gridded NetCDF lazily in time chunks of about ``CHUNK_VALUES`` values of ``variable``,
    a multiple of the file's own time chunking (so each stored chunk is read once)."""
    with open_netcdf(path) as probe:
        var = probe[variable] if variable in probe else None
        cells = int(np.prod([probe.sizes[d] for d in ("lat", "lon") if d in probe.sizes]))
        stored = (var.encoding.get("chunksizes") or [1])[0] if var is not None and var.dims[:1] == ("time",) else 1
    steps = max(1, landmask.CHUNK_VALUES // max(cells, 1))
    steps = max(int(stored), steps // int(stored) * int(stored))
    return open_netcdf(path, chunks={"time": steps})
