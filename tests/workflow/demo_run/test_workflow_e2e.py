"""End to end: the default config (the offline synthetic demo) with `snakemake --cores 2`.

The run itself is the session fixture ``demo_run`` (tests/conftest.py), shared with
every test that inspects its outputs.
"""

import netCDF4
import numpy as np
import pytest
import xarray as xr

from helpers.reliability import prepared_totals
from helpers.workflow import run_snakemake

pytestmark = pytest.mark.workflow

PREPARED = ["raw.nc", "land_mask.nc", "selection.nc", "demo_truth.nc"]
PER_EXPERIMENT = ["train.nc", "test.nc", "svd.nc", "nmf.nc", "evaluation.nc"]


def netcdf_outputs(results):
    return sorted(results.glob("prepared/*.nc")) + sorted(results.glob("prepared/totals/*.nc")) + sorted(
        results.glob("seed/*.nc"))


def test_default_pipeline_makes_every_output(demo_run):
    results = demo_run / "results"
    for name in PREPARED:
        assert (results / "prepared" / name).is_file(), name
    assert sorted((results / "prepared" / "totals").glob("*.nc")), "no partition of the totals"
    for name in PER_EXPERIMENT:
        assert (results / "seed" / name).is_file(), name
    pngs = sorted((results / "seed" / "figures").glob("*.png"))
    assert len(pngs) >= 5
    logs = sorted(p.relative_to(results / "logs").as_posix() for p in (results / "logs").rglob("*.log"))
    for rule in ("raw", "land_mask", "accumulate_partition", "threshold", "svd", "nmf", "evaluate"):
        assert any(name.startswith(rule) for name in logs), (rule, logs)
    print(f"default pipeline wall time: {(demo_run / 'wall_seconds.txt').read_text().strip()} s")


def test_every_output_is_georeferenced_cf_and_labelled_synthetic(demo_run):
    files = netcdf_outputs(demo_run / "results")
    assert len(files) >= len(PREPARED) + len(PER_EXPERIMENT)
    for path in files:
        with xr.open_dataset(path) as ds:
            if path.name != "selection.nc":  # selection holds series over windows only
                assert "lat" in ds.coords and "lon" in ds.coords, path.name
                assert ds["lat"].attrs.get("units") == "degrees_north", path.name
                assert ds["lon"].attrs.get("units") == "degrees_east", path.name
            if "time" in ds.dims:
                assert "time" in ds.coords, path.name
            assert ds.attrs["Conventions"] == "CF-1.8", path.name
            assert "SYNTHETIC" in ds.attrs["source"] and "SYNTHETIC" in ds.attrs["title"], path.name
            assert ds.attrs["history"].strip(), path.name
        with netCDF4.Dataset(path) as nc:
            if "time" in nc.variables:
                assert nc["time"].dtype == np.float64, path.name


def test_time_axes_are_where_expected(demo_run):
    results = demo_run / "results"
    with prepared_totals(results / "prepared") as totals:
        starts = totals["time"].values
        assert (starts[0] - np.datetime64("2005-12-31T15:00")) % np.timedelta64(72, "h") == np.timedelta64(0)
        assert "time_bnds" in totals
    with xr.open_dataset(results / "seed" / "train.nc") as train, \
            xr.open_dataset(results / "seed" / "test.nc") as test:
        assert train["time"].values.max() < np.datetime64("2010-12-31T15:00")
        assert test["time"].values.min() >= np.datetime64("2010-12-31T15:00")
        assert set(train["precip"].dims) == {"cell", "time"}
    with xr.open_dataset(results / "seed" / "svd.nc") as svd:
        assert svd.sizes["mode"] == 25
        assert svd["mode"].values.tolist() == list(range(1, 26))
        assert set(svd["spatial_modes"].dims) == {"mode", "lat", "lon"}
        assert "time" in svd["temporal_coefficients"].dims


def test_default_demo_runs_every_gap_path_and_matches_the_truth(demo_run):
    """source.demo.gaps is on by default: raw.nc has station dropouts and the Kyushu outage, the coverage
    rule leaves out the worst station cells, NaN stay in train/test for the gap-aware fit, and NMF still
    matches every true pattern with a spatial correlation >= 0.9 (issue 10)."""
    results = demo_run / "results"
    with xr.open_dataset(results / "prepared" / "demo_truth.nc") as truth:
        n_stations = truth.sizes["station"]
        assert n_stations > 0 and int(truth["gap_outage_steps"].sum()) == 5 * 4 and int(truth["gap_outage"].sum()) > 0
    with xr.open_dataset(results / "seed" / "train.nc") as train, \
            xr.open_dataset(results / "seed" / "test.nc") as test:
        assert 0 < train.attrs["n_cells_excluded_coverage"] < n_stations       # the worst stations only
        assert train.attrs["n_missing_entries"] > 0 and test.attrs["n_missing_entries"] > 0
        assert int(np.isnan(train["precip"].values).sum()) == train.attrs["n_missing_entries"]
    with xr.open_dataset(results / "seed" / "evaluation.nc") as evaluation:
        match = evaluation["truth_match_correlation"].values
        assert match.size == 8 and (match >= 0.9).all(), match


def test_rerun_has_nothing_to_do(demo_run):
    result = run_snakemake(demo_run, "--cores", "1", "-n")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_run_ends_with_a_timing_table_of_every_job(demo_run):
    """onsuccess writes results/logs/timings.tsv from the jobs' own "rule <name>: done in <s> s" log lines (kept
    by the fixture as demo_timings.tsv: a later `snakemake archive` in the folder writes the table of its own jobs)."""
    lines = (demo_run / "demo_timings.tsv").read_text().splitlines()
    assert lines[0] == "rule\tlog\tseconds\tshare"
    rows = [line.split("\t") for line in lines[1:]]
    rules = {row[0] for row in rows}
    assert {"raw", "demo_truth", "land_mask", "accumulate_partition", "threshold", "split", "svd", "nmf", "evaluate",
            "figures_modes", "figures_summary"} <= rules, rules
    seconds = [float(row[2]) for row in rows]
    assert seconds == sorted(seconds, reverse=True) and all(s >= 0 for s in seconds)
    assert abs(sum(float(row[3]) for row in rows) - 1.0) < 1e-3 * len(rows)  # shares printed to 3 decimals
    for rule, log, _, _ in rows:
        assert (demo_run / "results" / "logs" / log).is_file() and rule in log
