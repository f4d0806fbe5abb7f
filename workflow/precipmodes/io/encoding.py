"""How the workflow's NetCDF variables are stored: CF attributes of the coordinates, chunking, compression.

:func:`encoding_for` is the encoding :func:`precipmodes.io.netcdf.write_netcdf` writes every dataset with (zlib
level :data:`COMPLEVEL`, chunks of :func:`chunk_sizes`); :func:`add_cf_attrs` the CF attributes it adds. Pure: nothing here reads or writes.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

TIME_UNITS = "hours since 1970-01-01 00:00:00"
TIME_CALENDAR = "proleptic_gregorian"


def chunk_row_bytes(shape: tuple[int, ...], chunks: tuple[int, ...] | None, itemsize: int) -> int:
    """Bytes of one row of chunks along the first dimension (time) across all the others: what a
    stream through ``(time, ...)`` needs cached so that each chunk is (de)compressed once."""
    first = chunks[0] if chunks else shape[0]
    return int(first * np.prod(shape[1:], dtype=np.int64) * itemsize)


RUN_CHUNK = 32  # chunk length along time, mode, component (chunk_sizes)


def chunk_sizes(shape: tuple[int, ...], dims: tuple[str, ...]) -> tuple[int, ...]:
    """Chunks of about 1 MiB (float32) that read one map or one series cheaply.

    Spatial dimensions (lat, lon, cell) are kept in tiles of at most 64 (cell:
    4096); every other dimension (time, mode, component) in runs of at most :data:`RUN_CHUNK`.
    """
    sizes = []
    for size, dim in zip(shape, dims):
        if dim in ("lat", "lon", "y", "x"):
            sizes.append(min(size, 64))
        elif dim == "cell":
            sizes.append(min(size, 4096))
        else:
            sizes.append(min(size, RUN_CHUNK))
    return tuple(max(1, s) for s in sizes)


# zlib level of the workflow's own files (the archive writes its copies at archive.ARCHIVE_COMPLEVEL).
# Level 1, not 4: one year of the demo at the seed's grid (1,460 x 320 x 320 float32, shuffle) wrote in
# 2.6 s instead of 3.8 s and read in 2.0 s instead of 2.5 s, for 87 instead of 84 MiB (Xeon, 2026-12-02);
# writes run under HDF5's one lock, so they bound the raw and accumulate rules on large grids.
COMPLEVEL = 1


def encoding_for(ds: xr.Dataset, complevel: int = COMPLEVEL) -> dict:
    """NetCDF4 encoding: compressed, chunked data; coordinates without _FillValue; CF time."""
    encoding: dict[str, dict] = {}
    for name, var in ds.variables.items():
        enc: dict = {}
        is_coord = name in ds.coords or name.endswith("_bnds")
        if np.issubdtype(var.dtype, np.datetime64):
            enc.update(units=TIME_UNITS, calendar=TIME_CALENDAR, dtype="float64")
        if is_coord or var.dtype.kind in "OSUb":
            enc["_FillValue"] = None
        if var.dtype.kind == "b":
            enc["dtype"] = "int8"
        if var.dtype in (np.int64, np.uint64):  # CF-1.8 has no 64-bit integers
            enc["dtype"] = "int32" if _fits_int32(var) else "float64"
        if var.ndim >= 1 and not is_coord and var.dtype.kind in "fiub" and var.size > 0:
            enc.update(
                zlib=True,
                complevel=complevel,
                shuffle=True,
                chunksizes=chunk_sizes(var.shape, var.dims),
            )
        if var.dtype.kind == "f" and not is_coord and "_FillValue" not in var.attrs:
            enc.setdefault("_FillValue", np.float32(np.nan) if var.dtype == np.float32 else np.nan)
        if enc:
            encoding[name] = enc
    return encoding


def _fits_int32(var: xr.Variable) -> bool:
    info = np.iinfo(np.int32)
    return var.size == 0 or (info.min <= int(var.min()) and int(var.max()) <= info.max)


#: CF attributes that coordinates named like this get unless the dataset sets them
COORDINATE_ATTRS = {
    "time": {"standard_name": "time", "long_name": "time", "axis": "T"},
    "lat": {"standard_name": "latitude", "long_name": "latitude", "units": "degrees_north", "axis": "Y"},
    "lon": {"standard_name": "longitude", "long_name": "longitude", "units": "degrees_east", "axis": "X"},
}


def add_cf_attrs(ds: xr.Dataset) -> xr.Dataset:
    """Fill in missing CF attributes (in place; returns ``ds``).

    ``time``/``lat``/``lon`` get standard_name, long_name, units (axis only where they are
    dimension coordinates), ``time`` gets ``bounds: time_bnds`` when that variable exists, and
    any other variable (except ``*_bnds``) without ``long_name`` or ``standard_name`` gets its
    name as ``long_name``.
    """
    for name, var in ds.variables.items():
        for key, value in COORDINATE_ATTRS.get(str(name), {}).items():
            if key == "axis" and var.dims != (name,):
                continue
            if key == "units" and np.issubdtype(var.dtype, np.datetime64):
                continue
            var.attrs.setdefault(key, value)
        is_bounds = str(name).endswith("_bnds")  # CF: boundary variables inherit their attributes
        if not is_bounds and "long_name" not in var.attrs and "standard_name" not in var.attrs:
            var.attrs["long_name"] = str(name).replace("_", " ")
    if "time" in ds.variables and "time_bnds" in ds.variables:
        ds["time"].attrs.setdefault("bounds", "time_bnds")
    return ds
