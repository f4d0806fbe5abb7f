"""Source ``seed_binary``: the seed notebook's own preprocessed 72-hour totals.

Layout of the seed's files:

* ``source.seed_binary.data``: raw float64 (native little-endian) of shape ``(n_windows, n_land)``,
  C order: 72-hour totals in mm, one row per window;
* ``source.seed_binary.times``: ``.npy`` of ``n_windows`` window time stamps ``'%Y%m%d%H%M'``
  (strings or integers) in the time zone ``source.seed_binary.timezone`` (default ``+09:00``,
  JST); each stamp is the START of its 72-hour window;
* ``source.seed_binary.mask``: ``.npy`` 320 x 320 land mask (nonzero/True = land) on the
  0.0625 deg lon x 0.05 deg lat grid over 128-148 E, 30-46 N; rows are latitudes,
  columns longitudes, land cells numbered in row-major order of the stored array.

Row order: the seed draws the mask with ``imshow(mask, extent=[128, 148, 30, 46])``.
imshow's default ``origin='upper'`` puts row 0 at the top of the picture, which the
extent labels 46 N, so row 0 is the NORTHERN edge (``source.seed_binary.first_row: north``,
the default); ``first_row: south`` reads files stored the other way up.

The result is canonical (ascending lat) but already holds 72-hour totals:
``precip.attrs['cell_methods'] = 'time: sum (interval: 72 hours)'`` and the global
attribute ``precipmodes_already_accumulated_hours = 72`` tell the accumulation
stage, and the variable ``seed_land(lat, lon)`` (int8, 1 = land) carries the
seed's own land mask for the land-mask stage.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import dask.array as dsa
import numpy as np
import pandas as pd
import xarray as xr

from precipmodes.errors import InputDataError
from precipmodes.io.sources import ALREADY_ACCUMULATED_ATTR
from precipmodes.io.sources.canonical import standardise
from precipmodes.logs import log

NLAT = NLON = 320
WEST, SOUTH, DLON, DLAT = 128.0, 30.0, 0.0625, 0.05
WINDOW_HOURS = 72


def seed_grid() -> tuple[np.ndarray, np.ndarray]:
    """Cell centres ``(lat, lon)`` of the seed grid, ascending (degrees)."""
    return SOUTH + (np.arange(NLAT) + 0.5) * DLAT, WEST + (np.arange(NLON) + 0.5) * DLON


def read_seed_mask(path: str | os.PathLike) -> np.ndarray:
    """The stored 320 x 320 mask as booleans (True = land), in the file's row order."""
    mask = _load_npy(path, "source.seed_binary.mask")
    if mask.shape != (NLAT, NLON):
        raise InputDataError(f"{path}: the seed mask must be {NLAT} x {NLON}, got {mask.shape}; check source.seed_binary.mask")
    mask = np.asarray(mask, dtype=float)
    return np.isfinite(mask) & (mask != 0)


def read_seed_times(path: str | os.PathLike, timezone: str) -> np.ndarray:
    """Window start stamps ``'%Y%m%d%H%M'`` in ``timezone`` -> naive UTC datetime64[ns]."""
    stamps = _load_npy(path, "source.seed_binary.times").ravel()
    text = [str(s.decode() if isinstance(s, bytes) else s).strip() for s in stamps]
    try:
        local = pd.to_datetime(text, format="%Y%m%d%H%M")
        offset = pd.Timedelta(pd.Timestamp(f"2000-01-01T00:00{timezone}").utcoffset())
    except (ValueError, TypeError) as exc:
        raise InputDataError(f"{path}: time stamps {text[:3]} are not '%Y%m%d%H%M' in time zone {timezone!r} "
                             f"({exc}); check source.seed_binary.times and source.seed_binary.timezone") from exc
    return (local - offset).values.astype("datetime64[ns]")


def _load_npy(path: str | os.PathLike, key: str) -> np.ndarray:
    if not Path(path).is_file():
        raise InputDataError(f"{path}: file not found; check {key}")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputDataError(f"{path}: not a readable .npy file ({exc}); check {key}") from exc


def open_seed_binary(source: Mapping, domain: Mapping) -> xr.Dataset:
    """Canonical raw dataset of the seed's 72-hour totals (lazy, memory-mapped), with ``seed_land``."""
    stored = read_seed_mask(source["mask"])
    times = read_seed_times(source["times"], source["timezone"])
    path = Path(source["data"])
    if not path.is_file():
        raise InputDataError(f"{path}: file not found; check source.seed_binary.data")
    n_land, n_windows = int(stored.sum()), times.size
    if path.stat().st_size != 8 * n_land * n_windows:
        raise InputDataError(
            f"{path}: {path.stat().st_size} bytes, but {n_windows} windows (source.seed_binary.times) x {n_land} land cells "
            f"(source.seed_binary.mask) of float64 need {8 * n_land * n_windows}; check that data, times and mask belong "
            "together")
    north_first = source["first_row"] == "north"
    flat = np.flatnonzero(stored.ravel())
    values = dsa.from_array(np.memmap(path, dtype="<f8", mode="r", shape=(n_windows, n_land)),
                            chunks=(min(n_windows, 1024), n_land))

    def scatter(block: np.ndarray) -> np.ndarray:
        grid = np.full((block.shape[0], NLAT * NLON), np.nan, dtype=np.float32)
        grid[:, flat] = block
        grid = grid.reshape(-1, NLAT, NLON)
        return grid[:, ::-1] if north_first else grid

    gridded = values.map_blocks(scatter, dtype=np.float32, chunks=(values.chunks[0], (NLAT,), (NLON,)),
                                new_axis=2)
    lat, lon = seed_grid()
    precip = xr.DataArray(gridded, dims=("time", "lat", "lon"), coords={"time": times, "lat": lat, "lon": lon},
                          name="seed_totals")
    bounds = np.stack([times, times + np.timedelta64(WINDOW_HOURS, "h")], axis=1)
    log.info("seed_binary: %d windows x %d land cells, first row = %s", n_windows, n_land,
             "north" if north_first else "south")
    ds = standardise(precip, domain, units="mm", bounds=bounds, origin=str(path),
                     attrs={"source": f"seed notebook 72-hour totals {path.name}",
                            ALREADY_ACCUMULATED_ATTR: WINDOW_HOURS})
    ds["precip"].attrs["cell_methods"] = f"time: sum (interval: {WINDOW_HOURS} hours)"
    land = stored[::-1] if north_first else stored
    ds["seed_land"] = xr.DataArray(land.astype(np.int8), dims=("lat", "lon"), coords={"lat": lat, "lon": lon}
                                   ).sel(lat=ds["lat"], lon=ds["lon"])
    ds["seed_land"].attrs = {"long_name": "land mask of the seed notebook (1 = land)",
                             "source": Path(source["mask"]).name, "flag_values": np.array([0, 1], dtype=np.int8),
                             "flag_meanings": "sea land"}
    return ds
