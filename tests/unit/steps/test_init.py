"""`precipmodes init` on the real files of ../shared/data: the configs it writes validate (E-OBS's dry-runs
through snakemake), short records and bad input stop with exit 2 and a message that says what to do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr
import yaml

from helpers.workflow import run_snakemake
from precipmodes.config import validate_config

EOBS = "eobs_iberia_pr_djf_1982-2002.nc"
MHM = "mhm_pre_daily_1950-2011.nc"
GPCP = "gpcp_1dd_2025-01-01.nc"
STAGEIV = "stageiv_hourly_2018-09-13.nc"


def init(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The console script as a user runs it (python -m precipmodes.cli init ...)."""
    return subprocess.run([sys.executable, "-m", "precipmodes.cli", "init", *args], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ}, timeout=300)


@pytest.mark.parametrize("name", [EOBS, MHM])
def test_init_writes_a_config_that_validates(shared_data, tmp_path, name):
    result = init(str(shared_data / name), "-o", "my.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "my.yaml").read_text()
    config = validate_config(yaml.safe_load(text), origin="my.yaml")
    assert config["results_dir"] == f"results/{name[:-3]}"
    assert config["source"]["kind"] == "files"
    assert config["source"]["files"]["paths"] == [str(shared_data / name)]
    assert text.startswith("# Written by `precipmodes init`")
    (experiment,) = config["experiments"].values()
    if name == EOBS:
        assert config["source"]["files"]["variable"] == "pr"
        assert config["domain"] == {"lon": [-9.75, 4.25], "lat": [35.25, 44.25], "resolution": None}
        assert config["land_mask"]["method"] == "auto"  # data_nan on E-OBS (test_landmask)
        assert experiment["months"] == [12, 1, 2]
        # 20 winters 1982/83 .. 2001/02: the last 4 for test, split where a winter starts
        assert experiment["train"] == ["1982-12-01T00:00:00Z", "1998-12-01T00:00:00Z"]
        assert experiment["test"] == ["1998-12-01T00:00:00Z", "2002-03-01T00:00:00Z"]
    else:
        assert config["source"]["files"]["variable"] == "pre"
        assert config["source"]["files"]["regrid"] == "nearest"
        assert config["domain"]["resolution"] == pytest.approx(0.22)
        assert experiment["months"] is None
        # 62 years 1950..2011: the last 12 for test
        assert experiment["train"] == ["1950-01-01T00:00:00Z", "2000-01-01T00:00:00Z"]
        assert experiment["test"] == ["2000-01-01T00:00:00Z", "2012-01-01T00:00:00Z"]
    # an existing config is never overwritten
    again = init(str(shared_data / name), "-o", "my.yaml", cwd=tmp_path)
    assert again.returncode == 2 and "does not overwrite" in again.stderr


def test_init_config_of_eobs_dry_runs(shared_data, tmp_path):
    assert init(str(shared_data / EOBS), "-o", "eobs.yaml", cwd=tmp_path).returncode == 0
    result = run_snakemake(tmp_path, "-n", "--configfile", str(tmp_path / "eobs.yaml"), timeout=600)
    assert "raw" in result.stdout + result.stderr


@pytest.mark.parametrize("name, hours", [(GPCP, 24), (STAGEIV, 23)])
def test_init_stops_on_a_record_shorter_than_one_window(shared_data, tmp_path, name, hours):
    result = init(str(shared_data / name), "-o", "short.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert f"the record is {hours} hours, shorter than one window of accumulation.hours=72" in result.stderr
    assert "precipmodes init --hours N" in result.stderr
    assert "min_completeness would invent" in result.stderr  # not the harmful advice
    assert not (tmp_path / "short.yaml").exists()


def test_init_stops_on_a_record_of_one_window(shared_data, tmp_path):
    result = init(str(shared_data / GPCP), "--hours", "24", cwd=tmp_path)
    assert result.returncode == 2
    assert ("the record is 24 hours, one window of accumulation.hours=24: an experiment needs windows to train on "
            "and later ones to test on. Give more data (more files or a longer record), or a window cannot be "
            "shorter than the time step") in result.stderr, result.stderr
    result = init(str(shared_data / STAGEIV), "--hours", "12", cwd=tmp_path)
    assert result.returncode == 2 and "precipmodes init --hours N (N <= 11)" in result.stderr, result.stderr


def test_init_with_shorter_windows_on_stage_iv(shared_data, tmp_path):
    result = init(str(shared_data / STAGEIV), "--hours", "6", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    config = validate_config(yaml.safe_load(result.stdout))
    assert config["accumulation"]["hours"] == 6
    assert config["source"]["files"]["regrid"] == "nearest"
    # 6-hour windows anchored at 15 UTC (accumulation.anchor auto) in 18 UTC .. 17 UTC: three complete ones,
    # 21-03 and 03-09 to train on, 09-15 to test on; n_modes at most the training windows
    main = config["experiments"]["main"]
    assert (main["train"], main["test"], main["n_modes"]) == (
        ["2018-09-13T18:00:00Z", "2018-09-14T09:00:00Z"], ["2018-09-14T09:00:00Z", "2018-09-14T17:00:00Z"], 2)


def test_init_on_a_path_that_matches_nothing(tmp_path):
    result = init(str(tmp_path / "nothing_*.nc"), cwd=tmp_path)
    assert result.returncode == 2
    assert f"'{tmp_path / 'nothing_*.nc'}' matches no file" in result.stderr, result.stderr


def test_init_on_a_file_without_precipitation(shared_data, tmp_path):
    with xr.open_dataset(shared_data / EOBS) as ds:
        ds.rename({"pr": "tas"}).assign_attrs().pipe(
            lambda d: d.assign(tas=d["tas"].assign_attrs(standard_name="air_temperature",
                                                         long_name="mean temperature"))
        ).to_netcdf(tmp_path / "tas.nc")
    result = init(str(tmp_path / "tas.nc"), cwd=tmp_path)
    assert result.returncode == 2
    assert "no recognisable precipitation variable" in result.stderr
    assert "tas ('time', 'lat', 'lon') (mean temperature)" in result.stderr
    assert "--variable NAME" in result.stderr


def test_init_on_mixed_files(shared_data, tmp_path):
    result = init(str(shared_data / EOBS), str(shared_data / MHM), cwd=tmp_path)
    assert result.returncode == 2
    assert "the files differ in their variables" in result.stderr
    assert f"{shared_data / EOBS}: pr" in result.stderr and f"{shared_data / MHM}: pre" in result.stderr
    assert "run precipmodes init on each product separately" in result.stderr


def test_init_on_files_of_one_product_split_in_time(shared_data, tmp_path):
    with xr.open_dataset(shared_data / EOBS) as ds:
        ds.sel(time=slice(None, "1992-06-01")).to_netcdf(tmp_path / "eobs_part1.nc")
        ds.sel(time=slice("1992-06-01", None)).to_netcdf(tmp_path / "eobs_part2.nc")
    result = init(str(tmp_path / "eobs_part*.nc"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    config = validate_config(yaml.safe_load(result.stdout))
    assert config["results_dir"] == "results/eobs_part"
    assert config["experiments"]["main"]["test"] == ["1998-12-01T00:00:00Z", "2002-03-01T00:00:00Z"]
