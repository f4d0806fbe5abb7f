"""Sources of raw precipitation, all producing one canonical dataset.

Canonical raw dataset (checked by :func:`check_canonical`)::

    precip(time, lat, lon)  float32, amount per source step, >= 0, NaN = missing
        standard_name = "lwe_thickness_of_precipitation_amount", units = "mm"
        cell_methods = "time: sum"
    time(time)              naive UTC datetime64, start of each step, ascending, unique
        bounds = "time_bnds"
    time_bnds(time, nv)     [start, end) of each step
    lat(lat)                degrees_north, ascending
    lon(lon)                degrees_east, ascending, in -180..180 (past 180 for a domain across 180°)

The ``seed_binary`` source delivers 72-hour totals already: its ``precip`` has
``cell_methods = "time: sum (interval: 72 hours)"``, the dataset the global
attribute ``precipmodes_already_accumulated_hours = 72`` (accumulate passes such
totals through) and the seed's land mask as ``seed_land(lat, lon)`` int8 (used by
``land_mask.method: auto``).

Kinds (``source.kind``): ``demo``, ``files``, ``http``, ``seed_binary``. The config holds each
kind's options under a key of its name (``source.files.paths``); the functions here and in the
kind modules take the *options* of one kind, flat, with ``kind`` added (:func:`source_options`).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from pathlib import Path
from typing import Mapping

import numpy as np
import xarray as xr

from precipmodes.errors import InputDataError
from precipmodes.io.netcdf import write_netcdf
from precipmodes.logs import log, timed

#: global attribute of a source that already holds window totals of this many hours (seed_binary): the
#: accumulation passes them through
ALREADY_ACCUMULATED_ATTR = "precipmodes_already_accumulated_hours"

#: keys of the ``source`` section that hold for every kind: the physical plausibility bounds
PLAUSIBILITY_KEYS = ("max_mm_per_hour", "max_window_mm", "implausible")


def source_options(source: Mapping) -> dict:
    """The options of the configured kind, flat, with ``kind``: what :func:`load_source` takes.

    ``{kind: files, files: {paths: [a.nc], variable: pr, ...}, demo: {...}, max_mm_per_hour: 500, ...}`` ->
    ``{kind: files, paths: [a.nc], variable: pr, ..., max_mm_per_hour: 500, ...}`` (options of other kinds
    are dropped; the plausibility bounds, :data:`PLAUSIBILITY_KEYS`, hold for every kind). ``source``
    is the validated section, which holds the options of its kind (the schema's defaults filled in;
    outside Snakemake ``precipmodes.config.section_defaults("source", ...)`` fills them).
    """
    kind = source["kind"]
    return {"kind": kind, **source[kind], **{key: source[key] for key in PLAUSIBILITY_KEYS}}


def plausibility(options: Mapping) -> dict:
    """The plausibility bounds in ``options`` (:data:`PLAUSIBILITY_KEYS`): ``max_mm_per_hour`` (each
    step, in :func:`~precipmodes.io.sources.canonical.standardise`), ``max_window_mm`` (each window total,
    :func:`~precipmodes.io.sources.values.check_window_totals`) and ``implausible`` (``error`` or
    ``missing``). Keys ``options`` leaves out (a kind's options given without the ``source`` section's,
    outside Snakemake) take the schema's defaults."""
    from precipmodes.config import section_defaults

    defaults = section_defaults("source", {"kind": options.get("kind", "files")})
    return {key: options.get(key, defaults[key]) for key in PLAUSIBILITY_KEYS}


def options_key(options: Mapping) -> str:
    """The config section that holds ``options`` (``source.files``, ``source.http``), for messages."""
    return f"source.{options.get('kind', 'files')}"


def local_inputs(options: Mapping) -> tuple[list[str], dict[str, str]]:
    """Local files a source reads (for Snakemake ``input:``), and those that are missing.

    Returns ``(inputs, missing)``: ``inputs`` lists every file/Zarr store the globs of
    ``source.files.paths`` match (in order, without duplicates) or the ``seed_binary`` files; a
    pattern that matches nothing, or a seed file that does not exist, is listed as itself and in
    ``missing`` as ``{path or pattern: config key}``. Empty for generated (demo) and remote (http)
    data, whose files come from the ``download`` rule.
    """
    kind = options["kind"]
    inputs: list[str] = []
    missing: dict[str, str] = {}
    if kind == "files":
        for pattern in options["paths"]:
            matches = sorted(glob.glob(os.path.expanduser(pattern)))
            if not matches:
                missing[pattern] = "source.files.paths"
            inputs += [m for m in (matches or [pattern]) if m not in inputs]
    elif kind == "seed_binary":
        for key in ("data", "times", "mask"):
            inputs.append(options[key])
            if not os.path.exists(options[key]):
                missing[options[key]] = f"source.seed_binary.{key}"
    return inputs, missing


def missing_message(missing: Mapping[str, str]) -> str:
    """The error for input files that are not there: each path with the config key that names it."""
    lines = [f"{key}: {path!r} matches no file; check the path (relative paths are relative to the working "
             f"directory {os.getcwd()})" for path, key in missing.items()]
    return "\n".join(lines)


def fingerprint(paths: list[str]) -> str:
    """sha256 over the path, size and modification time (ns) of each file (a folder, e.g. a Zarr store:
    of every file inside); a missing path counts as missing. For Snakemake ``params:``, so that a
    replaced or edited input reruns the rule even when its modification time went back."""
    entries = []
    for path in paths:
        if os.path.isdir(path):
            files = sorted(os.path.join(top, name) for top, _, names in os.walk(path) for name in names)
        else:
            files = [path]
        for name in files:
            stat = os.stat(name) if os.path.exists(name) else None
            entries.append([name, stat.st_size, stat.st_mtime_ns] if stat else [name, "missing"])
    return "sha256:" + hashlib.sha256(json.dumps(entries).encode()).hexdigest()


def load_source(source: Mapping, domain: Mapping) -> xr.Dataset:
    """The canonical raw dataset (lazy, dask-backed where the source allows) for ``source``, the
    options of one kind (:func:`source_options`)."""
    kind = source["kind"]
    if kind == "demo":
        from precipmodes.io.sources.demo import demo_dataset

        return demo_dataset(source, domain)
    if kind == "files":
        from precipmodes.io.sources.files import open_files

        return open_files(source, domain)
    if kind == "http":
        from precipmodes.io.sources.http import open_http

        return open_http(source, domain)
    if kind == "seed_binary":
        from precipmodes.io.sources.seed_binary import open_seed_binary

        return open_seed_binary(source, domain)
    raise InputDataError(f"source.kind: unknown kind {kind!r}; use demo, files, http or seed_binary")


def raw_files(*, source: Mapping, domain: Mapping, output: str | os.PathLike, config: Mapping | None = None,
              processes: int = 1) -> Path:
    """Rule raw: for the kinds read in place (``files``, downloaded ``http``) and the generated ``demo``
    write the index (:func:`~precipmodes.io.sources.index.build_index`) to ``output``; for the others load the source
    (complete options of one kind, :func:`source_options`), check it is canonical and write it to
    ``output`` (NetCDF, atomic); the provenance names the local files it read.

    ``config``, optional, is the whole config, digested into the provenance; ``processes``: how many child
    processes may check the files side by side (the rule's threads)."""
    from precipmodes.io.sources.index import build_index

    with timed(f"raw ({source['kind']})"):
        index = build_index(source, domain, processes)
        if index is not None:  # files read in place, or the demo generated where it is summed: no copy
            inputs = [entry["path"] for entry in json.loads(index.attrs["precipmodes_index"])["files"]]
            log.info("raw: index of %s, %d steps x %d lat x %d lon (%s .. %s)",
                     f"{len(inputs)} file(s)" if inputs else f"the generated {source['kind']}",
                     index.sizes["time"], index.sizes["lat"], index.sizes["lon"],
                     str(index.time.values[0])[:19], str(index.time.values[-1])[:19])
            what = "generated field" if source["kind"] == "demo" else "files"
            # the files are identified by size and mtime (as the index itself does), not hashed: hashing
            # would read the whole record once more on every rebuild of the index
            return write_netcdf(index, output, config=config, inputs_by_stat=inputs,
                                step=f"raw: index of the {what} of source.kind={source['kind']} (no copy)")
        ds = load_source(source, domain)
        check_canonical(ds, origin=f"source.kind={source['kind']}")
        log.info("raw: %d steps x %d lat x %d lon (%s .. %s)", ds.sizes["time"], ds.sizes["lat"],
                 ds.sizes["lon"], str(ds.time.values[0])[:19], str(ds.time.values[-1])[:19])
        inputs = [p for p in local_inputs(source)[0] if Path(p).is_file()]
        if source["kind"] == "http" and not source["opendap"]:
            from precipmodes.io.sources.urls import download_plan

            inputs = list(download_plan(source))
        return write_netcdf(ds, output, step=f"raw: canonical precipitation from source.kind={source['kind']}",
                            config=config, inputs=inputs)


def check_canonical(ds: xr.Dataset, origin: str = "raw dataset") -> None:
    """Raise InputDataError unless ``ds`` has the canonical layout described in this module."""
    from precipmodes.io.sources.canonical import STANDARD_NAME, UNITS

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
        if not np.all(np.diff(lon) > 0) or lon.min() < -180 or lon.max() > 360 or lon.max() - lon.min() >= 360:
            problems.append("lon is not ascending within -180..360 over less than 360 degrees")
    if problems:
        raise InputDataError(f"{origin}: not a canonical precipitation dataset: " + "; ".join(problems))


def expand_globs(patterns: list[str]) -> list[Path]:
    """Expand paths/globs of ``source.files.paths`` in order, without duplicates; raise naming any
    that match nothing."""
    found, missing = local_inputs({"kind": "files", "paths": patterns})
    if missing:
        raise InputDataError(missing_message(missing))
    return [Path(p) for p in found]
