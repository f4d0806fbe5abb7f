"""Archive an experiment's outputs with a verifiable MANIFEST.json.

Layout of ``<archive_dir>/<experiment>/``::

    svd.nc nmf.nc evaluation.nc train.nc test.nc land_mask.nc selection.nc   # re-encoded copies
    <file>.nc.json                                                           # provenance sidecars
    summary.json                                                             # the key numbers
    figures/*.png                                                            # the maps and series
    MANIFEST.json  MANIFEST.json.sha256

Each NetCDF is re-written with :func:`precipmodes.io.netcdf.write_netcdf` (NetCDF4, zlib + shuffle,
chunks for reading one map or one series, CF-1.8 attributes, an ``archive`` history line).
``MANIFEST.json`` lists every other file of the folder with its sha256 and size, the variables
of each NetCDF with dims, dtype and units, the resolved config, package versions, the git commit,
the sha256 of the input files and the creation time; ``MANIFEST.json.sha256`` holds the sha256 of
the manifest itself. :func:`verify_archive` re-checks both; manifest entries must be plain paths
inside the folder (no ``..``, no absolute path, no symbolic link).

Data safety: an archive is built in a temporary folder beside the experiment's folder, verified,
and only then swapped in; the previous archive is removed file by file (only what its manifest
lists, through :mod:`precipmodes.io.owned`) once the new one is in place. A folder that holds anything
but an earlier archive is refused, and nothing in it is deleted.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Mapping, Sequence

from precipmodes import __version__
from precipmodes.errors import InputDataError, OutputError
from precipmodes.io.manifest import (MANIFEST, MANIFEST_DIGEST, MANIFEST_FILES, MANIFEST_FORMAT, entry_problem,
                                     folder_files, load_manifest, manifest_problem, verify_archive, write_atomic,
                                     write_manifest)
from precipmodes.io.netcdf import open_netcdf, sha256_file, utc_now, write_netcdf
from precipmodes.io.owned import (OwnershipError, remove_owned, remove_owned_tree, temp_path, temp_target,
                                  temp_writer_gone)
from precipmodes.logs import log

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
    tmp = temp_path(target)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    finally:
        remove_owned(tmp)
    return target


def previous_archive(folder: Path, name: str) -> list[str] | None:
    """The files of the archive already in ``folder`` (those its manifest lists, the manifest and its
    digest), which a new archive of experiment ``name`` replaces; None when ``folder`` is absent or empty.

    Raises :class:`OutputError`, deleting nothing, when ``folder`` holds anything else: no manifest
    (someone else's folder), a manifest edited since (it no longer matches ``MANIFEST.json.sha256``) or
    listing paths outside the folder, or files the manifest does not list (the user's own).
    """
    if not os.path.lexists(folder):
        return None
    if folder.is_symlink() or not folder.is_dir():
        raise OutputError(
            f"{folder}: is a file or a symbolic link, not a folder `snakemake archive` can fill with experiment "
            f"{name!r}; move it away, or set `archive_dir` in the config to another folder (now {folder.parent})")
    if not any(folder.iterdir()):
        return None

    def refused(why: str) -> OutputError:
        return OutputError(
            f"{folder}: {why}. `snakemake archive` puts experiment {name!r} there and never deletes files it "
            f"did not write: move your files out of {folder}, or set `archive_dir` in the config to another "
            f"folder (now {folder.parent})")

    if not (folder / MANIFEST).is_file():
        raise refused(f"is not empty and holds no {MANIFEST} of an earlier archive")
    try:
        manifest = load_manifest(folder)
    except InputDataError as exc:
        raise refused(f"its {MANIFEST} is not one `snakemake archive` wrote ({exc})") from exc
    if manifest.get("format") != MANIFEST_FORMAT:
        raise refused(f"its {MANIFEST} is not a {MANIFEST_FORMAT} manifest")
    problem = manifest_problem(folder) if os.path.lexists(folder / MANIFEST_DIGEST) else None  # older: none
    if problem:
        raise refused(f"{problem} (`precipmodes verify {folder}` shows the details)")
    listed = list(manifest["files"])
    unsafe = [entry for entry in listed if entry_problem(folder, entry)]
    if unsafe:
        raise refused(f"its {MANIFEST} lists {', '.join(unsafe[:5])}: outside the folder or through a symbolic link")
    unlisted = sorted(entry for entry in folder_files(folder) - set(listed) - set(MANIFEST_FILES)
                      if temp_target(folder / entry) is None)
    if unlisted:
        raise refused(f"it holds {len(unlisted)} file(s) its {MANIFEST} does not list: "
                      + ", ".join(unlisted[:5]) + (" ..." if len(unlisted) > 5 else ""))
    return [*listed, *MANIFEST_FILES]


def _swap_in(staging: Path, folder: Path, previous: list[str] | None) -> None:
    """Put the verified archive ``staging`` in place of ``folder``: the old folder is renamed to a temporary
    name, the new one to ``folder``, then the old one's files (``previous``) are removed one by one."""
    if previous is None:
        os.rename(staging, folder)  # replaces an empty folder
        return
    old = temp_path(folder)
    os.rename(folder, old)
    try:
        os.rename(staging, folder)
    except OSError:
        os.rename(old, folder)
        raise
    try:
        remove_owned_tree(old, declared=[old / entry for entry in previous])
    except (OwnershipError, OSError) as exc:
        log.warning("%s: the previous archive of %s was replaced but is left in place (%s); "
                    "move out what you need and delete it", old, folder, exc)


def _discard(staging: Path, names: Sequence[str]) -> None:
    """Remove the unfinished archive ``staging`` (only ``names``, the manifest and temporary files)."""
    if not staging.is_dir():
        return
    try:
        remove_owned_tree(staging, declared=[staging / entry for entry in [*names, *MANIFEST_FILES]])
    except (OwnershipError, OSError) as exc:
        log.warning("%s: the unfinished archive is left in place (%s)", staging, exc)


def archive_files(
    *,
    inputs: Sequence[str | os.PathLike],
    archive_dir: str | os.PathLike,
    name: str,
    config: Mapping | None = None,
    repo: str | os.PathLike = ".",
    receipt: str | os.PathLike | None = None,
) -> Path:
    """Rule archive_experiment: archive ``inputs`` of experiment ``name`` into folder ``archive_dir``
    with ``MANIFEST.json`` and ``MANIFEST.json.sha256``.

    NetCDF files are re-encoded (with their provenance sidecars), PNG figures are copied into
    ``figures/``, other files (summary.json) beside the NetCDF, byte for byte. Input names must be
    unique. ``config`` (the whole config) and the git commit of ``repo`` go into the manifest.

    The new archive is built in a temporary folder beside ``archive_dir`` and verified, and only then
    swapped in (:func:`_swap_in`): on any failure (a full disk) the previous archive stays as it was.
    A folder that holds anything but an earlier archive is refused first (:func:`previous_archive`).
    ``receipt`` (the rule's output) then records the new manifest's digest (:func:`write_receipt`).
    Returns the manifest path.
    """
    folder = Path(archive_dir)
    sources = [Path(p) for p in inputs]
    names = [archive_name(p) for p in sources]
    if len(set(names)) != len(names):
        raise InputDataError(f"archive inputs {names}: file names must be unique within archive/{name}")
    previous = previous_archive(folder, name)
    written = sorted(set(names) | {f"{n}.json" for n in names if n.endswith(".nc")})
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = temp_path(folder)
    try:
        staging.mkdir()
        _fill_staging(staging, sources, names, written, folder, name, config, repo)
        check = verify_archive(staging)
        if not check.ok:
            raise OutputError(f"{staging}: the new archive does not match its manifest:\n{check.report()}")
        _swap_in(staging, folder, previous)
    except BaseException as exc:
        _discard(staging, written)
        if isinstance(exc, (OSError, OutputError)):
            kept = f"the previous archive in {folder} is kept unchanged" if previous else f"{folder} is unchanged"
            raise OutputError(
                f"{folder}: archiving {name!r} failed ({exc}); {kept}. Fix the cause (a full disk: free space, "
                "or set `archive_dir` to a larger disk) and re-run `snakemake archive`") from exc
        raise
    if receipt is not None:
        write_receipt(receipt, folder)
    return folder / MANIFEST


def _fill_staging(staging: Path, sources: list[Path], names: list[str], written: list[str], folder: Path, name: str,
                  config: Mapping | None, repo: str | os.PathLike) -> None:
    """Write the archive of :func:`archive_files` into the empty folder ``staging``: the plan, the re-encoded
    NetCDF and copied files (``sources`` under ``names``), then the manifest of what ``written`` names."""
    # the plan first: a writer killed halfway leaves a folder whose own manifest names what it holds
    write_manifest(staging, {"format": MANIFEST_FORMAT, "experiment": name, "building": True,
                              "files": dict.fromkeys(written)})
    for source, file_name in zip(sources, names):
        if source.suffix == ".nc":
            with open_netcdf(source, chunks={}) as ds:
                write_netcdf(ds, staging / file_name, step=f"archive: {source} -> {folder}",
                             config=config, inputs=[source], complevel=ARCHIVE_COMPLEVEL)
        else:
            copy_atomic(source, staging / file_name)
    files = {}
    for file_name in written:
        path = staging / file_name
        if entry_problem(staging, file_name) or not path.is_file():
            raise OutputError(f"{path}: not a plain file inside the archive folder; not archived")
        entry = {"sha256": sha256_file(path), "size": path.stat().st_size}
        if file_name.endswith(".nc"):
            entry["variables"] = describe_netcdf(path)
        files[file_name] = entry
    write_manifest(staging, {
        "format": MANIFEST_FORMAT,
        "experiment": name,
        "created": utc_now(),
        "files": files,
        "inputs": {str(p): {"sha256": sha256_file(p), "size": p.stat().st_size} for p in sources},
        "config": config or {},
        "packages": package_versions(),
        "git": git_commit(repo),
        "precipmodes_version": __version__,
    })


def write_receipt(receipt: str | os.PathLike, folder: str | os.PathLike) -> Path:
    """Record that ``folder`` holds a finished archive: the rule's output, with the manifest's sha256."""
    receipt, folder = Path(receipt), Path(folder)
    receipt.parent.mkdir(parents=True, exist_ok=True)
    record = {"archive": str(folder), "manifest_sha256": sha256_file(folder / MANIFEST), "created": utc_now()}
    return write_atomic(receipt, (json.dumps(record, indent=2) + "\n").encode())


def receipt_current(receipt: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """Whether ``folder`` still holds the archive ``receipt`` records: the same manifest bytes and every
    file it lists present with its size (a quick check: no file is hashed but the manifest)."""
    folder = Path(folder)
    try:
        record = json.loads(Path(receipt).read_text())
        manifest = load_manifest(folder)
        if not isinstance(record, dict) or record.get("manifest_sha256") != sha256_file(folder / MANIFEST):
            return False
    except (OSError, ValueError, InputDataError):
        return False
    return all(isinstance(entry, dict) and not entry_problem(folder, name) and (folder / name).is_file()
               and (folder / name).stat().st_size == entry.get("size") for name, entry in manifest["files"].items())


def drop_stale_receipt(receipt: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """Remove ``receipt`` when the archive it records is gone or changed (deleted folder or file, edited
    manifest), so that Snakemake archives the experiment again; return whether it did."""
    if os.path.lexists(receipt) and not receipt_current(receipt, folder):
        return remove_owned(receipt, declared=[receipt])
    return False


def remove_stale_archive_temps(archive_root: str | os.PathLike) -> list[Path]:
    """Remove the temporary folders ``.<experiment>.tmp-<host>-<pid>-<token>`` under ``archive_root`` whose
    writer has ended (killed, crashed): only the files their own manifest lists, the manifest, temporary
    files and provenance sidecars, then the emptied folders; a folder holding anything else stays (a
    warning names it). A writer killed between the two renames of its swap leaves ``<experiment>``
    missing: the newest of its temporary folders that verifies is renamed back to it first.
    Returns the folders removed.
    """
    root = Path(archive_root)
    if not root.is_dir():
        return []
    stale = sorted(p for p in root.iterdir()
                   if temp_target(p) is not None and not p.is_symlink() and p.is_dir() and temp_writer_gone(p))
    for target in sorted({temp_target(p) for p in stale}):
        complete = [p for p in stale if temp_target(p) == target and (p / MANIFEST).is_file()
                    and verify_archive(p).ok] if not os.path.lexists(target) else []
        if complete:
            newest = max(complete, key=lambda p: str(load_manifest(p).get("created", "")))
            os.rename(newest, target)
            stale.remove(newest)
            log.warning("%s: restored from %s (its writer ended between two renames)", target, newest.name)
    removed = []
    for folder in stale:
        try:
            listed = list(load_manifest(folder)["files"]) if (folder / MANIFEST).is_file() else []
        except InputDataError:
            listed = []
        declared = [folder / entry for entry in [*listed, *MANIFEST_FILES] if not entry_problem(folder, entry)]
        try:
            remove_owned_tree(folder, declared=declared)
            removed.append(folder)
        except (OwnershipError, OSError) as exc:
            log.warning("%s: a stale archive folder left in place (%s)", folder, exc)
    return removed
