"""Archive an experiment's outputs with a verifiable MANIFEST.json.

Layout of ``<archive_dir>/<experiment>/``::

    svd.nc nmf.nc evaluation.nc train.nc test.nc land_mask.nc selection.nc   # re-encoded copies
    <file>.nc.json                                                           # provenance sidecars
    summary.json                                                             # the key numbers
    figures/*.png                                                            # the maps and series
    MANIFEST.json

Each NetCDF is re-written with :func:`precipmodes.netcdf.write_netcdf` (NetCDF4, zlib + shuffle,
chunks for reading one map or one series, CF-1.8 attributes, an ``archive`` history line).
``MANIFEST.json`` lists every other file of the folder with its sha256 and size, the variables
of each NetCDF with dims, dtype and units, the resolved config, package versions, the git commit,
the sha256 of the input files and the creation time. :func:`verify_archive` re-checks it.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from . import __version__
from .errors import InputDataError
from .netcdf import open_netcdf, sha256_file, utc_now, write_netcdf

MANIFEST = "MANIFEST.json"
MANIFEST_FORMAT = "precipmodes-archive/1"
ARCHIVE_COMPLEVEL = 6
#: distributions whose versions go into the manifest
PACKAGES = (
    "precipmodes", "numpy", "scipy", "pandas", "xarray", "dask", "distributed", "netCDF4",
    "h5netcdf", "scikit-learn", "snakemake", "matplotlib", "cartopy",
)


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution (None when absent), plus Python's."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(repo: str | os.PathLike = ".") -> dict | None:
    """``{"commit": sha, "dirty": bool}`` of the git checkout at ``repo``, or None outside git."""
    try:
        sha = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                             text=True, check=True, timeout=20).stdout.strip()
        status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, check=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": sha, "dirty": bool(status.strip())}


def describe_netcdf(path: str | os.PathLike) -> dict:
    """Variables of a NetCDF file: ``{name: {dims, shape, dtype, units, long_name, standard_name}}``."""
    with open_netcdf(path) as ds:
        info = {}
        for name, var in ds.variables.items():
            entry = {"dims": list(var.dims), "shape": list(var.shape), "dtype": str(var.dtype)}
            for attr in ("units", "long_name", "standard_name"):
                value = var.attrs.get(attr, var.encoding.get(attr))
                if value is not None:
                    entry[attr] = str(value)
            info[str(name)] = entry
    return info


def archive_name(source: Path) -> str:
    """Name of ``source`` inside an experiment's archive folder: ``figures/<name>.png`` for figures."""
    return f"figures/{source.name}" if source.suffix == ".png" else source.name


def copy_atomic(source: Path, target: Path) -> Path:
    """Copy ``source`` to ``target`` through a temporary file and a rename (never a half-copied file)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def archive_files(
    *,
    inputs: Sequence[str | os.PathLike],
    archive_dir: str | os.PathLike,
    name: str,
    config: Mapping | None = None,
    repo: str | os.PathLike = ".",
) -> Path:
    """Rule archive_experiment: copy ``inputs`` of experiment ``name`` into ``archive_dir``, then write
    ``MANIFEST.json``.

    NetCDF files are re-encoded (with their provenance sidecars), PNG figures are copied into
    ``figures/``, other files (summary.json) beside the NetCDF, byte for byte. Input names must be
    unique. Files in ``archive_dir`` that this call does not write are removed first, so the folder
    holds exactly what the manifest lists. ``config`` (the whole config) and the git commit of
    ``repo`` go into the manifest. Returns the manifest path.
    """
    archive_dir = Path(archive_dir)
    sources = [Path(p) for p in inputs]
    names = [archive_name(p) for p in sources]
    if len(set(names)) != len(names):
        raise InputDataError(f"archive inputs {names}: file names must be unique within archive/{name}")
    archive_dir.mkdir(parents=True, exist_ok=True)
    (archive_dir / MANIFEST).unlink(missing_ok=True)  # never a stale manifest beside new files
    for source, file_name in zip(sources, names):
        if source.suffix == ".nc":
            with open_netcdf(source, chunks={}) as ds:
                write_netcdf(ds, archive_dir / file_name, step=f"archive: {source} -> {archive_dir}",
                             config=config, inputs=[source], complevel=ARCHIVE_COMPLEVEL)
        else:
            copy_atomic(source, archive_dir / file_name)
    written = set(names) | {f"{n}.json" for n in names if n.endswith(".nc")}
    for stale in archive_dir.rglob("*"):
        if stale.is_file() and str(stale.relative_to(archive_dir)) not in written:
            stale.unlink()
    files = {}
    for file_name in sorted(written):
        path = archive_dir / file_name
        entry = {"sha256": sha256_file(path), "size": path.stat().st_size}
        if file_name.endswith(".nc"):
            entry["variables"] = describe_netcdf(path)
        files[file_name] = entry
    manifest = {
        "format": MANIFEST_FORMAT,
        "experiment": name,
        "created": utc_now(),
        "files": files,
        "inputs": {str(p): {"sha256": sha256_file(p), "size": p.stat().st_size} for p in sources},
        "config": config or {},
        "packages": package_versions(),
        "git": git_commit(repo),
        "precipmodes_version": __version__,
    }
    target = archive_dir / MANIFEST
    tmp = archive_dir / f".{MANIFEST}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, target)
    return target


@dataclass
class Verification:
    """Outcome of :func:`verify_archive`: files missing, not in the manifest, or altered."""

    archive_dir: Path
    checked: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.altered)

    def report(self) -> str:
        lines = [f"{self.archive_dir}: {len(self.checked)} file(s) checked against {MANIFEST}"]
        for label, names in (("MISSING", self.missing), ("EXTRA", self.extra), ("ALTERED", self.altered)):
            lines += [f"  {label}: {name}" for name in names]
        lines.append("  OK: every file matches its sha256 and size" if self.ok else
                     f"  FAILED: {len(self.missing)} missing, {len(self.extra)} extra, {len(self.altered)} altered")
        return "\n".join(lines)


def load_manifest(archive_dir: str | os.PathLike) -> dict:
    """Read and sanity-check ``archive_dir/MANIFEST.json``."""
    path = Path(archive_dir) / MANIFEST
    if not path.is_file():
        raise InputDataError(f"{path}: no manifest; is {archive_dir} an archive folder made by `snakemake archive`?")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputDataError(f"{path}: not valid JSON ({exc}); the manifest is damaged - re-run `snakemake archive`") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise InputDataError(f"{path}: has no 'files' table; it is not a precipmodes manifest ({MANIFEST_FORMAT})")
    return manifest


def verify_archive(archive_dir: str | os.PathLike) -> Verification:
    """Re-check size and sha256 of every file listed in the manifest; list missing, extra, altered files."""
    archive_dir = Path(archive_dir)
    if not archive_dir.is_dir():
        raise InputDataError(f"{archive_dir}: not a folder; pass an archive folder such as archive/<experiment>")
    manifest = load_manifest(archive_dir)
    result = Verification(archive_dir)
    present = {str(p.relative_to(archive_dir)) for p in archive_dir.rglob("*") if p.is_file()} - {MANIFEST}
    for name, entry in sorted(manifest["files"].items()):
        path = archive_dir / name
        if not path.is_file():
            result.missing.append(name)
            continue
        result.checked.append(name)
        if path.stat().st_size != entry.get("size") or sha256_file(path) != entry.get("sha256"):
            result.altered.append(name)
    result.extra = sorted(present - set(manifest["files"]))
    return result
