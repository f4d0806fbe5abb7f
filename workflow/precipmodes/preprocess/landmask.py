"""Land mask on the data grid: ``land_fraction(lat, lon)`` in [0, 1] and ``land(lat, lon)`` 0/1.

Methods (config ``land_mask.method``):

``global_land_mask``
    GLOBE 1/120 deg land/water grid shipped by the PyPI package global-land-mask
    (no internet at run time), sampled at ``subsamples`` x ``subsamples`` points
    per cell; the fraction of land points is the cell's land fraction.
``data_nan``
    Sea = cells that are NaN at every time step of the gridded input (streamed
    over time chunks); land_fraction is 1 on land and 0 on sea.
``file``
    A NetCDF file with ``land_fraction`` (or ``land``) on the data grid, or the
    seed's 320 x 320 ``mask_x5_y6.npy`` on the 0.0625 x 0.05 deg grid over
    128-148E, 30-46N with row 0 at the north edge (the seed plots it with
    ``imshow(extent=[128, 148, 30, 46])``, origin upper). NaN counts as sea.
``auto``
    ``seed_land(lat, lon)`` of the input when present (written by the
    seed_binary source), else ``data_nan`` when some cells are NaN at all
    times and that NaN pattern follows the coast, else ``global_land_mask``.
    The NaN pattern follows the coast unless more than ``AUTO_MAX_SEA_SHARE``
    (10 %) of the cells with data are wholly sea by global_land_mask (no
    sub-sample point on land): then NaN marks where an instrument sees (a
    radar's reach, a satellite swath), not the coast, and land is the cells
    with data that global_land_mask calls land (method
    ``global_land_mask_where_observed``: the GLOBE fraction there, 0 where no
    data), with a warning that names ``land_mask.method: data_nan`` to
    override.

``land`` is ``land_fraction >= min_fraction``.
"""

from __future__ import annotations

import importlib.metadata

import numpy as np
import xarray as xr

from precipmodes.errors import InputDataError
from precipmodes.grid import same_axis

#: the methods that take the land from the data: from the totals' counts of observed steps per cell
FROM_DATA = ("auto", "data_nan")

SEED_MASK_SHAPE = (320, 320)
SEED_MASK_LON = (128.0, 148.0)
SEED_MASK_LAT = (30.0, 46.0)
CHUNK_VALUES = 16_000_000  # values per dask chunk when streaming the input (64 MB float32)


def cell_edges(centres: np.ndarray) -> np.ndarray:
    """Edges (n + 1) of cells with the given ascending centres (midpoints; ends extrapolated)."""
    centres = np.asarray(centres, dtype=float)
    if centres.size == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    mid = (centres[1:] + centres[:-1]) / 2
    return np.concatenate([[2 * centres[0] - mid[0]], mid, [2 * centres[-1] - mid[-1]]])


def subsample_points(centres: np.ndarray, subsamples: int) -> np.ndarray:
    """Points ``(n, subsamples)`` evenly inside each cell (cell-centred sub-cells)."""
    edges = cell_edges(centres)
    offsets = (np.arange(subsamples) + 0.5) / subsamples
    return edges[:-1, None] + offsets[None, :] * np.diff(edges)[:, None]


def globe_source(subsamples: int) -> str:
    version = importlib.metadata.version("global-land-mask")
    return (f"GLOBE 1/120 deg land/water grid (NOAA NGDC) via global-land-mask {version}, "
            f"{subsamples} x {subsamples} points per cell")


def data_nan_fraction(precip: xr.DataArray, steps: int | None = None) -> xr.DataArray:
    """1 where ``precip(time, lat, lon)`` has any valid value, 0 where it is NaN at every time.

    Reads ``steps`` time steps at a time (default: about 64 MB) and stops as soon as
    every cell has had a valid value, so memory stays flat in record length.
    """
    if steps is None:
        steps = max(1, CHUNK_VALUES // (precip.sizes["lat"] * precip.sizes["lon"]))
    valid = np.zeros((precip.sizes["lat"], precip.sizes["lon"]), dtype=bool)
    precip = precip.transpose("time", "lat", "lon")
    for start in range(0, precip.sizes["time"], steps):
        valid |= precip.isel(time=slice(start, start + steps)).notnull().any("time").values
        if valid.all():
            break
    return xr.DataArray(valid.astype(np.float32), dims=("lat", "lon"),
                        coords={"lat": precip["lat"], "lon": precip["lon"]})


def seed_mask_grid() -> tuple[np.ndarray, np.ndarray]:
    """Ascending cell centres (lat, lon) of the seed's 320 x 320 0.05 x 0.0625 deg grid."""
    (south, north), (west, east) = SEED_MASK_LAT, SEED_MASK_LON
    nlat, nlon = SEED_MASK_SHAPE
    lat = south + (np.arange(nlat) + 0.5) * (north - south) / nlat
    lon = west + (np.arange(nlon) + 0.5) * (east - west) / nlon
    return lat, lon


def land_mask_dataset(fraction: xr.DataArray, min_fraction: float, method: str, source: str,
                      requested: str) -> xr.Dataset:
    """The land-mask dataset: ``land_fraction`` float32 in [0, 1] and ``land`` int8 (fraction >= min_fraction)."""
    fraction = fraction.astype(np.float32).clip(0.0, 1.0)
    land = (fraction >= min_fraction).astype(np.int8)
    if not land.any():
        raise InputDataError(f"land mask ({method}): no cell has land_fraction >= land_mask.min_fraction "
                             f"= {min_fraction} (largest fraction {float(fraction.max()):.3f}); lower "
                             f"land_mask.min_fraction or check the domain")
    fraction.attrs = {"standard_name": "land_area_fraction", "long_name": "fraction of the cell that is land",
                      "units": "1", "valid_range": np.array([0.0, 1.0], dtype=np.float32), "source": source}
    land.attrs = {"standard_name": "land_binary_mask", "long_name": f"land (land_fraction >= {min_fraction})",
                  "units": "1", "flag_values": np.array([0, 1], dtype=np.int8), "flag_meanings": "sea land",
                  "source": source}
    ds = xr.Dataset({"land_fraction": fraction, "land": land})
    ds.attrs = {"title": "precipmodes land mask", "method": method, "requested_method": requested,
                "source": source, "land_mask_source": source, "min_fraction": float(min_fraction),
                "n_land_cells": int(land.sum()), "n_cells": int(land.size)}
    return ds


def land_of_grid(counts: xr.DataArray, grid: xr.Dataset, counts_origin, grid_origin) -> xr.DataArray:
    """``counts(lat, lon)`` checked to be on the grid of ``grid`` (:func:`precipmodes.grid.same_axis`)."""
    for axis in ("lat", "lon"):
        if not same_axis(counts[axis].values, grid[axis].values):
            raise InputDataError(f"{counts_origin}: its {axis} differs from that of {grid_origin}; rebuild it "
                                 "from the same grid (run snakemake again)")
    return counts.load()


def land_of(mask: xr.Dataset, data: xr.Dataset, mask_origin: str = "land mask",
            data_origin: str = "totals") -> xr.DataArray:
    """Boolean ``land(lat, lon)`` of the land-mask dataset ``mask``, checked to be on the grid of ``data``
    (:func:`precipmodes.grid.same_axis`) and given ``data``'s coordinates. ``*_origin`` name the files."""
    if "land" not in mask:
        raise InputDataError(f"{mask_origin}: no variable 'land'; rerun the land_mask rule")
    for axis in ("lat", "lon"):
        a, b = mask[axis].values, data[axis].values
        if not same_axis(a, b):
            raise InputDataError(
                f"{mask_origin}: its {axis} axis ({a.size} values) does not match the {axis} axis of "
                f"{data_origin} ({b.size} values); rebuild the land mask from the same grid"
            )
    return mask["land"].astype(bool).assign_coords(lat=data["lat"], lon=data["lon"])
