"""Archive folders: re-encoded NetCDF copies, MANIFEST.json, and `precipmodes verify`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import netCDF4
import pytest
import xarray as xr

from conftest import run_snakemake
from test_cf_compliance import cf_failures, contract_datasets

from precipmodes import archive, cli
from precipmodes.errors import InputDataError
from precipmodes.netcdf import sha256_file, write_netcdf

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
