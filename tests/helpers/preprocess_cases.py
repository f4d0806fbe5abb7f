"""Small canonical datasets for the preprocessing tests (accumulate, threshold, split)."""

from __future__ import annotations

import numpy as np
import xarray as xr

import pandas as pd

PRECIP_ATTRS = {"standard_name": "lwe_thickness_of_precipitation_amount", "units": "mm",
                "cell_methods": "time: sum"}


def canonical(values, start="2005-12-31T15:00", step="1h", lat=None, lon=None, drop=()) -> xr.Dataset:
    """Canonical raw dataset from ``values(time, lat, lon)``; steps ``drop`` (indices) removed to make gaps."""
    values = np.asarray(values, dtype=np.float32)
    if values.ndim == 1:
        values = values[:, None, None]
    nt, ny, nx = values.shape
    time = pd.date_range(start, periods=nt, freq=step).values.astype("datetime64[ns]")
    step_ns = pd.Timedelta(step).to_timedelta64()
    ds = xr.Dataset(
        {"precip": (("time", "lat", "lon"), values, dict(PRECIP_ATTRS)),
         "time_bnds": (("time", "nv"), np.stack([time, time + step_ns], axis=1))},
        coords={"time": time,
                "lat": np.arange(ny, dtype=float) if lat is None else lat,
                "lon": np.arange(nx, dtype=float) if lon is None else lon},
    )
    if len(drop):
        ds = ds.isel(time=np.setdiff1d(np.arange(nt), drop))
    return ds


def from_real(ds: xr.Dataset, variable: str) -> xr.Dataset:
    """A real daily file (variable in mm per day) in the canonical layout."""
    time = ds["time"].values.astype("datetime64[ns]")
    precip = ds[variable].astype(np.float32)
    return xr.Dataset(
        {"precip": (("time", "lat", "lon"), precip.values, dict(PRECIP_ATTRS)),
         "time_bnds": (("time", "nv"), np.stack([time, time + np.timedelta64(1, "D")], axis=1))},
        coords={"time": time, "lat": ds["lat"].values, "lon": ds["lon"].values},
    )


def land_mask(land) -> xr.Dataset:
    land = np.asarray(land, dtype=np.int8)
    ny, nx = land.shape
    return xr.Dataset({"land": (("lat", "lon"), land), "land_fraction": (("lat", "lon"), land.astype(float))},
                      coords={"lat": np.arange(ny, dtype=float), "lon": np.arange(nx, dtype=float)})


LAND = [[1, 1, 0], [1, 1, 0]]  # 4 land cells, 2 sea
