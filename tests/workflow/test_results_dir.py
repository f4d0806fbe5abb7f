"""results_dir / archive_dir: every output and log of a run under its own folders, so the demo and a
user's data set run side by side in one working directory without touching each other's files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from helpers.reliability import output_text, snakemake, tiny

from precipmodes.io.netcdf import write_netcdf

pytestmark = pytest.mark.workflow


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_two_results_dirs_stay_apart(tmp_path):
    first = tiny(results_dir="runs/first")
    second = tiny(results_dir=str(tmp_path / "elsewhere" / "second"),
                  threshold={"wet_mm": 0.0, "min_wet_fraction": 0.5})
    snakemake(tmp_path, first, ["runs/first/prepared/selection.nc"])
    before = {p: (tmp_path / "runs/first" / p).stat().st_mtime_ns for p in _files(tmp_path / "runs/first")}
    snakemake(tmp_path, second, [str(tmp_path / "elsewhere/second/prepared/selection.nc")])

    assert not (tmp_path / "results").exists(), "an output or log went to the default results/"
    for root in (tmp_path / "runs/first", tmp_path / "elsewhere/second"):
        files = _files(root)
        assert {"prepared/raw.nc", "prepared/totals/2000-01.nc", "prepared/selection.nc", "logs/raw.log",
                "logs/accumulate_partition/2000-01.log", "logs/threshold.log"} <= files, files
    after = {p: (tmp_path / "runs/first" / p).stat().st_mtime_ns for p in _files(tmp_path / "runs/first")}
    assert after == before, "the second run touched the first run's folder"


def test_archive_dir_is_configurable(tmp_path):
    config = tiny(results_dir="out", archive_dir="kept")
    result = snakemake(tmp_path, config, ["archive", "--dry-run"])
    assert "kept/e1/MANIFEST.json" in result.stdout
    assert "out/e1/svd.nc" in result.stdout
    assert "archive/e1" not in result.stdout and "results/" not in result.stdout


def test_results_dir_above_the_working_directory_or_root_is_refused_before_any_rule(tmp_path):
    """`results_dir: ..` (the folder that holds the user's other files) and `/` are refused before any rule
    runs; a user's *.nc.json there (here a copy of one of the workflow's own sidecars) is left alone."""
    workdir = tmp_path / "work"
    mine = tmp_path / "notes" / "obs.nc.json"
    mine.parent.mkdir(parents=True)
    mine.write_text(json.dumps({"precipmodes_version": "0", "config_digest": "x", "file": "obs.nc"}))
    for value, what in (("..", "a folder above the working directory"), ("/", "the root of the file system")):
        result = snakemake(workdir, tiny(results_dir=value), [], check=False)
        text = output_text(result)
        assert result.returncode != 0
        assert f"results_dir: {value!r} is {what}" in text, text[-3000:]
        assert "Building DAG" not in text
    assert mine.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "work"]  # no prepared/, logs/, lock


def test_clean_up_of_killed_writes_walks_only_the_workflows_folders(tmp_path):
    """On a start with nothing to be done, the leftovers of killed writes in prepared/ (a sidecar whose NetCDF is
    gone, the temp file of a writer that ended) are removed; files of the user's inside results_dir, even a
    copy of one of the workflow's sidecars, are not."""
    snakemake(tmp_path, tiny(), ["results/prepared/raw.nc"])
    results = tmp_path / "results"
    user_files = [results / "mine" / "raw.nc.json", results / "notes.nc.json", results / "mine" / ".x.nc.tmp-1"]
    user_files[0].parent.mkdir()
    shutil.copy2(results / "prepared" / "raw.nc.json", user_files[0])
    user_files[1].write_text("{}")
    user_files[2].write_text("a user's file that looks like a temp name")
    write_netcdf(xr.Dataset({"x": ("t", np.arange(3.0))}), results / "prepared" / "extra.nc", config={})
    (results / "prepared" / "extra.nc").unlink()  # as Snakemake removes the output of a failed job
    writer = subprocess.run([sys.executable, "-c", "import sys; from precipmodes.io.owned import temp_path; "
                             "p = temp_path(sys.argv[1]); p.write_text('half'); print(p)",
                             str(results / "prepared" / "selection.nc")], capture_output=True, text=True, check=True)
    stale = Path(writer.stdout.strip())
    assert stale.is_file() and (results / "prepared" / "extra.nc.json").is_file()

    result = snakemake(tmp_path, tiny(), ["results/prepared/raw.nc"])
    assert "Nothing to be done" in output_text(result), output_text(result)[-3000:]
    assert not stale.exists() and not (results / "prepared" / "extra.nc.json").exists()
    assert all(path.is_file() for path in user_files)
    assert (results / "prepared" / "raw.nc.json").is_file()
