"""NetCDF I/O at the edges: CF metadata, provenance, compression and atomic writes.

Every file the workflow writes goes through :func:`write_netcdf`, which

* sets ``Conventions``, ``title``, ``source``, ``institution`` and appends a
  timestamped ``history`` line for the step,
* records provenance attributes (package version, config digest, input digests)
  and writes the full config and provenance to a JSON sidecar ``<file>.json``,
* encodes time as float64 "hours since 1970-01-01" (CF-1.8 has no int64),
  removes ``_FillValue`` from coordinates, compresses data with zlib level
  :data:`COMPLEVEL` + shuffle and chunks it for reading one map or one series,
* writes to a temporary file in the same folder and renames it into place, so
  an interrupted write never leaves a truncated file under the final name.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

import numpy as np
import xarray as xr

from precipmodes import __version__
from precipmodes.errors import InputDataError, OutputError
from precipmodes.io.encoding import COMPLEVEL, add_cf_attrs, chunk_row_bytes, encoding_for
from precipmodes.io.owned import (SIDECAR_SUFFIX, is_own_sidecar, remove_owned, stale_temps, temp_path, temp_target,
                                  temp_writer_gone)

CONVENTIONS = "CF-1.8"
DIGEST_CHUNK = 4 * 1024 * 1024
LOW_DISK_BYTES = 16 * 1024 * 1024


def _fsync(path: Path) -> None:
    """Flush a written file to disk before it is renamed into place."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(DIGEST_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def config_digest(config: Mapping | None) -> str:
    """Hex sha256 of the config as canonical JSON (sorted keys)."""
    text = json.dumps(config or {}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def add_history(ds: xr.Dataset, line: str) -> xr.Dataset:
    """Return ``ds`` with ``"<UTC timestamp> precipmodes <version>: <line>"`` appended to ``history``."""
    entry = f"{utc_now()} precipmodes {__version__}: {line}"
    previous = ds.attrs.get("history", "")
    out = ds.copy()
    out.attrs["history"] = f"{previous}\n{entry}" if previous else entry
    return out


def input_histories(inputs: Iterable[str | os.PathLike]) -> list[str]:
    """The ``history`` attributes of the NetCDF files among ``inputs`` (attributes only), for
    :func:`history_chain`."""
    import netCDF4

    texts = []
    for path in inputs:
        if Path(path).suffix != ".nc" or not Path(path).is_file():
            continue
        try:
            with netCDF4.Dataset(path) as nc:
                texts.append(str(getattr(nc, "history", "")))
        except OSError:
            continue
    return texts


def history_chain(texts: Iterable[str]) -> list[str]:
    """The lines of the ``history`` attributes ``texts``, once each, sorted by their leading timestamp.

    Lines start with their UTC timestamp, so sorting them puts the chain from the source to
    the inputs in the order the steps ran; a line shared by several inputs (the raw data's
    step behind both a partition of the totals and land_mask.nc) is kept once.
    """
    lines = dict.fromkeys(line for text in texts for line in str(text).splitlines() if line.strip())
    return sorted(lines, key=_history_time)


def _history_time(line: str) -> str:
    """The timestamp that starts a history line (ties keep their order: the sort is stable)."""
    return line.split(" ", 1)[0]


def provenance(config: Mapping | None, inputs: Iterable[str | os.PathLike] = (),
               inputs_by_stat: Iterable[str | os.PathLike] = ()) -> dict:
    """Provenance record: package version, config digest and the digest of every input file: the sha256 of
    its bytes, or for ``inputs_by_stat`` ``"stat:size=<bytes>,mtime_ns=<modification time>"``."""
    digests = {str(p): sha256_file(p) for p in inputs if Path(p).is_file()}
    for p in inputs_by_stat:
        if Path(p).is_file():
            info = os.stat(p)
            digests[str(p)] = f"stat:size={info.st_size},mtime_ns={info.st_mtime_ns}"
    return {
        "precipmodes_version": __version__,
        "config_digest": config_digest(config),
        "created": utc_now(),
        "inputs": digests,
    }


def write_netcdf(
    ds: xr.Dataset,
    path: str | os.PathLike,
    *,
    title: str | None = None,
    step: str | None = None,
    config: Mapping | None = None,
    inputs: Iterable[str | os.PathLike] = (),
    inputs_by_stat: Iterable[str | os.PathLike] = (),
    complevel: int = COMPLEVEL,
    verify: Callable[[], object] | None = None,
) -> Path:
    """Write ``ds`` to ``path`` atomically as compressed NetCDF4 with CF + provenance attributes.

    ``verify``: called once the data are written, before the file takes its place at ``path`` (e.g. to
    judge what was checked while the data were computed); when it raises, nothing is written.

    ``step`` becomes the new ``history`` line, after the history of the NetCDF ``inputs`` and of
    ``ds`` itself (:func:`history_chain`), so every file tells its chain back to the source;
    ``config`` and ``inputs`` are digested
    into attributes (``precipmodes_config_digest``, ``precipmodes_input_digests``) and
    written in full to the sidecar ``<path>.json``. ``inputs_by_stat``: inputs identified by their size and
    modification time, not by a sha256 of their bytes (the source files an index reads in place: hashing
    them would read the whole record once more), nor opened for their history (``ds``'s own history carries
    it: the index gathers its files' as it opens them). Returns the final path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    inputs, inputs_by_stat = list(inputs), list(inputs_by_stat)
    record = provenance(config, inputs, inputs_by_stat)
    out = _with_attributes(ds, path, title, step, config, inputs, record)
    sidecar = path.with_name(path.name + ".json")
    tmp, sidecar_tmp = temp_path(path), temp_path(sidecar)
    # a writer killed with SIGKILL (or a crashed node) leaves its temp files behind: remove those whose
    # writer has ended (never a live writer's, e.g. another run's on a shared disk)
    for stale in (*stale_temps(path), *stale_temps(sidecar)):
        remove_owned(stale)
    encoding = encoding_for(out, complevel)
    _write_in_place(out, encoding, path, sidecar, tmp, sidecar_tmp, verify,
                    {**record, "file": path.name, "config": config or {}})
    return path


def _with_attributes(ds: xr.Dataset, path: Path, title: str | None, step: str | None, config: Mapping | None,
                     inputs: list, record: dict) -> xr.Dataset:
    """``ds`` (a shallow copy) with the CF, provenance and history attributes :func:`write_netcdf` writes."""
    out = add_cf_attrs(ds.copy(deep=False))
    for var in out.variables.values():  # dask-backed datetimes (time_bnds) would get other units than time
        if np.issubdtype(var.dtype, np.datetime64) and var.chunks is not None:
            var.load()
    out.attrs = dict(ds.attrs)
    out.attrs["Conventions"] = CONVENTIONS
    if title:
        out.attrs["title"] = title
    out.attrs.setdefault("title", path.stem)
    out.attrs.setdefault("institution", "precipmodes workflow")
    _label_source(out.attrs, config)
    out.attrs["precipmodes_version"] = __version__
    out.attrs["precipmodes_config_digest"] = record["config_digest"]
    out.attrs["precipmodes_input_digests"] = "; ".join(
        f"{Path(p).name}:{d}" if d.startswith("stat:") else f"{Path(p).name}:sha256:{d}"
        for p, d in record["inputs"].items()
    )
    out.attrs["precipmodes_provenance_file"] = path.name + ".json"
    chain = history_chain([*input_histories(inputs), str(out.attrs.get("history", ""))])
    if chain:
        out.attrs["history"] = "\n".join(chain)
    if step:
        out = add_history(out, step)
    return out


def _write_in_place(out: xr.Dataset, encoding: dict, path: Path, sidecar: Path, tmp: Path, sidecar_tmp: Path,
                   verify: Callable[[], object] | None, sidecar_record: dict) -> None:
    """Write ``out`` and its sidecar record to the temp names, ``verify``, then move both into place;
    OutputError when the disk is full; the temp files never stay behind."""
    try:
        out.to_netcdf(tmp, format="NETCDF4", engine="netcdf4", encoding=encoding)
        if verify is not None:
            verify()
        sidecar_tmp.write_text(json.dumps(sidecar_record, indent=2, default=str))
        for written in (tmp, sidecar_tmp):
            _fsync(written)
        os.replace(tmp, path)
        os.replace(sidecar_tmp, sidecar)
    except Exception as exc:
        free = shutil.disk_usage(path.parent).free
        if getattr(exc, "errno", None) == errno.ENOSPC or free < LOW_DISK_BYTES:
            raise OutputError(
                f"{path}: no space left on the device while writing ({free // 1024} KiB free); "
                "free some space (or point results/ at a larger disk) and rerun - nothing was written"
            ) from exc
        raise
    finally:
        for leftover in (tmp, sidecar_tmp):
            remove_owned(leftover)


def remove_leftovers(folders: Iterable[str | os.PathLike]) -> list[Path]:
    """Delete what killed writes left in ``folders`` (and below); return the paths removed.

    Two kinds, both the workflow's own (:mod:`precipmodes.io.owned`): temporary files whose writer has
    ended (:func:`~precipmodes.io.owned.temp_writer_gone`; a live writer's are kept) and provenance sidecars
    ``<file>.nc.json`` written by :func:`write_netcdf` whose NetCDF is gone (Snakemake removes the
    outputs of a job it reruns or that failed, not their sidecars). A user's files, also a ``*.nc.json``
    of theirs, are never touched. Only ``folders`` are walked (the workflow's own folders, never a whole
    results_dir), without following symbolic links.
    """
    removed = []
    for folder in folders:
        for parent, _, names in os.walk(folder):
            for name in names:
                path = Path(parent, name)
                if temp_target(path) is not None:
                    gone = temp_writer_gone(path)
                else:
                    gone = (name.endswith(SIDECAR_SUFFIX) and not path.with_suffix("").exists()
                            and is_own_sidecar(path))
                if gone and remove_owned(path):
                    removed.append(path)
    return sorted(removed)


DEMO_SOURCE = "SYNTHETIC demo data generated by precipmodes (source.kind=demo), not observations"


def _label_source(attrs: dict, config: Mapping | None) -> None:
    """Set ``source`` from the config; data from the demo is labelled SYNTHETIC in ``source`` and ``title``."""
    kind = (config or {}).get("source", {}).get("kind")
    if kind == "demo":
        attrs["source"] = DEMO_SOURCE
        if "SYNTHETIC" not in attrs["title"]:
            attrs["title"] = f"{attrs['title']} (SYNTHETIC demo data)"
    elif kind:
        attrs.setdefault("source", f"precipmodes workflow from source.kind={kind}")
    else:
        attrs.setdefault("source", "precipmodes workflow")


STEPS_PER_READ = 1024  # time steps per read of a small time-varying variable (values_in_slices)


def values_in_slices(var: xr.DataArray | xr.Variable, dim: str = "time", steps: int = STEPS_PER_READ) -> np.ndarray:
    """``var.values``, read ``steps`` along ``dim`` at a time.

    A variable with one chunk per time step (netCDF-C's default chunking of a variable on an unlimited
    dimension, e.g. ``time_bnds(time, nv)`` as ``(1, 2)``) costs HDF5 ~6.6 KB of selection bookkeeping
    per chunk in one read, which the allocator keeps: reading the 35,040 steps of a 4-year hourly
    ``time_bnds`` whole left 232 MB resident, in slices of 1,024 steps 20 MB.
    """
    size = var.sizes[dim] if dim in var.dims else 0
    if size <= steps:
        return np.asarray(var.values)
    return np.concatenate([np.asarray(var[{dim: slice(i, i + steps)}].values) for i in range(0, size, steps)],
                          axis=var.dims.index(dim))


def stream_cache_bytes(row_bytes: int) -> int:
    """Chunk cache for a stream through rows of chunks of ``row_bytes`` each: two rows (a block's edge
    may fall inside a row) and 1 MiB."""
    return 2 * int(row_bytes) + 2**20


def input_row_bytes(path: str | os.PathLike, variable: str = "precip") -> int:
    """:func:`~precipmodes.io.encoding.chunk_row_bytes` of ``variable`` in the NetCDF file ``path`` (0 when
    unreadable: the open that follows reports it)."""
    import netCDF4

    try:
        with netCDF4.Dataset(path) as nc:
            var = nc[variable]
            chunking = var.chunking()  # a contiguous (or netCDF-3: None) variable is read without the chunk cache
            return 0 if chunking in ("contiguous", None) else chunk_row_bytes(var.shape, tuple(chunking),
                                                                        var.dtype.itemsize)
    except (OSError, IndexError, KeyError, RuntimeError):
        return 0


@contextlib.contextmanager
def chunk_cache(nbytes: int) -> Iterator[None]:
    """netCDF-C's chunk cache for the files opened or created inside, ``nbytes`` per variable.

    netCDF-C's default is 64 MiB per variable and file, held (decompressed) while a file is open; a
    stream that reads or writes one row of chunks after the other needs only that row.
    """
    import netCDF4

    before = netCDF4.get_chunk_cache()
    netCDF4.set_chunk_cache(int(nbytes), before[1], before[2])
    try:
        yield
    finally:
        netCDF4.set_chunk_cache(*before)


def open_netcdf(path: str | os.PathLike, chunks: Mapping | str | None = None) -> xr.Dataset:
    """Open a NetCDF file written by the workflow (or any NetCDF), with a clear error if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: file not found; run the rule that makes it or fix the path")
    try:
        return xr.open_dataset(path, chunks=chunks, engine="netcdf4")
    except Exception as exc:  # netCDF4 raises OSError/RuntimeError with terse text
        raise InputDataError(
            f"{path}: not a readable NetCDF file ({exc}); it may be truncated or corrupt - "
            "delete it and rerun the step that makes it"
        ) from exc
