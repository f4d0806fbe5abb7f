"""Archive folders: re-encoded NetCDF copies, MANIFEST.json, and `precipmodes verify`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import netCDF4
import pytest
import xarray as xr
from helpers.workflow import run_snakemake
from helpers.reliability import TWO_EXPERIMENTS, copy_run, output_text, snakemake, with_threads
from helpers.cf import cf_failures, contract_datasets

from precipmodes import cli
from precipmodes.errors import InputDataError, OutputError
from precipmodes.io import archive
from precipmodes.io.netcdf import sha256_file, write_netcdf
from precipmodes.io.owned import hostname

ARCHIVED = ["svd.nc", "nmf.nc", "train.nc", "land_mask.nc", "selection.nc"]
CONFIG = {"source": {"kind": "demo"}, "experiments": {"unit": {"n_modes": 3}}}


@pytest.fixture()
def archived(tmp_path):
    """(results folder, archive folder) after archiving small contract-shaped files."""
    results = tmp_path / "results"
    datasets = contract_datasets()
    inputs = [write_netcdf(datasets[name], results / name, step="made for the test") for name in ARCHIVED]
    folder = tmp_path / "archive" / "unit"
    archive.archive_files(inputs=inputs, archive_dir=folder, name="unit", config=CONFIG, repo=Path(__file__).parent)
    return results, folder


def test_manifest_lists_every_file_with_digest_units_config_versions(archived):
    results, folder = archived
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    expected = set(ARCHIVED) | {f"{name}.json" for name in ARCHIVED}
    assert set(manifest["files"]) == expected
    assert {p.name for p in folder.iterdir()} == expected | {"MANIFEST.json", "MANIFEST.json.sha256"}
    digest = (folder / "MANIFEST.json.sha256").read_text()
    assert digest == f"{sha256_file(folder / 'MANIFEST.json')}  MANIFEST.json\n"  # sha256sum -c reads it
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == sha256_file(folder / name)
        assert entry["size"] == (folder / name).stat().st_size
    assert manifest["files"]["svd.nc"]["variables"]["singular_values"]["units"] == "mm"
    assert manifest["files"]["train.nc"]["variables"]["precip"]["dims"] == ["cell", "time"]
    assert manifest["config"] == CONFIG
    assert manifest["experiment"] == "unit"
    assert manifest["packages"]["xarray"] == xr.__version__ and manifest["packages"]["precipmodes"]
    assert manifest["inputs"][str(results / "svd.nc")]["sha256"] == sha256_file(results / "svd.nc")
    assert manifest["created"].endswith("Z")
    assert "git" in manifest  # a commit dict inside a checkout, None elsewhere


def test_archived_netcdf_is_compressed_chunked_identical_and_cf(archived):
    results, folder = archived
    for name in ARCHIVED:
        with netCDF4.Dataset(folder / name) as nc:
            for var in nc.variables.values():
                if var.ndim >= 2 and not var.name.endswith("_bnds"):
                    filters = var.filters()
                    assert filters["zlib"] and filters["shuffle"], (name, var.name)
                    assert var.chunking() != "contiguous", (name, var.name)
            assert "archive:" in nc.history.splitlines()[-1]
        with xr.open_dataset(results / name) as original, xr.open_dataset(folder / name) as copy:
            for var in original.variables:  # values and attributes; only global attrs (history) differ
                xr.testing.assert_identical(original.variables[var], copy.variables[var])
        assert cf_failures(folder / name) == []


def test_verify_passes_then_reports_altered_missing_and_extra(archived, capsys):
    _, folder = archived
    assert archive.verify_archive(folder).ok
    assert cli.main(["verify", str(folder)]) == 0
    assert "OK" in capsys.readouterr().out

    data = bytearray((folder / "svd.nc").read_bytes())
    data[len(data) // 2] ^= 0xFF  # flip one byte: same size, different digest
    (folder / "svd.nc").write_bytes(bytes(data))
    (folder / "nmf.nc.json").unlink()
    (folder / "notes.txt").write_text("not archived")
    result = archive.verify_archive(folder)
    assert (result.altered, result.missing, result.extra) == (["svd.nc"], ["nmf.nc.json"], ["notes.txt"])
    assert cli.main(["verify", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "ALTERED: svd.nc" in out and "MISSING: nmf.nc.json" in out and "EXTRA: notes.txt" in out


def test_console_script_exit_codes(archived, tmp_path):
    _, folder = archived
    script = Path(sys.executable).with_name("precipmodes")
    ok = subprocess.run([str(script), "verify", str(folder)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (folder / "land_mask.nc").write_bytes(b"truncated")
    bad = subprocess.run([str(script), "verify", str(folder)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "ALTERED: land_mask.nc" in bad.stdout
    missing = subprocess.run([str(script), "verify", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "MANIFEST.json: no manifest" in missing.stderr


def test_rearchiving_replaces_the_previous_archive_file_by_file(archived):
    results, folder = archived
    (folder / ".svd.nc.tmp-12345").write_text("left by a writer killed halfway")
    archive.archive_files(inputs=[results / "svd.nc"], archive_dir=folder, name="unit", config=CONFIG)
    assert {p.name for p in folder.iterdir()} == {"svd.nc", "svd.nc.json", "MANIFEST.json", "MANIFEST.json.sha256"}
    assert archive.verify_archive(folder).ok
    assert [p.name for p in folder.parent.iterdir()] == ["unit"], "a temporary folder was left beside it"


def test_figures_and_summary_are_copied_byte_for_byte(archived, tmp_path):
    results, folder = archived
    png = results / "map.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    summary = results / "summary.json"
    summary.write_text('{"svd": {"explained_variance": 0.5}}')
    archive.archive_files(inputs=[results / "svd.nc", png, summary], archive_dir=folder, name="unit", config=CONFIG)
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    assert set(manifest["files"]) == {"svd.nc", "svd.nc.json", "figures/map.png", "summary.json"}
    assert (folder / "figures/map.png").read_bytes() == png.read_bytes()
    assert manifest["files"]["summary.json"]["sha256"] == sha256_file(summary)
    (folder / "figures/map.png").write_bytes(b"changed")
    assert archive.verify_archive(folder).altered == ["figures/map.png"]


def test_bad_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(InputDataError, match="missing.nc: file not found"):
        archive.archive_files(inputs=[tmp_path / "missing.nc"], archive_dir=tmp_path / "a", name="x")
    (tmp_path / "a" / "b").mkdir(parents=True)
    with pytest.raises(InputDataError, match="file names must be unique"):
        archive.archive_files(inputs=[tmp_path / "a" / "x.nc", tmp_path / "a" / "b" / "x.nc"],
                              archive_dir=tmp_path / "c", name="x")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "MANIFEST.json").write_text("{not json")
    with pytest.raises(InputDataError, match="MANIFEST.json: not valid JSON"):
        archive.verify_archive(tmp_path / "bad")


@pytest.mark.workflow
def test_archive_target_on_the_end_to_end_run(demo_run):
    run_snakemake(demo_run, "archive", "--cores", "1")
    folder = demo_run / "archive" / "seed"
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    names = {"svd.nc", "nmf.nc", "evaluation.nc", "train.nc", "test.nc", "land_mask.nc", "selection.nc"}
    assert names <= set(manifest["files"])
    figures = {f"figures/{name}.png" for name in ("svd_modes", "nmf_bases", "spectrum", "summary", "demo_match")}
    assert figures | {"summary.json"} <= set(manifest["files"])
    for name in figures | {"summary.json"}:  # byte-for-byte copies of the results
        assert sha256_file(folder / name) == sha256_file(demo_run / "results" / "seed" / name), name
    assert manifest["config"]["experiments"]["seed"]["n_modes"] == 25
    assert manifest["git"] is None or len(manifest["git"]["commit"]) == 40
    assert archive.verify_archive(folder).ok
    for name in names:
        assert cf_failures(folder / name) == [], name


# ------------------------------------------------------------------ data safety (issue #25)
def dead_pid() -> int:
    """The pid of a process that has ended (what a killed archive writer leaves in its temp names)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def rewrite_manifest(folder: Path, edit) -> None:
    """Edit MANIFEST.json with ``edit(manifest)``; leave MANIFEST.json.sha256 as it was."""
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    edit(manifest)
    (folder / "MANIFEST.json").write_text(json.dumps(manifest, indent=2))


def reseal(folder: Path) -> None:
    """Make MANIFEST.json.sha256 match an edited manifest (someone who edits both)."""
    (folder / "MANIFEST.json.sha256").write_text(f"{sha256_file(folder / 'MANIFEST.json')}  MANIFEST.json\n")


def digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("key", ["config", "git", "inputs"])
def test_edited_manifest_fails_verify(archived, capsys, key):
    _, folder = archived
    rewrite_manifest(folder, lambda m: m.__setitem__(key, {"edited": True}))
    result = archive.verify_archive(folder)
    assert not result.ok and "edited after archiving" in result.manifest_problem
    assert cli.main(["verify", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "MANIFEST: MANIFEST.json does not match MANIFEST.json.sha256" in out and "FAILED" in out
    (folder / "MANIFEST.json.sha256").unlink()
    assert "MANIFEST.json.sha256 is missing" in archive.verify_archive(folder).manifest_problem


@pytest.mark.parametrize("entry", ["../outside.txt", "figures/../../outside.txt", "/etc/hostname"])
def test_manifest_entry_outside_the_folder_fails_verify(archived, capsys, entry):
    _, folder = archived
    outside = folder.parent / "outside.txt"
    outside.write_text("not part of the archive")
    rewrite_manifest(folder, lambda m: m["files"].__setitem__(entry, {"sha256": sha256_file(outside), "size": 23}))
    reseal(folder)  # even with a matching digest
    result = archive.verify_archive(folder)
    assert result.unsafe == [f"{entry} (outside the archive folder)"] and not result.ok
    assert entry not in result.checked
    assert cli.main(["verify", str(folder)]) == 1
    assert f"UNSAFE: {entry} (outside the archive folder)" in capsys.readouterr().out


def test_symlinked_file_or_folder_fails_verify(archived, tmp_path, capsys):
    results, folder = archived
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.move(folder / "svd.nc", elsewhere / "svd.nc")
    (folder / "svd.nc").symlink_to(elsewhere / "svd.nc")  # same bytes, reached through a link
    assert archive.verify_archive(folder).unsafe == ["svd.nc (a symbolic link)"]
    assert cli.main(["verify", str(folder)]) == 1
    assert "UNSAFE: svd.nc (a symbolic link)" in capsys.readouterr().out

    png = results / "map.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    fresh = tmp_path / "archive" / "fresh"
    archive.archive_files(inputs=[results / "nmf.nc", png], archive_dir=fresh, name="fresh", config=CONFIG)
    shutil.move(fresh / "figures", elsewhere / "figures")
    (fresh / "figures").symlink_to(elsewhere / "figures")
    assert archive.verify_archive(fresh).unsafe == ["figures/map.png (a symbolic link)"]
    (fresh / "figures").unlink()
    shutil.move(elsewhere / "figures", fresh / "figures")
    (fresh / "extra.nc").symlink_to(elsewhere / "svd.nc")  # an unlisted link is an extra file
    assert archive.verify_archive(fresh).extra == ["extra.nc"]


def test_rearchive_refuses_a_folder_with_files_it_did_not_write(archived):
    results, folder = archived
    before = digests(folder)
    (folder / "notes.txt").write_text("my notes")
    with pytest.raises(OutputError, match=r"notes.txt.*never deletes files it did not write.*`archive_dir`"):
        archive.archive_files(inputs=[results / "svd.nc"], archive_dir=folder, name="unit", config=CONFIG)
    assert digests(folder) == {**before, "notes.txt": sha256_file(folder / "notes.txt")}
    (folder / "notes.txt").unlink()

    rewrite_manifest(folder, lambda m: m["files"].__setitem__("../victim.txt", {"sha256": "0", "size": 1}))
    reseal(folder)
    (folder.parent / "victim.txt").write_text("a user's file beside the archive")
    with pytest.raises(OutputError, match=r"lists \.\./victim.txt: outside the folder"):
        archive.archive_files(inputs=[results / "svd.nc"], archive_dir=folder, name="unit", config=CONFIG)
    rewrite_manifest(folder, lambda m: m.__setitem__("config", {}))  # not resealed: edited after archiving
    with pytest.raises(OutputError, match="edited after archiving"):
        archive.archive_files(inputs=[results / "svd.nc"], archive_dir=folder, name="unit", config=CONFIG)
    assert (folder.parent / "victim.txt").read_text() == "a user's file beside the archive"
    assert sorted(p.name for p in folder.parent.iterdir()) == ["unit", "victim.txt"]


def test_failed_build_keeps_the_previous_archive(archived, tmp_path):
    """An input that cannot be read halfway through (after some files were written): the old archive
    stays, verified, and the temporary folder is gone."""
    results, folder = archived
    before = digests(folder)
    broken = results / "zz_broken.nc"
    broken.write_bytes(b"CDF\x01 truncated by a full disk")
    with pytest.raises(InputDataError):
        archive.archive_files(inputs=[results / "svd.nc", results / "nmf.nc", broken], archive_dir=folder,
                              name="unit", config=CONFIG)
    assert digests(folder) == before and archive.verify_archive(folder).ok
    assert [p.name for p in folder.parent.iterdir()] == ["unit"]


def test_remove_stale_archive_temps_only_removes_what_dead_writers_wrote(archived, tmp_path):
    results, folder = archived
    root = folder.parent
    pid = dead_pid()
    # a writer killed while building: its plan manifest lists what it wrote
    building = root / f".unit.tmp-{hostname()}-{pid}-0000000a"
    shutil.copytree(folder, building)
    rewrite_manifest(building, lambda m: m.pop("created"))
    (building / ".svd.nc.tmp-99999").write_text("half a file")
    # a stale folder that holds a user's file: left in place
    foreign = root / f".unit.tmp-{hostname()}-{pid}-0000000b"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("a user's file")
    # a live writer's folder (this process): left alone
    live = archive.temp_path(folder)
    live.mkdir()
    (live / "svd.nc").write_text("being written")
    removed = archive.remove_stale_archive_temps(root)
    assert removed == [building]
    assert sorted(p.name for p in root.iterdir()) == sorted(["unit", foreign.name, live.name])
    assert (foreign / "mine.txt").read_text() == "a user's file" and (live / "svd.nc").exists()
    assert archive.verify_archive(folder).ok


def test_remove_stale_archive_temps_restores_an_archive_caught_between_two_renames(archived):
    _, folder = archived
    before = digests(folder)
    moved = folder.parent / f".unit.tmp-{hostname()}-{dead_pid()}-0000000c"
    os.rename(folder, moved)  # the old archive renamed away, the writer killed before the new one went in
    assert archive.remove_stale_archive_temps(folder.parent) == []
    assert digests(folder) == before and archive.verify_archive(folder).ok
    assert [p.name for p in folder.parent.iterdir()] == ["unit"]


@pytest.fixture(scope="module")
def tiny_archived(tiny_run, tmp_path_factory) -> Path:
    """The tiny run (e1, e2) after `snakemake archive`; read-only, tests work on a copy."""
    workdir = copy_run(tiny_run, tmp_path_factory.mktemp("tiny_archived") / "work")
    snakemake(workdir, with_threads(1, TWO_EXPERIMENTS), ["archive"])
    for experiment in TWO_EXPERIMENTS:
        assert archive.verify_archive(workdir / "archive" / experiment).ok
    return workdir


@pytest.mark.workflow
def test_archive_into_a_folder_of_user_files_is_refused(tiny_run, tmp_path):
    """An archive_dir the user also keeps files in, with a folder named like an experiment (here e1). (The
    issue's `archive_dir: .` is refused before any rule runs: test_config's unsafe output folders.)"""
    workdir = copy_run(tiny_run, tmp_path / "work")
    user = workdir / "data" / "e1"
    (user / "sub").mkdir(parents=True)
    (user / "station.csv").write_text("date,precip\n2006-01-01,3.5\n")
    (user / "sub" / "notes.txt").write_text("keep me")
    before = digests(user)
    result = snakemake(workdir, with_threads(1, TWO_EXPERIMENTS, archive_dir="data"), ["archive"], check=False)
    out = output_text(result)
    assert result.returncode != 0
    assert "e1: is not empty and holds no MANIFEST.json" in out and "`archive_dir`" in out, out[-3000:]
    assert digests(user) == before
    assert not list((workdir / "data").glob(".e1.tmp-*")), "a temporary archive folder was left behind"


@pytest.mark.workflow
def test_snakemake_archive_rebuilds_a_deleted_archive_and_refuses_an_edited_manifest(tiny_archived, tmp_path):
    workdir = copy_run(tiny_archived, tmp_path / "work")
    config = with_threads(1, TWO_EXPERIMENTS)
    shutil.rmtree(workdir / "archive" / "e2")
    e1 = digests(workdir / "archive" / "e1")
    run = snakemake(workdir, config, ["archive"])
    assert "archive experiment e2" in run.stdout + run.stderr and "archive experiment e1" not in run.stdout
    assert archive.verify_archive(workdir / "archive" / "e2").ok
    assert digests(workdir / "archive" / "e1") == e1  # untouched: still the archive its receipt records

    rewrite_manifest(workdir / "archive" / "e1", lambda m: m["config"].__setitem__("edited", True))
    edited = digests(workdir / "archive" / "e1")
    result = snakemake(workdir, config, ["archive"], check=False)
    assert result.returncode != 0 and "was edited after archiving" in output_text(result)
    assert digests(workdir / "archive" / "e1") == edited
    verify = subprocess.run([str(Path(sys.executable).with_name("precipmodes")), "verify",
                             str(workdir / "archive" / "e1")], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 1 and "MANIFEST: MANIFEST.json does not match" in verify.stdout


def mount_tmpfs(folder: Path, size: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")


@pytest.mark.workflow
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("mount") is None, reason="a small tmpfs needs root and mount")
def test_rearchive_on_a_full_disk_keeps_the_previous_verified_archive(tiny_archived, tmp_path):
    workdir = copy_run(tiny_archived, tmp_path / "work")
    shutil.move(workdir / "archive", tmp_path / "archive")
    disk = workdir / "archive"
    mount_tmpfs(disk, 64 * 2**20)
    try:
        shutil.copytree(tmp_path / "archive", disk, dirs_exist_ok=True, copy_function=shutil.copy2)
        before = {e: digests(disk / e) for e in TWO_EXPERIMENTS}
        size = sum(p.stat().st_size for p in (disk / "e1").rglob("*") if p.is_file())
        used = shutil.disk_usage(disk).used
        subprocess.run(["mount", "-o", f"remount,size={used + size // 2}", str(disk)], check=True)
        result = snakemake(workdir, with_threads(1, TWO_EXPERIMENTS), ["archive", "--forcerun", "archive_experiment"],
                           check=False)
        out = output_text(result)
        assert result.returncode != 0, out[-3000:]
        assert "is kept unchanged" in out, out[-3000:]
        for experiment in TWO_EXPERIMENTS:  # both old archives: every file there, verified, no orphan sidecar
            assert digests(disk / experiment) == before[experiment]
            assert archive.verify_archive(disk / experiment).ok
        assert sorted(p.name for p in disk.iterdir()) == sorted(TWO_EXPERIMENTS), "a temporary folder was left"

        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        snakemake(workdir, with_threads(1, TWO_EXPERIMENTS), ["archive"])  # with space again: archived anew
        for experiment in TWO_EXPERIMENTS:
            assert archive.verify_archive(disk / experiment).ok
        assert sorted(p.name for p in disk.iterdir()) == sorted(TWO_EXPERIMENTS)
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
