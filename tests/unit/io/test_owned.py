"""precipmodes.io.owned: the one deletion helper removes only what the workflow wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from precipmodes.io.owned import (OwnershipError, hostname, is_own_sidecar, remove_owned, stale_temps, temp_path,
                                  temp_target, temp_writer_gone)

# file names ("." and ".." name folders: pathlib drops "." from a path)
names = st.text(st.characters(whitelist_categories=("Ll", "Lu", "Nd"), whitelist_characters="._-"),
                min_size=1, max_size=30).filter(lambda name: name not in (".", ".."))


@given(name=names)
@settings(max_examples=200)
def test_temp_path_maps_back_to_its_target(tmp_path_factory, name):
    target = tmp_path_factory.getbasetemp() / name
    temp = temp_path(target)
    assert temp.parent == target.parent
    assert temp.name.startswith(f".{name}.tmp-{hostname()}-{os.getpid()}-")
    assert temp_target(temp) == target
    assert temp_path(target) != temp  # unique per call, not only per process


@given(name=names)
def test_plain_names_are_not_temp_names(tmp_path_factory, name):
    assert temp_target(tmp_path_factory.getbasetemp() / name) is None or name.startswith(".")


def test_older_pid_only_temp_names_are_recognised(tmp_path):
    assert temp_target(tmp_path / ".totals.nc.tmp-4242") == tmp_path / "totals.nc"
    assert temp_target(tmp_path / ".totals.nc.tmp-") is None
    assert temp_target(tmp_path / "totals.nc.tmp-4242") is None  # not hidden: not one of ours


def test_user_files_are_refused_and_kept(tmp_path):
    user = tmp_path / "notes.txt"
    user.write_text("mine")
    user_sidecar = tmp_path / "old.nc.json"
    user_sidecar.write_text(json.dumps({"file": "old.nc"}))
    folder = tmp_path / "data"
    folder.mkdir()
    for path in (user, user_sidecar, folder):
        with pytest.raises(OwnershipError, match="did not write it|is a folder"):
            remove_owned(path, declared=[folder] if path == folder else ())
    assert user.read_text() == "mine" and user_sidecar.exists() and folder.is_dir()


def test_own_sidecar_temp_and_declared_files_are_removed(tmp_path):
    sidecar = tmp_path / "svd.nc.json"
    sidecar.write_text(json.dumps({"precipmodes_version": "0", "config_digest": "x", "file": "svd.nc"}))
    assert is_own_sidecar(sidecar)
    wrong_file = tmp_path / "nmf.nc.json"
    wrong_file.write_text(sidecar.read_text())  # the record names another file: not the sidecar of nmf.nc
    assert not is_own_sidecar(wrong_file)
    temp = temp_path(tmp_path / "svd.nc")
    temp.write_bytes(b"partial")
    output = tmp_path / "svd.nc"
    output.write_bytes(b"CDF")
    assert remove_owned(sidecar) and remove_owned(temp) and remove_owned(output, declared=[str(output)])
    assert list(tmp_path.iterdir()) == [wrong_file]  # not provably ours: kept
    assert remove_owned(tmp_path / "gone.nc", declared=[tmp_path / "gone.nc"]) is False


def test_a_symlink_is_removed_as_a_link_never_its_target(tmp_path):
    target = tmp_path / "precious.nc"
    target.write_bytes(b"data")
    link = tmp_path / "link.nc"
    link.symlink_to(target)
    assert remove_owned(link, declared=[link])
    assert target.read_bytes() == b"data"


def test_stale_temps_are_only_those_of_ended_writers(tmp_path):
    target = tmp_path / "totals.nc"
    live = temp_path(target)  # this process: alive
    live.write_bytes(b"")
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                           text=True, check=True)
    dead_pid = int(ended.stdout)
    dead = target.with_name(f".totals.nc.tmp-{hostname()}-{dead_pid}-0123abcd")
    dead.write_bytes(b"")
    elsewhere = target.with_name(f".totals.nc.tmp-otherhost-{dead_pid}-0123abcd")
    elsewhere.write_bytes(b"")
    other_target = target.with_name(f".totals.nc.json.tmp-{hostname()}-{dead_pid}-0123abcd")
    other_target.write_bytes(b"")
    assert temp_writer_gone(dead) and not temp_writer_gone(live) and not temp_writer_gone(elsewhere)
    assert stale_temps(target) == [dead]
