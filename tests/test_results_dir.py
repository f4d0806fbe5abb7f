"""results_dir / archive_dir: every output and log of a run under its own folders, so the demo and a
user's data set run side by side in one working directory without touching each other's files."""

from __future__ import annotations

from pathlib import Path

import pytest

from reliability_helpers import snakemake, tiny

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
        assert {"prepared/raw.nc", "prepared/totals.nc", "prepared/selection.nc", "logs/raw.log",
                "logs/accumulate.log", "logs/threshold.log"} <= files, files
    after = {p: (tmp_path / "runs/first" / p).stat().st_mtime_ns for p in _files(tmp_path / "runs/first")}
    assert after == before, "the second run touched the first run's folder"


def test_archive_dir_is_configurable(tmp_path):
    config = tiny(results_dir="out", archive_dir="kept")
    result = snakemake(tmp_path, config, ["archive", "--dry-run"])
    assert "kept/e1/MANIFEST.json" in result.stdout
    assert "out/e1/svd.nc" in result.stdout
    assert "archive/e1" not in result.stdout and "results/" not in result.stdout
