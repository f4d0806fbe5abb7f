"""Source ``files``: local NetCDF, GRIB (cfgrib) or Zarr paths/globs -> canonical raw dataset.

Each file is opened lazily (xarray backend arrays wrapped in dask chunks of
``source.files.chunks``, default ``{time: 744}``), the variable ``source.files.variable`` is
picked and renamed to the canonical ``time``/``lat``/``lon`` names, the files are
concatenated along time (ordered by their first time stamp) and the result goes
through :func:`~precipmodes.io.sources.canonical.standardise`.

Time labels (``source.files.time_label``): ``auto`` uses the file's time bounds when it
has them; otherwise stamps are the END of the accumulation when the time axis is
GRIB's ``valid_time`` (cfgrib, ERA5 from the CDS) or described as a GRIB
forecast/observation time (Stage IV from THREDDS), and the START otherwise (daily
files stamped 00:00, E-OBS, CPC, CHIRPS). Set ``start`` or ``end`` to override.
"""

from __future__ import annotations

import functools
import importlib
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import xarray as xr

from precipmodes.config import resolution, section_defaults
from precipmodes.errors import InputDataError
from precipmodes.io.hdf5chunks import deflated_reads
from precipmodes.io.netcdf import values_in_slices
from precipmodes.io.sources import expand_globs, options_key, plausibility
from precipmodes.io.sources.canonical import standardise
from precipmodes.io.sources.integrity import FIX, check_complete, check_types, odd_type
from precipmodes.logs import log

GRIB_SUFFIXES = (".grib", ".grb", ".grib1", ".grib2", ".grb1", ".grb2")
LAT_NAMES = ("lat", "latitude", "nav_lat", "lats")
LON_NAMES = ("lon", "longitude", "nav_lon", "lons")
TIME_NAMES = ("time", "valid_time", "t", "date")


def expand_paths(patterns: Sequence[str]) -> list[Path]:
    """Expand ``source.files.paths`` (paths or globs) to files or Zarr stores, in order, without duplicates."""
    paths = expand_globs(list(patterns))
    for path in paths:
        if path.is_dir() and not _is_zarr(path):
            raise InputDataError(f"source.files.paths: {path} is a folder, not a file or a Zarr store; point "
                                 f"source.files.paths at the files, e.g. '{path}/*.nc'")
    return paths


@functools.cache
def _schema_chunks() -> dict[str, int]:
    return section_defaults("source.files")["chunks"]


def _chunks_left_out() -> dict[str, int]:
    """Chunk sizes of the dimensions that ``source.<kind>.chunks`` leaves out: ``time`` as in the schema's
    default chunks, ``lat`` and ``lon`` whole (-1)."""
    return {"lat": -1, "lon": -1, **_schema_chunks()}


def _is_zarr(path: Path) -> bool:
    return path.suffix == ".zarr" or any((path / m).exists() for m in (".zgroup", ".zarray", "zarr.json"))


def _engine(path: str | Path) -> str:
    text = str(path)
    if text.lower().endswith(GRIB_SUFFIXES):
        return "cfgrib"
    if "://" not in text and _is_zarr(Path(text)):
        return "zarr"
    return "netcdf4"


def _find(ds: xr.Dataset, names: tuple[str, ...], standard_name: str, units: tuple[str, ...]) -> str | None:
    for name in list(ds.coords) + list(ds.data_vars):
        attrs = ds[name].attrs
        if attrs.get("standard_name") == standard_name or attrs.get("units") in units:
            return str(name)
    return next((n for n in names if n in ds.variables), None)


def _time_label(ds: xr.Dataset, da: xr.DataArray, time_dim: str, label: str) -> tuple[xr.DataArray, str]:
    """``(da on the valid times when the file has them, what its time stamps mark: "start" or "end")`` for the
    configured ``label`` (``auto``: GRIB's valid times and GRIB time axes mark the end, others the start)."""
    if "valid_time" in ds.coords and ds["valid_time"].dims == (time_dim,):
        da = da.assign_coords({time_dim: ds["valid_time"].values})
        label = "end" if label == "auto" else label
    elif label == "auto" and "GRIB" in str(ds[time_dim].attrs.get("long_name", "")):
        label = "end"
    label = "start" if label == "auto" else label
    return da, label


def _without_extra_dims(da: xr.DataArray, time_dim: str, grid_dims: tuple, path, variable: str) -> xr.DataArray:
    """``da`` without its dimensions of length 1 besides time and the grid; InputDataError for a forecast
    ``step`` dimension or another dimension longer than 1."""
    space = [d for d in da.dims if d != time_dim]
    extra = [d for d in space if d not in grid_dims]
    if da.sizes.get("step", 1) > 1:
        raise InputDataError(f"{path}: variable {variable!r} has a forecast 'step' dimension of "
                             f"{da.sizes['step']} (GRIB accumulations per forecast step); write one time axis "
                             "first, e.g. `cdo -f nc4 copy in.grib out.nc` or `grib_copy`, or download ERA5 as "
                             "NetCDF (one valid_time axis)")
    if any(da.sizes[d] > 1 for d in extra):
        raise InputDataError(f"{path}: variable {variable!r} has extra dimensions "
                             f"{ {d: da.sizes[d] for d in extra} } besides time, lat, lon; select one level/"
                             "member first (e.g. `cdo sellevidx,1`) ")
    return da.isel({d: 0 for d in extra})


def open_one(path: str | Path, source: Mapping, error=InputDataError,
             deflated: bool = False) -> tuple[xr.Dataset, str]:
    """Open one file/store/URL as ``precip`` on canonical names, lazily, and its time label; ``deflated``:
    through :func:`~precipmodes.io.hdf5chunks.deflated_reads` (for reading its values, not its metadata).

    Returns a dataset with ``precip(time, lat, lon)`` (1-D lat/lon) or
    ``precip(time, y, x)`` with 2-D ``lat``/``lon``, ``time_bnds`` when the file has time
    bounds, and ``"start"``/``"end"`` for what its time stamps mark.
    """
    engine = _engine(path)
    kwargs = {"backend_kwargs": {"indexpath": ""}} if engine == "cfgrib" else {}
    if engine != "zarr" and "://" not in str(path) and not Path(path).is_file():
        raise InputDataError(f"{path}: file not found; check source.files.paths")
    try:
        ds = xr.open_dataset(path, engine=engine, chunks=None, **kwargs)
    except Exception as exc:  # backends raise OSError, ValueError, KeyError... with terse text
        raise error(f"{path}: cannot be opened as {engine} ({type(exc).__name__}: {exc}); the file may be "
                    "truncated or corrupt (download or copy it again) or not NetCDF/GRIB/Zarr") from exc
    variable = source["variable"]
    if variable not in ds.data_vars:
        raise InputDataError(f"{path}: no variable {variable!r} ({options_key(source)}.variable); the file has: "
                             f"{sorted(map(str, ds.data_vars))}")
    if deflated and engine == "netcdf4" and "://" not in str(path):
        ds = deflated_reads(ds, path, variable)
    da = ds[variable]
    if (why := odd_type(None, str(da.dtype))) is not None:
        raise InputDataError(f"{path}: variable {variable!r} ({options_key(source)}.variable) is of type {why}; "
                             f"precipmodes reads numbers only: {FIX.replace('name', repr(variable))}")
    lat = _find(ds, LAT_NAMES, "latitude", ("degrees_north", "degree_north", "degrees_N"))
    lon = _find(ds, LON_NAMES, "longitude", ("degrees_east", "degree_east", "degrees_E"))
    if lat is None or lon is None:
        raise InputDataError(f"{path}: cannot find latitude/longitude coordinates (looked for standard_name "
                             f"latitude/longitude, units degrees_north/east and names {LAT_NAMES + LON_NAMES}); "
                             f"the file has {sorted(map(str, ds.variables))}")
    time_dim = next((d for d in da.dims if d in ds.coords
                     and (d in TIME_NAMES or np.issubdtype(ds[d].dtype, np.datetime64))), None)
    if time_dim is None:
        raise InputDataError(f"{path}: variable {variable!r} has no time dimension (dims {da.dims})")
    da, label = _time_label(ds, da, time_dim, source["time_label"])
    da = _without_extra_dims(da, time_dim, ds[lat].dims + ds[lon].dims, path, variable)
    chunks = {**_chunks_left_out(), **source["chunks"]}
    ydim, xdim = (ds[lat].dims[0], ds[lon].dims[0]) if ds[lat].ndim == 1 else ds[lat].dims
    da = da.transpose(time_dim, ydim, xdim).chunk({time_dim: chunks["time"], ydim: chunks["lat"], xdim: chunks["lon"]})
    if ds[lat].ndim == 1:
        dims, coords = ("time", "lat", "lon"), {"lat": ds[lat].values, "lon": ds[lon].values}
    else:
        dims, coords = ("time", ydim, xdim), {"lat": ((ydim, xdim), ds[lat].values),
                                              "lon": ((ydim, xdim), ds[lon].values)}
    coords["time"] = da[time_dim].values
    if np.issubdtype(coords["time"].dtype, np.datetime64) and np.isnat(coords["time"]).any():
        where = int(np.flatnonzero(np.isnat(coords["time"]))[0])
        raise InputDataError(f"{path}: time stamp {where} (of {coords['time'].size}) of {time_dim!r} is missing "
                             "(NaT: a fill value or an unreadable date in the time axis); repair the file's time "
                             "axis (e.g. `cdo settaxis`) or leave the file out of " f"{options_key(source)}.paths")
    out = xr.Dataset({"precip": xr.DataArray(da.data, dims=dims, coords=coords, attrs=da.attrs, name=variable)},
                     attrs={"history": ds.attrs["history"]} if "history" in ds.attrs else {})
    bounds = ds[time_dim].attrs.get("bounds")
    if bounds in ds.variables and time_dim != "valid_time":
        out["time_bnds"] = (("time", "nv"), values_in_slices(ds[bounds], time_dim))
    return out, label


def check_files(paths: Sequence[str | Path], source: Mapping, processes: int = 1) -> None:
    """Before any library reads data: local NetCDF files must be as long as their headers declare
    (:func:`~precipmodes.io.sources.integrity.check_complete`) and hold numbers netCDF can read
    (:func:`~precipmodes.io.sources.integrity.check_types`, in up to ``processes`` child processes, while
    this process imports dask.array: xarray's first dataset imports it, ~0.35 s, whether dask is used or not)."""
    local = [Path(p) for p in paths if "://" not in str(p) and _engine(p) == "netcdf4" and Path(p).is_file()]
    for path in local:
        check_complete(path)
    check_types(local, source["variable"], options_key(source), processes,
                meanwhile=lambda: importlib.import_module("dask.array"))


def open_in_order(paths: Sequence[str | Path], source: Mapping, origin: str,
                  error=InputDataError, checked: bool = False,
                  time_chunks: Sequence[tuple[int, ...]] | None = None,
                  deflated: bool = False, processes: int = 1) -> list[tuple[xr.Dataset, str, str | Path]]:
    """Check and open ``paths`` (:func:`check_files`, :func:`open_one`), lazily: ``(dataset, time label,
    path)`` ordered by first time stamp; files that disagree in units or time labels or overlap in time
    are refused naming them. ``checked``: :func:`check_files` passed on these very files (an index's,
    unchanged since): not run again. ``time_chunks``: the dask chunks along time of each path (in the
    order given) instead of ``source['chunks']['time']``. ``deflated``: as :func:`open_one`'s; ``processes``: as
    :func:`check_files`'s."""
    if not paths:
        raise InputDataError(f"{options_key(source)}: no files to read")
    if not checked:
        check_files(paths, source, processes)
    sources = ([source] * len(paths) if time_chunks is None else
               [{**source, "chunks": {**source["chunks"], "time": chunks}} for chunks in time_chunks])
    opened = [(*open_one(path, options, error, deflated), path) for path, options in zip(paths, sources)]
    labels = {label for _, label, _ in opened}
    units = {str(ds["precip"].attrs.get("units")) for ds, _, _ in opened}
    if len(labels) > 1 or len(units) > 1:
        raise InputDataError(f"{origin}: the files disagree (units {sorted(units)}, time labels {sorted(labels)}); "
                             "read files of one product together")
    opened.sort(key=lambda item: item[0]["time"].values[0])
    for (first, _, path_a), (second, _, path_b) in zip(opened, opened[1:]):
        if second["time"].values[0] <= first["time"].values[-1]:
            raise InputDataError(f"{path_a} and {path_b} overlap in time (duplicate time stamps); remove one of "
                                 "them from source.files.paths")
    return opened


def standardise_opened(opened: list[tuple[xr.Dataset, str, str | Path]], source: Mapping, domain: Mapping,
                       origin: str, *, bounds: np.ndarray | None = None, select: slice | None = None,
                       check_values: bool = True) -> xr.Dataset:
    """Join the files of :func:`open_in_order` along time and standardise them
    (:func:`~precipmodes.io.sources.canonical.standardise`). ``bounds`` replace the time bounds of the files
    (the index's), ``select`` keeps a slice of the joined steps, ``check_values=False`` reads no value."""
    pieces = [ds for ds, _, _ in opened]
    if len(pieces) > 1:
        try:
            joined = xr.concat(pieces, dim="time", data_vars="minimal", coords="minimal", compat="override",
                               join="exact", combine_attrs="override")
        except ValueError as exc:
            raise InputDataError(f"{origin}: the files are on different grids and cannot be joined "
                                 f"along time ({exc}); regrid them to one grid first") from exc
    else:
        joined = pieces[0]
    precip = joined["precip"]
    if bounds is None:
        bounds = joined["time_bnds"].values if "time_bnds" in joined else None
    step_files = np.concatenate([np.full(ds.sizes["time"], str(path), dtype=object) for ds, _, path in opened])
    names = ", ".join(os.path.basename(str(path)) for _, _, path in opened)
    return standardise(
            precip, domain, units=source["units"], time_label=opened[0][1],
            step_hours=source["step_hours"], bounds=bounds,
            lon_convention=source["lon_convention"], lat_order=source["lat_order"],
            regrid=source["regrid"], resolution=resolution({"domain": domain}), origin=origin,
            plausibility=plausibility(source), step_files=step_files, key=options_key(source),
            select=select, check_values=check_values,
            attrs={"source": f"precipmodes source.kind=files: {names}", "source_variable": source["variable"]})


def paths_origin(paths: Sequence[str | Path]) -> str:
    """How messages name a list of files: the file, or ``N files first .. last``."""
    return str(paths[0]) if len(paths) == 1 else f"{len(paths)} files {paths[0]} .. {paths[-1]}"


def open_paths(paths: Sequence[str | Path], source: Mapping, domain: Mapping, origin: str | None = None,
               error=InputDataError) -> xr.Dataset:
    """Open ``paths`` (files, Zarr stores or OPeNDAP URLs), join them along time, standardise."""
    origin = origin or (paths_origin(paths) if paths else options_key(source))
    return standardise_opened(open_in_order(paths, source, origin, error), source, domain, origin)


def open_files(source: Mapping, domain: Mapping) -> xr.Dataset:
    """Canonical raw dataset (lazy) from ``source.files.paths`` / ``source.files.variable``."""
    paths = expand_paths(source["paths"])
    log.info("files: reading %s from %d path(s)", source["variable"], len(paths))
    return open_paths(paths, source, domain)
