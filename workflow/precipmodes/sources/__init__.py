"""Sources of raw precipitation, all producing one canonical dataset.

Canonical raw dataset (checked by :func:`check_canonical`)::

    precip(time, lat, lon)  float32, amount per source step, >= 0, NaN = missing
        standard_name = "lwe_thickness_of_precipitation_amount", units = "mm"
        cell_methods = "time: sum"
    time(time)              naive UTC datetime64, start of each step, ascending, unique
        bounds = "time_bnds"
    time_bnds(time, nv)     [start, end) of each step
    lat(lat)                degrees_north, ascending
    lon(lon)                degrees_east, ascending, in -180..180

The ``seed_binary`` source delivers 72-hour totals already: its ``precip`` has
``cell_methods = "time: sum (interval: 72 hours)"``, the dataset the global
attribute ``precipmodes_already_accumulated_hours = 72`` (accumulate passes such
totals through) and the seed's land mask as ``seed_land(lat, lon)`` int8 (used by
``land_mask.method: auto``).

Kinds (``source.kind``): ``demo``, ``files``, ``http``, ``seed_binary``.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Mapping

import numpy as np
import xarray as xr

from ..errors import InputDataError
from ..logs import log, timed
from ..netcdf import write_netcdf

STANDARD_NAME = "lwe_thickness_of_precipitation_amount"
UNITS = "mm"


def source_input_paths(source: Mapping) -> list[str]:
    """Local files a source reads (for Snakemake ``input:``); empty for generated/remote data."""
    kind = source["kind"]
    if kind == "files":
        from .files import expand_paths

        return [str(p) for p in expand_paths(source["paths"])]
    if kind == "seed_binary":
        return [source["data"], source["times"], source["mask"]]
    return []


def load_source(source: Mapping, domain: Mapping) -> xr.Dataset:
    """The canonical raw dataset (lazy, dask-backed where the source allows) for ``source``."""
    kind = source["kind"]
    if kind == "demo":
        from .demo import demo_dataset

        return demo_dataset(source, domain)
    if kind == "files":
        from .files import open_files

        return open_files(source, domain)
    if kind == "http":
        from .http import open_http

        return open_http(source, domain)
    if kind == "seed_binary":
        from .seed_binary import open_seed_binary

        return open_seed_binary(source, domain)
    raise InputDataError(f"source.kind: unknown kind {kind!r}; use demo, files, http or seed_binary")


def build_raw(source: Mapping, domain: Mapping, output: str | os.PathLike, config: Mapping | None = None) -> Path:
    """Load the source, check it is canonical and write it to ``output`` (NetCDF, atomic)."""
    with timed(f"raw ({source['kind']})"):
        ds = load_source(source, domain)
        check_canonical(ds, origin=f"source.kind={source['kind']}")
        log.info("raw: %d steps x %d lat x %d lon (%s .. %s)", ds.sizes["time"], ds.sizes["lat"],
                 ds.sizes["lon"], str(ds.time.values[0])[:19], str(ds.time.values[-1])[:19])
        inputs = [p for p in source_input_paths(source) if Path(p).is_file()]
        return write_netcdf(ds, output, step=f"raw: canonical precipitation from source.kind={source['kind']}",
                            config=config, inputs=inputs)


def check_canonical(ds: xr.Dataset, origin: str = "raw dataset") -> None:
    """Raise InputDataError unless ``ds`` has the canonical layout described in this module."""
    problems = []
    if "precip" not in ds:
        problems.append("no variable 'precip'")
    else:
        precip = ds["precip"]
        if precip.dims != ("time", "lat", "lon"):
            problems.append(f"precip has dims {precip.dims}, expected ('time', 'lat', 'lon')")
        if precip.dtype != np.float32:
            problems.append(f"precip is {precip.dtype}, expected float32")
        if precip.attrs.get("units") != UNITS or precip.attrs.get("standard_name") != STANDARD_NAME:
            problems.append(f"precip needs units={UNITS!r} and standard_name={STANDARD_NAME!r}")
        if "time: sum" not in precip.attrs.get("cell_methods", ""):
            problems.append("precip needs cell_methods 'time: sum'")
    for name in ("time", "lat", "lon", "time_bnds"):
        if name not in ds.variables:
            problems.append(f"missing {name}")
    if not problems:
        time = ds["time"].values
        if time.size == 0:
            problems.append("no time steps")
        elif not np.all(np.diff(time) > np.timedelta64(0, "ns")):
            problems.append("time is not strictly increasing")
        if not np.all(np.diff(ds["lat"].values) > 0):
            problems.append("lat is not ascending")
        lon = ds["lon"].values
        if not np.all(np.diff(lon) > 0) or lon.min() < -180 or lon.max() > 180:
            problems.append("lon is not ascending within -180..180")
    if problems:
        raise InputDataError(f"{origin}: not a canonical precipitation dataset: " + "; ".join(problems))


def expand_globs(patterns: list[str]) -> list[Path]:
    """Expand paths/globs in order, without duplicates; raise naming any that match nothing."""
    found: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(os.path.expanduser(pattern)))
        if not matches:
            raise InputDataError(
                f"source.paths: {pattern!r} matches no file; check the path (relative paths are "
                f"relative to the working directory {os.getcwd()})"
            )
        found += [Path(m) for m in matches if Path(m) not in found]
    return found
