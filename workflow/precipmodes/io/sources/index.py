"""The index of a file-based or generated source: ``raw.nc`` without the data.

For ``source.kind: files`` and ``http`` (downloaded files), rule ``raw`` writes no copy of the input
but an index (a data-less NetCDF, :func:`build_index`): the canonical coordinates ``time``,
``time_bnds``, ``lat``, ``lon`` of the standardised field, ``step_file(time)`` (which file holds each
step) and, in the global attribute :data:`INDEX_ATTR`, the files in time order with their steps and
fingerprints (size, modification time) and the options that standardise them (units, time labels,
longitude roll, latitude flip, domain, regridding). Every metadata check of
:func:`~precipmodes.io.sources.canonical.standardise` runs while it is built (units, overlaps, grids,
steps, the domain, truncated files, odd types), with the same messages; the checks of the values
(+-inf, negative, all missing, ``source.max_mm_per_hour``) run when a range of steps is read
(:func:`read_steps`), which opens only the files holding it.

The ``demo`` source is indexed too (:func:`build_index`): its index holds the coordinates and, in
:data:`INDEX_ATTR`, ``generated: demo`` with the source's options and the domain; :func:`read_index`
generates the steps asked for (the generator is deterministic per block), so no copy of the demo's field is
written either.

:func:`inspect_file` describes one file (variable, units, grid, steps, extent) without reading its data.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

import numpy as np
import xarray as xr

from precipmodes.errors import InputDataError
from precipmodes.io.netcdf import chunk_cache, history_chain, input_row_bytes, open_netcdf, stream_cache_bytes
from precipmodes.io.sources import options_key
from precipmodes.io.sources.canonical import time_bounds, to_datetime64
from precipmodes.io.sources.files import (check_files, expand_paths, open_in_order, open_one, paths_origin,
                                          standardise_opened)

#: global attribute of an index holding its files and reading options (JSON)
INDEX_ATTR = "precipmodes_index"
#: variable of the demo's index holding the generator's land fraction
DEMO_LAND = "demo_land_fraction"
#: decoded bytes per dask chunk of the steps read through an index (:func:`read_index`)
READ_CHUNK_BYTES = 16 * 2**20


def indexed_files(source: Mapping) -> tuple[list[str], dict] | None:
    """``(files, options to read them with)`` of a source read through an index (``files``; ``http``
    without ``opendap``: its downloaded files), or None for the other kinds (raw.nc holds their data)."""
    if source["kind"] == "files":
        return [str(path) for path in expand_paths(source["paths"])], dict(source)
    if source["kind"] == "http" and not source["opendap"]:
        from precipmodes.io.sources.http import downloaded_files

        return downloaded_files(source)
    return None


def _stamp(path: str | os.PathLike) -> dict:
    stat = os.stat(path)
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def inspect_file(path: str | os.PathLike, source: Mapping) -> dict:
    """What one file holds, from its metadata and its first step (no other data read): the variable, its
    units and type, the time label, the number of steps, the first and last stamp, the step length in
    hours (as rule ``raw`` infers it: time bounds, ``source.files.step_hours``, cell_methods or the most
    common spacing), the calendar months present (1..12, of the steps' starts), the contiguous stretches
    of steps (``runs``: ``[start, end)`` ISO stamps; more than one means gaps), the grid (shape,
    curvilinear or not, approximate spacing in degrees) and its extent, and the NaN cells of the first
    step. ``source`` holds the reading options of ``source.files`` (``variable``, ``time_label``,
    ``chunks``, ``step_hours``). Raises InputDataError naming the file as reading the source would."""
    check_files([path], source)
    ds, label = open_one(path, source)
    precip = ds["precip"]
    time = to_datetime64(ds["time"].values, str(path))
    bounds = time_bounds(time, bounds=ds["time_bnds"].values if "time_bnds" in ds else None, time_label=label,
                         step_hours=source.get("step_hours"), cell_methods=precip.attrs.get("cell_methods"),
                         origin=str(path), key=options_key(source))
    breaks = np.flatnonzero(bounds[1:, 0] != bounds[:-1, 1]) + 1
    runs = [[str(bounds[a, 0])[:19], str(bounds[b - 1, 1])[:19]]
            for a, b in zip(np.r_[0, breaks], np.r_[breaks, len(bounds)])]
    lat, lon = ds["lat"].values, ds["lon"].values
    if lat.ndim == 2:
        spacing = [float(np.nanmedian(np.abs(np.diff(lon, axis=1)))), float(np.nanmedian(np.abs(np.diff(lat, axis=0))))]
    else:
        spacing = [float(np.median(np.abs(np.diff(lon)))) if lon.size > 1 else None,
                   float(np.median(np.abs(np.diff(lat)))) if lat.size > 1 else None]
    step_hours = np.median((bounds[:, 1] - bounds[:, 0]) / np.timedelta64(1, "h"))
    return {"path": str(path), "variable": source["variable"], "units": precip.attrs.get("units"),
            "dtype": str(precip.dtype), "time_label": label, "steps": int(time.size),
            "first": str(time[0])[:19] if time.size else None, "last": str(time[-1])[:19] if time.size else None,
            "step_hours": float(step_hours), "months": sorted({int(m) for m in bounds[:, 0].astype("datetime64[M]")
                                                               .astype(int) % 12 + 1}),
            "runs": runs, "nan_cells": int(np.isnan(precip[0].values).sum()),
            "grid": {"shape": list(precip.shape[1:]), "curvilinear": lat.ndim == 2, "spacing": spacing,
                     "lat": [float(np.nanmin(lat)), float(np.nanmax(lat))],
                     "lon": [float(np.nanmin(lon)), float(np.nanmax(lon))]}}


def build_index(source: Mapping, domain: Mapping, processes: int = 1) -> xr.Dataset | None:
    """The index of ``source`` (options of one kind, :func:`~precipmodes.io.sources.source_options`) over
    ``domain``, checked as :func:`~precipmodes.io.sources.canonical.standardise` checks (values aside);
    the index of the generated demo; None for kinds whose data raw.nc holds (:func:`indexed_files`).
    ``processes``: as :func:`~precipmodes.io.sources.files.check_files`'s."""
    if source["kind"] == "demo":
        return _generated_index(source, domain)
    found = indexed_files(source)
    if found is None:
        return None
    paths, settings = found
    origin = paths_origin(paths)
    opened = open_in_order(paths, settings, origin, processes=processes)
    ds = standardise_opened(opened, settings, domain, origin, check_values=False)
    counts = [int(piece.sizes["time"]) for piece, _, _ in opened]
    files = [{"path": str(path), "steps": count, **_stamp(path)} for (_, _, path), count in zip(opened, counts)]
    index = xr.Dataset(coords={"time": ds["time"], "lat": ds["lat"], "lon": ds["lon"]})
    index["time_bnds"] = ds["time_bnds"]
    index["step_file"] = ("time", np.repeat(np.arange(len(files), dtype=np.int32), counts), {
        "long_name": "which file of the index holds the step (0-based, in the order of the files listed in "
                     f"the global attribute {INDEX_ATTR})"})
    index.attrs = {**ds.attrs, INDEX_ATTR: json.dumps(
        {"files": files, "cwd": os.getcwd(), "source": settings, "domain": dict(domain)}, default=str)}
    # the files' own history, gathered as they are opened (write_netcdf does not reopen them for it)
    history = history_chain(piece.attrs.get("history", "") for piece, _, _ in opened)
    if history:
        index.attrs["history"] = "\n".join(history)
    else:
        index.attrs.pop("history", None)
    return index


def _generated_index(source: Mapping, domain: Mapping) -> xr.Dataset:
    """The index of the demo: its coordinates, ``time_bnds``, attributes and the generator's land fraction
    (:data:`DEMO_LAND`: a partition need not load global-land-mask again); the field itself is not generated
    here."""
    from precipmodes.io.sources import check_canonical
    from precipmodes.io.sources.demo import demo_dataset, demo_land_fraction

    land = demo_land_fraction(domain)
    field = demo_dataset(source, domain, land)
    check_canonical(field, origin="source.kind=demo")
    index = xr.Dataset(coords={name: field[name] for name in ("time", "lat", "lon")})
    index["time_bnds"] = field["time_bnds"]
    index[DEMO_LAND] = (("lat", "lon"), land, {
        "long_name": "land fraction of the cell the demo generator uses (global-land-mask)", "units": "1"})
    index.attrs = {**field.attrs, INDEX_ATTR: json.dumps(
        {"files": [], "generated": "demo", "source": dict(source), "domain": dict(domain)}, default=str)}
    return index


def is_index(ds: xr.Dataset | Mapping) -> bool:
    """Whether ``ds`` (an opened raw.nc, or its global attributes) is an index rather than the data."""
    return INDEX_ATTR in getattr(ds, "attrs", ds)


def is_generated(index: xr.Dataset | Mapping) -> bool:
    """Whether ``index`` (:func:`is_index`, or its global attributes) is that of a generated source (the demo),
    not of files."""
    return "generated" in json.loads(getattr(index, "attrs", index)[INDEX_ATTR])


def read_index(index: xr.Dataset, i0: int = 0, i1: int | None = None, origin: str = "index", *,
               check_values: bool = True, cuts: np.ndarray | None = None) -> xr.Dataset:
    """The canonical dataset (lazy) of steps ``[i0, i1)`` of ``index``, from the files holding them only.
    A file that vanished, or changed since the index was built, is refused naming it (``origin`` names
    the index).

    ``check_values``: the values are checked in a pass of their own before the dataset is returned
    (:func:`~precipmodes.io.sources.values.scan_values`); False leaves them to the caller, which checks the
    blocks it reads (:func:`~precipmodes.io.sources.values.block_stats`). ``cuts``: steps of the index (e.g.
    the window starts) at which the dask chunks along time are cut, so that a reader of blocks that start
    there decompresses each chunk once; chunks are at most :data:`READ_CHUNK_BYTES` (decoded)."""
    info = json.loads(index.attrs[INDEX_ATTR])
    steps = index.sizes["time"]
    i1 = steps if i1 is None else i1
    if not 0 <= i0 < i1 <= steps:
        raise InputDataError(f"{origin}: steps {i0}..{i1} are outside the index's {steps} steps")
    if "generated" in info:
        return _generate(index, info, i0, i1, origin)
    step_file = index["step_file"].values
    wanted = range(int(step_file[i0]), int(step_file[i1 - 1]) + 1)
    # relative paths are relative to the working directory of the workflow that built the index
    files = [{**info["files"][k], "path": _located(info["files"][k]["path"], info.get("cwd", "."))} for k in wanted]
    for entry in files:
        path = entry["path"]
        if not Path(path).exists():
            raise InputDataError(f"{path}: file not found (it was there when the index {origin} was built); "
                                 f"put it back or run snakemake again, which rebuilds the index (rule raw) from the "
                                 f"files of {options_key(info['source'])}")
        if _stamp(path) != {"size": entry["size"], "mtime_ns": entry["mtime_ns"]}:
            raise InputDataError(f"{path}: changed since the index {origin} was built (its size or modification "
                                 "time differs from the index's); run snakemake again, which rebuilds the index "
                                 "(rule raw) and the totals of the windows the file holds")
    paths = [entry["path"] for entry in files]
    where = paths_origin(paths)
    # dask chunks of about READ_CHUNK_BYTES (decoded, on the domain's grid): what a partition holds in
    # memory per thread while it checks and sums its steps stays small, whatever source.files.chunks says
    cells = index.sizes["lat"] * index.sizes["lon"]
    chunks = {**info["source"].get("chunks", {})}
    chunks["time"] = max(1, min(int(chunks.get("time", 744)), READ_CHUNK_BYTES // (4 * cells)))
    source = {**info["source"], "chunks": chunks}
    first = int(np.flatnonzero(step_file == wanted[0])[0])
    time_chunks = None if cuts is None else _time_chunks(first, [entry["steps"] for entry in files],
                                                         np.asarray(cuts), chunks["time"])
    # netCDF-C caches 64 MiB per variable and open file by default: a partition reading 12 monthly files at
    # once held 1 GB of caches (bench_prepare); two rows of the files' chunks are enough for a stream
    with chunk_cache(stream_cache_bytes(input_row_bytes(paths[0], source["variable"]))):
        # checked when indexed, unchanged since
        opened = open_in_order(paths, source, where, checked=True, time_chunks=time_chunks, deflated=True)
    for (piece, _, path), entry in zip(opened, files):
        if piece.sizes["time"] != entry["steps"] or str(path) != entry["path"]:
            raise InputDataError(f"{path}: holds {piece.sizes['time']} steps, the index {origin} says "
                                 f"{entry['steps']}; run snakemake again, which rebuilds the index (rule raw)")
    count = sum(entry["steps"] for entry in files)
    bounds = index["time_bnds"].values[first:first + count]
    return standardise_opened(opened, source, info["domain"], where, bounds=bounds,
                              select=slice(i0 - first, i1 - first), check_values=check_values)


def _generate(index: xr.Dataset, info: Mapping, i0: int, i1: int, origin: str) -> xr.Dataset:
    """Steps ``[i0, i1)`` of the generated demo of ``index`` (lazy: only the generator's blocks holding them
    are computed); refused when the generator no longer gives the index's time steps."""
    from precipmodes.io.sources.demo import demo_dataset

    field = demo_dataset(info["source"], info["domain"], index[DEMO_LAND].values)
    if not np.array_equal(field["time"].values, index["time"].values):
        raise InputDataError(f"{origin}: the demo generator gives other time steps than this index holds; run "
                             "snakemake again, which rebuilds the index (rule raw)")
    return field.isel(time=slice(i0, i1))


def _time_chunks(first: int, steps: list[int], cuts: np.ndarray, most: int) -> list[tuple[int, ...]]:
    """Dask chunks along time of files holding ``steps`` steps each, back to back from step ``first`` of
    the index: cut at every step of ``cuts`` and at most ``most`` steps long."""
    chunks, start = [], first
    for count in steps:
        end = start + count
        inner = cuts[(cuts > start) & (cuts < end)]
        edges = [start]
        for stop in [*inner.tolist(), end]:
            edges.extend(range(edges[-1] + most, stop, most))
            edges.append(int(stop))
        chunks.append(tuple(int(b - a) for a, b in zip(edges, edges[1:])))
        start = end
    return chunks


def step_files(index: xr.Dataset, i0: int, i1: int) -> tuple[np.ndarray, str]:
    """The file (path as found from here) of each of the steps ``[i0, i1)`` of ``index``, and the config
    section of the source's options (``source.files``, ``source.http``), for messages."""
    info = json.loads(index.attrs[INDEX_ATTR])
    paths = np.array([_located(entry["path"], info.get("cwd", ".")) for entry in info["files"]], dtype=object)
    return paths[index["step_file"].values[i0:i1]], options_key(info["source"])


def _located(path: str, cwd: str) -> str:
    """``path`` as found from here: as it is when it exists, else relative to ``cwd`` (the index's)."""
    return path if os.path.isabs(path) or os.path.exists(path) else os.path.join(cwd, path)


def open_steps(path: str | os.PathLike, i0: int = 0, i1: int | None = None) -> xr.Dataset:
    """Steps ``[i0, i1)`` of the gridded input ``path`` as a canonical dataset (lazy): read through the index
    when ``path`` is one (:func:`read_index`), else a slice of the NetCDF file (raw.nc of the demo or
    seed_binary, upscaled.nc)."""
    ds = open_netcdf(path)
    if is_index(ds):
        with ds:
            return read_index(ds.load(), i0, i1, origin=str(path))
    return ds.isel(time=slice(i0, i1))
