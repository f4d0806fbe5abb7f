"""CF-1.8 compliance (IOOS compliance-checker, offline) of every NetCDF the workflow writes.

Small datasets shaped like each file of the data contract are written with
``write_netcdf`` and must pass ``compliance-checker -t cf:1.8`` with no failed check
(high or medium priority); the outputs of the shared end-to-end run (``demo_run``)
and of the archive must have no failed high-priority check (the checker's errors).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr

from precipmodes.io.netcdf import write_netcdf
from helpers.cf import LEVELS, cf_failures, contract_datasets

pytest.importorskip("compliance_checker.runner")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cf")
    return [write_netcdf(ds, folder / name, step="cf test", config={"source": {"kind": "demo"}})
            for name, ds in contract_datasets().items()]


def test_contract_shaped_files_pass_cf_checker_at_every_level(written):
    failures = [line for path in written for line in cf_failures(path, LEVELS)]
    assert failures == []


def test_files_derived_from_lazily_opened_inputs_stay_clean(written, tmp_path):
    """A step that opens its input with dask chunks and copies time_bnds (threshold, split) keeps
    bounds and time consistent (dask-backed datetimes used to keep other units than time)."""
    from precipmodes.io.netcdf import open_netcdf

    totals = open_netcdf(written[0], chunks={})
    assert totals["time_bnds"].chunks is not None
    derived = xr.Dataset({"wet_area_fraction": totals["completeness"], "time_bnds": totals["time_bnds"]})
    path = write_netcdf(derived, tmp_path / "selection.nc", step="derived")
    assert cf_failures(path, LEVELS) == []


def test_checker_catches_what_write_netcdf_prevents(tmp_path):
    """The check can fail: a plain xarray write (int64 time, no history/attrs) has errors."""
    ds = contract_datasets()["svd.nc"]
    path = tmp_path / "plain.nc"
    ds.to_netcdf(path, encoding={"time": {"dtype": "int64", "units": "hours since 1970-01-01"}})
    failures = cf_failures(path)
    assert any("int64" in line for line in failures), failures


def test_command_line_checker_agrees(written):
    """The documented command (compliance-checker -t cf:1.8) exits 0 on a written file."""
    checker = Path(sys.executable).with_name("compliance-checker")
    result = subprocess.run([str(checker), "-t", "cf:1.8", "-c", "normal", str(written[0])],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]


@pytest.mark.workflow
def test_every_end_to_end_output_passes_cf_checker(demo_run):
    files = sorted((demo_run / "results").rglob("*.nc"))
    assert len(files) >= 10
    failures = [line for path in files for line in cf_failures(path)]
    assert failures == []
