"""The one way the workflow deletes a file: only paths it wrote itself.

A path is the workflow's own when it is

* a **temporary name** made by :func:`temp_path` (``.<name>.tmp-<host>-<pid>-<token>``, beside the
  file it becomes), or the older ``.<name>.tmp-<pid>`` form;
* a **provenance sidecar** ``<file>.nc.json`` whose content is the record
  :func:`precipmodes.io.netcdf.write_netcdf` writes (``precipmodes_version``, ``config_digest`` and
  ``file`` naming the NetCDF beside it) — a user's own ``*.nc.json`` never matches;
* a path the caller **declared** (an output of its rule, a file listed in a manifest it wrote),
  passed in ``declared``.

Everything else is refused with :class:`OwnershipError`: no glob over a user-chosen folder ever
reaches ``unlink``. Symbolic links are removed as links (never followed).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
from pathlib import Path
from typing import Collection

from precipmodes.errors import PrecipModesError

#: ``.<name>.tmp-<host>-<pid>-<token>`` (this module) or ``.<name>.tmp-<pid>`` (older writers)
_TEMP = re.compile(r"^\.(?P<name>.+)\.tmp-(?:(?P<host>[A-Za-z0-9_.]+)-)?(?P<pid>\d+)(?:-(?P<token>[0-9a-f]{8}))?$")
SIDECAR_SUFFIX = ".nc.json"
_SIDECAR_KEYS = ("precipmodes_version", "config_digest", "file")


class OwnershipError(PrecipModesError):
    """A deletion was asked for a path the workflow did not write (a bug guard: nothing is deleted)."""


def hostname() -> str:
    """This machine's name as it goes into temp names and locks (characters outside [A-Za-z0-9_.-] -> _)."""
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname()) or "host"


def temp_path(target: str | os.PathLike) -> Path:
    """A temporary path beside ``target``, unique to this writer: ``.<name>.tmp-<host>-<pid>-<token>``.

    Write there, then ``os.replace`` it onto ``target``: a reader never sees a half-written file and
    two writers (two runs, two hosts on one shared disk) never write into each other's temp file.
    """
    target = Path(target)
    return target.with_name(f".{target.name}.tmp-{hostname()}-{os.getpid()}-{secrets.token_hex(4)}")


def temp_target(path: str | os.PathLike) -> Path | None:
    """The file a temporary name of :func:`temp_path` (or the older ``.tmp-<pid>`` form) stands for, else None."""
    path = Path(path)
    match = _TEMP.match(path.name)
    return path.with_name(match["name"]) if match else None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (a process of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_started(pid: int) -> str | None:
    """When process ``pid`` started on this machine, as ``<boot id>:<clock ticks since boot>`` (Linux's
    /proc), which a later process given the same pid does not share; None where /proc does not tell."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # field 22 (starttime); the command name (field 2, in parentheses) may hold spaces
    return f"{boot}:{stat.rsplit(')', 1)[1].split()[19]}"


def temp_writer_gone(path: str | os.PathLike) -> bool:
    """Whether the writer of temporary file ``path`` has ended: its pid is gone on this host.

    A temp name of another host (a shared disk) counts as gone only when the older form carries no host
    (then this host is assumed); one of another host is never taken for stale: its writer may be alive.
    """
    match = _TEMP.match(Path(path).name)
    if match is None:
        return False
    if match["host"] is not None and match["host"] != hostname():
        return False
    return not pid_alive(int(match["pid"]))


def stale_temps(target: str | os.PathLike) -> list[Path]:
    """Temporary files of ``target`` (any writer's) whose writer has ended on this host."""
    target = Path(target)
    if not target.parent.is_dir():
        return []
    prefix = f".{target.name}.tmp-"
    return sorted(p for p in target.parent.iterdir()
                  if p.name.startswith(prefix) and temp_target(p) == target and temp_writer_gone(p))


def is_own_sidecar(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a provenance sidecar written by :func:`precipmodes.io.netcdf.write_netcdf`."""
    path = Path(path)
    if not path.name.endswith(SIDECAR_SUFFIX) or path.is_symlink() or not path.is_file():
        return False
    try:
        if path.stat().st_size > 16 * 1024 * 1024:
            return False
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(record, dict) and all(key in record for key in _SIDECAR_KEYS)
            and record["file"] == path.name[: -len(".json")])


def is_owned(path: str | os.PathLike, *, declared: Collection[str | os.PathLike] = ()) -> bool:
    """Whether :func:`remove_owned` may delete ``path``: a temporary name, an own sidecar or declared."""
    return (temp_target(path) is not None or is_own_sidecar(path)
            or os.path.abspath(path) in {os.path.abspath(p) for p in declared})


def remove_owned(path: str | os.PathLike, *, declared: Collection[str | os.PathLike] = ()) -> bool:
    """Delete ``path`` if the workflow wrote it (see the module docstring); return whether it existed.

    ``declared``: paths the caller owns by declaration (its rule's outputs, files its own manifest
    lists). Raises :class:`OwnershipError` for any other path, deleting nothing.
    """
    path = Path(path)
    if not os.path.lexists(path):
        return False
    if not is_owned(path, declared=declared):
        raise OwnershipError(
            f"{path}: not removed - the workflow did not write it (not one of its temporary names, "
            "provenance sidecars or declared outputs)")
    if path.is_dir() and not path.is_symlink():
        raise OwnershipError(f"{path}: is a folder; remove_owned deletes files only")
    path.unlink(missing_ok=True)
    return True


def folder_contents(folder: str | os.PathLike) -> tuple[list[Path], list[Path]]:
    """(files, sub-folders) under ``folder``, at any depth; a symbolic link is a file (never followed)."""
    files, folders = [], []
    for parent, dirnames, filenames in os.walk(folder):
        for name in dirnames:  # os.walk lists a link to a folder among the folders (and does not enter it)
            (files if os.path.islink(os.path.join(parent, name)) else folders).append(Path(parent, name))
        files += [Path(parent, name) for name in filenames]
    return files, folders


def remove_owned_tree(folder: str | os.PathLike, *, declared: Collection[str | os.PathLike] = ()) -> None:
    """Delete folder ``folder`` whose every file the workflow owns (see :func:`remove_owned`), then its
    emptied sub-folders and itself.

    Every file (a symbolic link counts as a file, never followed) is checked first: one that is not
    owned raises :class:`OwnershipError` naming it, and nothing at all is deleted.
    """
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        raise OwnershipError(f"{folder}: not a folder; remove_owned_tree deletes folders only")
    files, folders = folder_contents(folder)
    declared = {os.path.abspath(p) for p in declared}
    foreign = [str(p) for p in files if not is_owned(p, declared=declared)]
    if foreign:
        raise OwnershipError(
            f"{folder}: not removed - it holds {len(foreign)} file(s) the workflow did not write: "
            + ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else ""))
    for path in files:
        remove_owned(path, declared=declared)
    for path in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        path.rmdir()
    folder.rmdir()
