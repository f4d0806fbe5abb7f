"""An archive folder's MANIFEST.json: writing it, reading it and verifying a folder against it.

``MANIFEST.json`` lists every file of ``<archive_dir>/<experiment>/`` with its sha256 and size (NetCDF: its
variables); ``MANIFEST.json.sha256`` the manifest's own digest. :func:`verify_archive` reports what is
missing, extra, altered or unsafe (a link, a folder where a file belongs); :mod:`precipmodes.io.archive` builds
the archives.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Mapping

from precipmodes.errors import InputDataError
from precipmodes.io.netcdf import sha256_file
from precipmodes.io.owned import folder_contents, remove_owned, temp_path

MANIFEST = "MANIFEST.json"


#: sha256 of MANIFEST.json's bytes, in ``sha256sum``'s format: an edit of the manifest shows
MANIFEST_DIGEST = f"{MANIFEST}.sha256"


#: the files of an archive folder its manifest does not list
MANIFEST_FILES = (MANIFEST, MANIFEST_DIGEST)


MANIFEST_FORMAT = "precipmodes-archive/1"


def write_atomic(target: Path, data: bytes) -> Path:
    """Write ``data`` to ``target`` through a temporary file and a rename (never a half-written file)."""
    tmp = temp_path(target)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, target)
    finally:
        remove_owned(tmp)
    return target


def entry_problem(folder: Path, name: str) -> str | None:
    """Why manifest entry ``name`` is not a file path inside ``folder`` (None when it is): empty,
    absolute, with a ``..`` part, or through a symbolic link (the entry itself or a folder on its way)."""
    parts = PurePosixPath(name).parts
    if not parts or PurePosixPath(name).is_absolute() or ".." in parts or "\\" in name:
        return "outside the archive folder"
    path = folder
    for part in parts:
        path = path / part
        if path.is_symlink():
            return "a symbolic link"
    return None


def folder_files(folder: Path) -> set[str]:
    """Names (relative, with ``/``) of every file under ``folder``; symbolic links count as files."""
    return {path.relative_to(folder).as_posix() for path in folder_contents(folder)[0]}


def write_manifest(folder: Path, manifest: Mapping) -> Path:
    """Write ``MANIFEST.json`` and ``MANIFEST.json.sha256`` (``sha256sum -c`` reads it), each atomically."""
    data = (json.dumps(manifest, indent=2, default=str) + "\n").encode()
    write_atomic(folder / MANIFEST_DIGEST, f"{hashlib.sha256(data).hexdigest()}  {MANIFEST}\n".encode())
    return write_atomic(folder / MANIFEST, data)


def manifest_problem(folder: Path) -> str | None:
    """Why ``folder/MANIFEST.json`` is not the one the archive wrote (None when it is): its digest file
    ``MANIFEST.json.sha256`` is missing or does not match it, or it is a symbolic link."""
    manifest, digest = folder / MANIFEST, folder / MANIFEST_DIGEST
    if manifest.is_symlink() or digest.is_symlink():
        return f"{MANIFEST} or {MANIFEST_DIGEST} is a symbolic link, not the archive's own file"
    if not digest.is_file():
        return f"{MANIFEST_DIGEST} is missing, so an edit of {MANIFEST} cannot be detected"
    if digest.read_text(errors="replace").split()[:1] != [sha256_file(manifest)]:
        return (f"{MANIFEST} does not match {MANIFEST_DIGEST}: the manifest (its files, config, git or "
                "inputs) was edited after archiving")
    return None


@dataclass
class Verification:
    """Outcome of :func:`verify_archive`: the manifest's own digest, files missing, not in the manifest,
    altered, or listed outside the folder or through a symbolic link (unsafe)."""

    archive_dir: Path
    manifest_problem: str | None = None
    checked: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)
    unsafe: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.manifest_problem or self.missing or self.extra or self.altered or self.unsafe)

    def report(self) -> str:
        lines = [f"{self.archive_dir}: {len(self.checked)} file(s) checked against {MANIFEST}"]
        if self.manifest_problem:
            lines.append(f"  MANIFEST: {self.manifest_problem}")
        for label, names in (("MISSING", self.missing), ("EXTRA", self.extra), ("ALTERED", self.altered),
                             ("UNSAFE", self.unsafe)):
            lines += [f"  {label}: {name}" for name in names]
        lines.append(
            f"  OK: {MANIFEST} matches {MANIFEST_DIGEST} and every file its sha256 and size" if self.ok else
            f"  FAILED: {len(self.missing)} missing, {len(self.extra)} extra, {len(self.altered)} altered, "
            f"{len(self.unsafe)} unsafe" + (f"; {MANIFEST} not the archived one" if self.manifest_problem else ""))
        return "\n".join(lines)


def load_manifest(archive_dir: str | os.PathLike) -> dict:
    """Read and sanity-check ``archive_dir/MANIFEST.json``."""
    path = Path(archive_dir) / MANIFEST
    if not path.is_file():
        raise InputDataError(f"{path}: no manifest; is {archive_dir} an archive folder made by `snakemake archive`?")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputDataError(f"{path}: not valid JSON ({exc}); the manifest is damaged - re-run `snakemake archive`") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise InputDataError(f"{path}: has no 'files' table; it is not a precipmodes manifest ({MANIFEST_FORMAT})")
    return manifest


def verify_archive(archive_dir: str | os.PathLike) -> Verification:
    """Re-check the manifest against ``MANIFEST.json.sha256``, then size and sha256 of every file it lists;
    list missing, extra, altered files and entries outside the folder or through a symbolic link (unsafe,
    never read)."""
    archive_dir = Path(archive_dir)
    if not archive_dir.is_dir():
        raise InputDataError(f"{archive_dir}: not a folder; pass an archive folder such as archive/<experiment>")
    manifest = load_manifest(archive_dir)
    result = Verification(archive_dir, manifest_problem=manifest_problem(archive_dir))
    for name, entry in sorted(manifest["files"].items()):
        problem = entry_problem(archive_dir, name)
        if problem:
            result.unsafe.append(f"{name} ({problem})")
            continue
        path = archive_dir / name
        if not path.is_file():
            result.missing.append(name)
            continue
        result.checked.append(name)
        if (not isinstance(entry, dict) or path.stat().st_size != entry.get("size")
                or sha256_file(path) != entry.get("sha256")):
            result.altered.append(name)
    result.extra = sorted(folder_files(archive_dir) - set(manifest["files"]) - set(MANIFEST_FILES))
    return result
