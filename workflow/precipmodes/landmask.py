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

import contextlib
import importlib.metadata
import os
from pathlib import Path
from typing import Mapping

import numpy as np
import xarray as xr

from .errors import ConfigError, InputDataError
from .grid import GRID_ATOL, same_axis
from .logs import log, timed
from .netcdf import open_netcdf, write_netcdf

SEED_MASK_SHAPE = (320, 320)
SEED_MASK_LON = (128.0, 148.0)
SEED_MASK_LAT = (30.0, 46.0)
CHUNK_VALUES = 16_000_000  # values per dask chunk when streaming the input (64 MB float32)
MAX_POINTS = 4_000_000  # global-land-mask points looked up at once
# auto: the largest share of the cells with data that may be wholly sea by global_land_mask for the NaN
# pattern to count as a coastline (E-OBS Iberia: 0 of 328; Stage IV regridded off the Carolinas: 30 %)
AUTO_MAX_SEA_SHARE = 0.1


def cell_edges(centres: np.ndarray) -> np.ndarray:
    """Edges (n + 1) of cells with the given ascending centres (midpoints; ends extrapolated)."""
    centres = np.asarray(centres, dtype=float)
    if centres.size == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    mid = (centres[1:] + centres[:-1]) / 2
    return np.concatenate([[2 * centres[0] - mid[0]], mid, [2 * centres[-1] - mid[-1]]])


def _subsample_points(centres: np.ndarray, subsamples: int) -> np.ndarray:
    """Points ``(n, subsamples)`` evenly inside each cell (cell-centred sub-cells)."""
    edges = cell_edges(centres)
    offsets = (np.arange(subsamples) + 0.5) / subsamples
    return edges[:-1, None] + offsets[None, :] * np.diff(edges)[:, None]


def globe_source(subsamples: int) -> str:
    version = importlib.metadata.version("global-land-mask")
    return (f"GLOBE 1/120 deg land/water grid (NOAA NGDC) via global-land-mask {version}, "
            f"{subsamples} x {subsamples} points per cell")


def globe_land_fraction(lat: xr.DataArray, lon: xr.DataArray, subsamples: int = 6) -> xr.DataArray:
    """Land fraction ``(lat, lon)`` in [0, 1] from global-land-mask, sub-sampling each cell.

    ``lat``/``lon`` are the grid's 1-D ascending cell centres in degrees.
    """
    from global_land_mask import globe

    sub_lat = np.clip(_subsample_points(lat.values, subsamples), -90.0, 90.0)
    sub_lon = (_subsample_points(lon.values, subsamples) + 180.0) % 360.0 - 180.0
    flat_lon = sub_lon.ravel()
    fraction = np.empty((lat.size, lon.size), dtype=np.float32)
    rows = max(1, MAX_POINTS // (flat_lon.size * subsamples))
    for start in range(0, lat.size, rows):
        block = sub_lat[start:start + rows].ravel()
        points = globe.is_land(np.repeat(block, flat_lon.size), np.tile(flat_lon, block.size))
        points = points.reshape(-1, subsamples, lon.size, subsamples)
        fraction[start:start + rows] = points.mean(axis=(1, 3))
    return xr.DataArray(fraction, dims=("lat", "lon"), coords={"lat": lat, "lon": lon})


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


def seed_mask_grid() -> tuple[np.ndarray, np.ndarray]:
    """Ascending cell centres (lat, lon) of the seed's 320 x 320 0.05 x 0.0625 deg grid."""
    (south, north), (west, east) = SEED_MASK_LAT, SEED_MASK_LON
    nlat, nlon = SEED_MASK_SHAPE
    lat = south + (np.arange(nlat) + 0.5) * (north - south) / nlat
    lon = west + (np.arange(nlon) + 0.5) * (east - west) / nlon
    return lat, lon


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
    steps = max(1, CHUNK_VALUES // max(cells, 1))
    steps = max(int(stored), steps // int(stored) * int(stored))
    return open_netcdf(path, chunks={"time": steps})


def land_fraction_for(grid: xr.Dataset, settings: Mapping, origin: str = "input",
                      observed: xr.DataArray | None = None) -> tuple[xr.DataArray, str, str]:
    """Land fraction on the grid of ``grid`` (a canonical dataset, or the index of one) by
    ``settings['method']``. ``observed(lat, lon)``: the totals' count of input steps with a value per
    cell (``n_observed_steps`` of totals.nc), from which ``data_nan`` is taken (no pass over the data);
    without it ``data_nan`` reads ``grid['precip']``.

    Returns ``(land_fraction(lat, lon), method used, source description)``.
    """
    method = settings["method"]
    if method not in ("auto", "data_nan", "global_land_mask", "file"):
        raise ConfigError(f"land_mask.method: unknown method {method!r}; use auto, data_nan, global_land_mask "
                          f"or file")
    lat, lon = grid["lat"], grid["lon"]
    if method == "file":
        return read_mask_file(settings["path"], lat, lon), "file", f"file {settings['path']}"
    if method == "auto" and "seed_land" in grid:
        seed = grid["seed_land"].astype(np.float32).fillna(0.0).transpose("lat", "lon").load()
        return seed.clip(0, 1), "seed_land", f"variable seed_land of {origin} (the seed's land mask)"
    if method in ("auto", "data_nan"):
        fraction = (data_nan_fraction(grid["precip"]) if observed is None
                    else (observed > 0).astype(np.float32).assign_coords(lat=lat, lon=lon))
        if not fraction.any():
            raise InputDataError(f"{origin}: precip is NaN at every cell and time step; there is no data "
                                 f"to mask (check the source)")
        nan_source = f"NaN pattern of {origin}: sea = cells missing at every time step"
        if method == "data_nan":
            return fraction, "data_nan", nan_source
    subsamples = int(settings["subsamples"])
    globe = globe_land_fraction(lat, lon, subsamples)
    if method == "auto" and not fraction.all():
        seen = fraction > 0
        sea = int((seen & (globe == 0)).sum())
        share = sea / int(seen.sum())
        if share <= AUTO_MAX_SEA_SHARE:
            return fraction, "data_nan", nan_source
        log.warning("land_mask.method auto: %d of %d cells with data in %s (%.0f %%, more than %.0f %%) are wholly "
                    "sea by global_land_mask, so the NaN pattern marks where the instrument sees, not the coast; "
                    "land = cells with data that global_land_mask calls land. To take every cell with data as "
                    "land, set land_mask.method: data_nan", sea, int(seen.sum()), origin, 100 * share,
                    100 * AUTO_MAX_SEA_SHARE)
        return (globe.where(seen, 0.0), "global_land_mask_where_observed",
                f"{globe_source(subsamples)}, where {origin} has data (cells missing at every time step: no data)")
    return globe, "global_land_mask", globe_source(subsamples)


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


def land_mask_files(*, grid: str | os.PathLike, output: str | os.PathLike, land_mask: Mapping,
                    config: Mapping | None = None, totals: str | os.PathLike | None = None) -> Path:
    """Rule land_mask: read the gridded input ``grid`` (raw.nc, its index or upscaled.nc, streamed), make
    the mask by the complete ``land_mask`` config section, write ``output`` (NetCDF); ``config``, optional,
    is the whole config, digested into the provenance. ``totals``: totals.nc, whose ``n_observed_steps``
    gives ``data_nan`` (:func:`land_fraction_for`)."""
    grid = Path(grid)
    with timed(f"land_mask ({land_mask['method']})"):
        with open_streamed(grid) as data, (open_netcdf(totals) if totals else contextlib.nullcontext()) as counts:
            observed = None if counts is None else land_of_grid(counts["n_observed_steps"], data, totals, grid)
            fraction, method, source = land_fraction_for(data, land_mask, origin=grid.name, observed=observed)
            ds = land_mask_dataset(fraction, float(land_mask["min_fraction"]), method, source,
                                   land_mask["method"])
            ds["lat"].attrs, ds["lon"].attrs = dict(data["lat"].attrs), dict(data["lon"].attrs)
        log.info("land mask: %d of %d cells are land (method %s)", ds.attrs["n_land_cells"], ds.attrs["n_cells"],
                 method)
        inputs = [grid] + ([land_mask["path"]] if method == "file" else []) + ([totals] if totals else [])
        return write_netcdf(ds, output, step=f"land_mask: method {method} ({source})", config=config,
                            inputs=inputs)


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
