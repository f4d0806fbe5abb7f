"""One writer per results folder: the run lock ``<results_dir>/.precipmodes.lock``.

Snakemake locks the *working directory* (``.snakemake/locks``); two runs from two working directories
on one ``results_dir`` would both write into it and mix their outputs. The run lock lives in the
results folder itself, so a second run from anywhere (another working directory, another host on a
shared disk) is refused with a message naming the first.

The lock is a JSON record (host, pid, working directory, start time, a random token) that appears
atomically and complete (written to a temporary name, then hard-linked onto the lock name, which fails
if a lock is there). While the run goes on, a heartbeat thread touches the file every
:data:`HEARTBEAT_S` seconds. A lock is **stale**, and the next run takes it over with a message saying
why, when

* it was taken on this host and its process is gone (killed, crashed), or its pid now belongs to a
  process started later (the pid was reused after a reboot or a wrap-around), or
* it was taken on another host and its heartbeat stopped more than :data:`STALE_AFTER_S` seconds ago
  (that host's run was killed or the host went down; its pid cannot be checked from here).

The Snakefile takes the lock in ``onstart`` (main process only: Snakemake runs no hooks in dry runs,
``--unlock``, ``--report`` or inside cluster jobs) and gives it back in ``onsuccess`` / ``onerror`` and,
whatever else ends the process, at exit.
"""

from __future__ import annotations

import atexit
import datetime as _dt
import json
import os
import secrets
import threading
import time
from pathlib import Path

from precipmodes.errors import PrecipModesError
from precipmodes.io.owned import hostname, pid_alive, process_started, remove_owned, temp_path

LOCK_NAME = ".precipmodes.lock"
#: seconds between two touches of a held lock
HEARTBEAT_S = 60
#: another host's lock whose last heartbeat is older than this is stale (10 heartbeats missed)
STALE_AFTER_S = 600


class RunLockError(PrecipModesError):
    """Another run (live) holds the results folder."""


def lock_path(results_dir: str | os.PathLike) -> Path:
    return Path(results_dir) / LOCK_NAME


def read_lock(path: Path) -> dict | None:
    """The record of lock ``path``; None when there is none. An unreadable record is ``{}``."""
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def describe(record: dict) -> str:
    """``host H, pid P, working directory W, since T`` of a lock record."""
    return (f"host {record.get('host', '?')}, pid {record.get('pid', '?')}, "
            f"working directory {record.get('workdir', '?')}, since {record.get('started', '?')}")


def stale_reason(path: Path, record: dict) -> str | None:
    """Why lock ``path`` (holding ``record``) is stale, or None when its run may be alive."""
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return "it is gone"
    if record.get("host") == hostname() and isinstance(record.get("pid"), int):
        pid = record["pid"]
        if not pid_alive(pid):
            return f"process {pid} no longer runs on {hostname()}"
        started = process_started(pid)
        if record.get("pid_started") and started and started != record["pid_started"]:
            return f"pid {pid} now belongs to a process started later on {hostname()}"
        return None
    if age > STALE_AFTER_S:
        return (f"its heartbeat stopped {age / 60:.0f} minutes ago (a live run touches it every "
                f"{HEARTBEAT_S} s; stale after {STALE_AFTER_S} s)")
    return None


def break_stale(results_dir: str | os.PathLike) -> tuple[dict | None, str | None]:
    """Remove the lock of ``results_dir`` if it is stale.

    Returns ``(record, message)``: the record of a live lock left in place (message None), or ``None``
    and a message explaining the stale lock that was removed (None when there was no lock).
    """
    path = lock_path(results_dir)
    record = read_lock(path)
    if record is None:
        return None, None
    reason = stale_reason(path, record)
    if reason is None:
        return record, None
    # move it aside first: of two runs breaking one stale lock at once, only one moves it; a fresh lock
    # that took its place meanwhile (another run broke it first) is put back
    moved = temp_path(path)
    try:
        os.rename(path, moved)
    except FileNotFoundError:
        return None, None
    if read_lock(moved) != record:
        try:
            os.link(moved, path)
        except FileExistsError:
            pass
        remove_owned(moved)
        return read_lock(path), None
    remove_owned(moved)
    return None, (f"{path}: removed the lock of an earlier run that ended without releasing it "
                  f"({describe(record)}): {reason}")


class RunLock:
    """The run lock of one results folder, taken by :meth:`acquire` and given back by :meth:`release`."""

    def __init__(self, results_dir: str | os.PathLike):
        self.path = lock_path(results_dir)
        self.record: dict | None = None
        self._stop = threading.Event()

    def acquire(self) -> str | None:
        """Take the lock; return a message when a stale lock was taken over, else None.

        Raises :class:`RunLockError` naming the run that holds it.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {"host": hostname(), "pid": os.getpid(), "pid_started": process_started(os.getpid()),
                  "workdir": os.getcwd(),
                  "started": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                  "token": secrets.token_hex(8)}
        staged = temp_path(self.path)
        staged.write_text(json.dumps(record, indent=2) + "\n")
        notes = []
        try:
            for _ in range(3):
                try:
                    os.link(staged, self.path)
                except FileExistsError:
                    holder, note = break_stale(self.path.parent)
                    if holder is not None:
                        raise RunLockError(
                            f"{self.path.parent}: another run is writing into this results folder "
                            f"({describe(holder)}); wait for it to finish, or give this run its own "
                            f"results_dir. A lock of another host is taken over once its run stops touching it "
                            f"for {STALE_AFTER_S // 60} minutes; if no such run is going on, delete {self.path} "
                            "and start again") from None
                    notes += [note] if note else []
                    continue
                self.record = record
                break
            else:
                raise RunLockError(f"{self.path}: could not take the lock (other runs keep taking it); "
                                   "start again")
        finally:
            remove_owned(staged)
        threading.Thread(target=self._heartbeat, name="precipmodes-run-lock", daemon=True).start()
        atexit.register(self.release)
        return "\n".join(notes) or None

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                os.utime(self.path)
            except FileNotFoundError:
                return

    def release(self) -> None:
        """Give the lock back (only ours: a lock another run took over is left alone); idempotent."""
        if self.record is None:
            return
        self._stop.set()
        if read_lock(self.path) == self.record:
            remove_owned(self.path, declared=[self.path])
        self.record = None
