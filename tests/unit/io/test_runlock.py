"""The run lock of a results folder (precipmodes.io.runlock) on real files and processes; the workflow's use of it
(two working directories on one results_dir, a stale lock taken over) is in tests/workflow/tiny_run/test_faults.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from precipmodes.io import runlock
from precipmodes.io.owned import hostname, process_started
from precipmodes.io.runlock import LOCK_NAME, STALE_AFTER_S, RunLock, RunLockError, break_stale, read_lock


def _write_lock(folder, **record):
    lock = folder / LOCK_NAME
    lock.write_text(json.dumps({"workdir": "/scratch/wd", "started": "2026-01-01T00:00:00+00:00", "token": "t",
                                **record}))
    return lock


def test_taken_released_and_refused_while_held(tmp_path):
    run = RunLock(tmp_path / "results")
    assert run.acquire() is None
    record = read_lock(tmp_path / "results" / LOCK_NAME)
    assert record["host"] == hostname() and record["pid"] == os.getpid() and record["workdir"] == os.getcwd()
    with pytest.raises(RunLockError, match=f"another run is writing into this results folder \\(host {hostname()}, "
                                           f"pid {os.getpid()}, working directory {os.getcwd()}, since "):
        RunLock(tmp_path / "results").acquire()
    run.release()
    run.release()  # idempotent
    assert list((tmp_path / "results").iterdir()) == []


def test_a_lock_of_an_ended_process_on_this_host_is_stale(tmp_path):
    ended = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                               text=True, check=True).stdout)
    _write_lock(tmp_path, host=hostname(), pid=ended)
    holder, note = break_stale(tmp_path)
    assert holder is None
    assert f"removed the lock of an earlier run that ended without releasing it (host {hostname()}, pid {ended}" in note
    assert f"process {ended} no longer runs" in note
    assert list(tmp_path.iterdir()) == []


def test_a_lock_whose_pid_a_later_process_took_is_stale_and_a_live_one_is_kept(tmp_path):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = process_started(live.pid)
        assert started and started == process_started(live.pid) and started != process_started(os.getpid())
        _write_lock(tmp_path, host=hostname(), pid=live.pid, pid_started=started)
        holder, note = break_stale(tmp_path)
        assert holder["pid"] == live.pid and note is None  # the process that took the lock runs: kept
        # the lock of an earlier process whose pid the live one has now (after a reboot or a wrap-around)
        _write_lock(tmp_path, host=hostname(), pid=live.pid, pid_started="earlier-boot:12345")
        holder, note = break_stale(tmp_path)
        assert holder is None and f"pid {live.pid} now belongs to a process started later" in note
    finally:
        live.kill()
        live.wait()


def test_another_hosts_lock_is_live_while_its_heartbeat_is_fresh_and_stale_after(tmp_path):
    lock = _write_lock(tmp_path, host="othernode", pid=1)
    with pytest.raises(RunLockError, match="host othernode, pid 1, working directory /scratch/wd, since 2026"):
        RunLock(tmp_path).acquire()
    then = time.time() - STALE_AFTER_S - 120
    os.utime(lock, (then, then))
    run = RunLock(tmp_path)
    note = run.acquire()
    assert "host othernode, pid 1" in note and "its heartbeat stopped 12 minutes ago" in note
    assert read_lock(lock)["pid"] == os.getpid()
    run.release()
    assert not lock.exists()


def test_the_heartbeat_keeps_the_lock_fresh(tmp_path, monkeypatch):
    monkeypatch.setattr(runlock, "HEARTBEAT_S", 0.05)
    run = RunLock(tmp_path)
    run.acquire()
    lock = tmp_path / LOCK_NAME
    then = time.time() - STALE_AFTER_S - 120
    os.utime(lock, (then, then))
    time.sleep(0.5)
    assert time.time() - lock.stat().st_mtime < 5
    run.release()


def test_release_leaves_a_lock_another_run_took_over(tmp_path):
    run = RunLock(tmp_path)
    run.acquire()
    other = tmp_path / "other"
    other.write_text(json.dumps({"host": "othernode", "pid": 1, "token": "theirs"}))
    os.replace(other, tmp_path / LOCK_NAME)
    run.release()
    assert read_lock(tmp_path / LOCK_NAME)["token"] == "theirs"
