"""Real observations end to end through `snakemake`, with configs as a user writes them (tests/configs/).

* E-OBS Iberia (DJF 1982-2002, station-based, sea NaN, four cells along the Algerian edge missing on some
  days): files source, its full domain, default land mask, accumulation (no anchor key: ``auto`` picks
  00:00 UTC) and coverage rules. The split is checked against an independent numpy re-computation from the
  file itself (72-hour sums of complete windows, wet-area threshold, coverage of cells and windows): which
  intermittent cells enter, which windows, the NaN left in train.nc/test.nc, the drop counts. A DJF
  ``months`` experiment keeps exactly the windows of the record's own season; a January one only January's.
* E-OBS with coverage 1.0 / 1.0: every gap left out, so SVD and NMF run on a complete matrix.
* mHM (62 years daily, curvilinear 24 km grid) with ``regrid: nearest`` and a DJF experiment.

Each config runs once per session (fixture ``real_run``) in a temporary directory.

The gap-aware fit runs SVD/NMF/evaluate on matrices that keep NaN (E-OBS with default settings).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from helpers.reliability import prepared_totals
from helpers.workflow import REPO, run_snakemake

pytestmark = pytest.mark.workflow

CONFIGS = REPO / "tests" / "configs"
EOBS = "eobs_iberia_pr_djf_1982-2002.nc"
DAY = np.timedelta64(1, "D")
EPS32 = float(np.finfo(np.float32).eps)

_RUNS: dict[str, tuple[Path, set[str]]] = {}  # config name -> (workdir, targets built there)


def user_config(name: str, shared_data: Path) -> dict:
    """tests/configs/<name>.yaml with its source paths pointed at ../shared/data."""
    config = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    files = config["source"]["files"]
    files["paths"] = [str(shared_data / path) for path in files["paths"]]
    return config


def split_targets(config: dict) -> list[str]:
    return [f"results/{name}/{part}.nc" for name in config["experiments"] for part in ("train", "test")]


@pytest.fixture(scope="session")
def real_run(tmp_path_factory, shared_data):
    """``real_run(name, targets=None)``: the workdir of `snakemake --cores 2 --configfile <name>.yaml`
    for ``targets`` (default: every experiment's train.nc and test.nc): one workdir per config and
    session, where a later call with other targets runs only the jobs they add (as a user asking for
    more of the same run)."""
    def run(name: str, targets: list[str] | None = None) -> Path:
        config = user_config(name, shared_data)
        targets = split_targets(config) if targets is None else targets
        if name not in _RUNS:
            workdir = tmp_path_factory.mktemp(f"real_{name}")
            (workdir / "my.yaml").write_text(yaml.safe_dump(config))
            _RUNS[name] = (workdir, set())
        workdir, done = _RUNS[name]
        if not set(targets) <= done:
            run_snakemake(workdir, *targets, "--configfile", str(workdir / "my.yaml"), "--cores", "2",
                          timeout=1800)
            done.update(targets)
        return workdir
    return run


def open_part(workdir: Path, experiment: str, part: str) -> xr.Dataset:
    with xr.open_dataset(workdir / "results" / experiment / f"{part}.nc") as ds:
        return ds.load()


# ------------------------------------------------------------------ independent re-computation (numpy)

def eobs_windows(shared_data: Path) -> dict:
    """72-hour totals of E-OBS computed here from the file: windows from its first day (00:00 UTC), only
    complete ones (3 days present), NaN in a cell that misses a day; land = cells with any data."""
    with xr.open_dataset(shared_data / EOBS) as ds:
        pr = ds["pr"].values.astype(np.float32)
        days = ds["time"].values.astype("datetime64[ns]")
        lat, lon = ds["lat"].values, ds["lon"].values
    land = np.isfinite(pr).any(axis=0)
    index = (days - days[0]) // (3 * DAY)
    windows, first, count = np.unique(index, return_index=True, return_counts=True)
    sums = np.add.reduceat(pr, first, axis=0)
    complete = count == 3
    iy, ix = np.nonzero(land)
    return {"start": days[0] + windows[complete] * 3 * DAY, "incomplete": days[0] + windows[~complete] * 3 * DAY,
            "totals": sums[complete][:, iy, ix], "lat": lat[iy], "lon": lon[ix], "n_land": int(land.sum())}


def expected_split(data: dict, experiment: dict, min_cell: float = 0.8, min_window: float = 0.8,
                   wet_mm: float = 0.0, min_wet: float = 0.2) -> dict:
    """What split must write for ``experiment``, from :func:`eobs_windows`' totals."""
    totals, start = data["totals"], data["start"]
    valid = np.isfinite(totals)
    wet = ((totals > wet_mm) & valid).sum(axis=1) / valid.sum(axis=1)
    kept = wet >= min_wet
    months = experiment.get("months") or list(range(1, 13))
    season = pd.DatetimeIndex(start).month.isin(months)
    train_lo, train_hi = (np.datetime64(pd.Timestamp(t).tz_convert(None)) for t in experiment["train"])
    test_lo, test_hi = (np.datetime64(pd.Timestamp(t).tz_convert(None)) for t in experiment["test"])
    inside = {"train": (start >= train_lo) & (start + 3 * DAY <= train_hi),
              "test": (start >= test_lo) & (start + 3 * DAY <= test_hi)}
    cells_cov = valid[inside["train"] & season & kept].mean(axis=0)
    cells = cells_cov >= min_cell
    out = {"cells": cells, "cell_coverage": cells_cov}
    for part, (lo, hi) in (("train", (train_lo, train_hi)), ("test", (test_lo, test_hi))):
        candidates = inside[part] & season & kept
        window_cov = valid[:, cells].mean(axis=1)
        chosen = candidates & (window_cov >= min_window)
        lost = data["incomplete"][(data["incomplete"] >= lo) & (data["incomplete"] + 3 * DAY <= hi)]
        out[part] = {
            "time": start[chosen], "precip": totals[chosen][:, cells].T,
            "window_coverage": window_cov[chosen],
            "dropped": {"months": int((inside[part] & ~season).sum()
                                      + (~pd.DatetimeIndex(lost).month.isin(months)).sum()),
                        "completeness": int(pd.DatetimeIndex(lost).month.isin(months).sum()),
                        "threshold": int((inside[part] & season & ~kept).sum()),
                        "coverage": int((candidates & ~chosen).sum())},
        }
    return out


@pytest.fixture(scope="module")
def eobs_data(shared_data) -> dict:
    return eobs_windows(shared_data)


# ------------------------------------------------------------------ E-OBS, default settings

@pytest.mark.parametrize("experiment", ["iberia", "january", "djf"])
def test_eobs_split_matches_the_independent_computation(real_run, shared_data, eobs_data, experiment):
    workdir = real_run("eobs")
    config = user_config("eobs", shared_data)
    expected = expected_split(eobs_data, config["experiments"][experiment])
    with prepared_totals(workdir / "results" / "prepared") as totals:
        assert totals.attrs["accumulation_anchor"] == "1982-12-01T00:00:00Z"   # auto: no anchor key needed
        assert totals.attrs["accumulation_anchor_rule"].startswith("auto: the first time step at 00:00 UTC")
        assert totals.attrs["n_windows_dropped"] == eobs_data["incomplete"].size == totals.sizes["dropped_window"]
        assert "n_dropped_windows" not in totals.attrs
    cells = expected["cells"]
    for part in ("train", "test"):
        ds = open_part(workdir, experiment, part)
        want = expected[part]
        np.testing.assert_array_equal(ds["time"].values, want["time"])
        np.testing.assert_array_equal(ds["lat"].values, eobs_data["lat"][cells])
        np.testing.assert_array_equal(ds["lon"].values, eobs_data["lon"][cells])
        got = ds["precip"].transpose("cell", "time").values
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want["precip"]))     # NaN stays NaN
        # three float32 additions in either order: |error| <= 2 eps32 of the (non-negative) sum
        np.testing.assert_allclose(got, want["precip"], rtol=2 * EPS32, atol=0, equal_nan=True)
        np.testing.assert_allclose(ds["window_coverage"].values, want["window_coverage"], rtol=1e-6)
        np.testing.assert_allclose(ds["cell_coverage"].values, expected["cell_coverage"][cells], rtol=1e-6)
        for rule, count in want["dropped"].items():
            assert ds.attrs[f"n_windows_dropped_{rule}"] == count, (part, rule)
        assert ds.attrs["n_land_cells"] == eobs_data["n_land"] == 328
        assert ds.attrs["n_cells_excluded_coverage"] == int((~cells).sum()) == ds.sizes["excluded_cell"]
        assert ds.attrs["n_missing_entries"] == int(np.isnan(want["precip"]).sum())
        assert ds.attrs["coverage_min_cell_fraction"] == ds.attrs["coverage_min_window_fraction"] == 0.8


def test_eobs_intermittent_cells_follow_the_coverage_rule(real_run, shared_data, eobs_data):
    """The four Algerian-edge cells: the one missing most of its days is left out, the others enter with
    their gaps (NaN in train.nc); the log says which and why."""
    workdir = real_run("eobs")
    train = open_part(workdir, "iberia", "train")
    coverage = expected_split(eobs_data, user_config("eobs", shared_data)["experiments"]["iberia"])["cell_coverage"]
    intermittent = {(35.25, 2.75), (35.25, 4.25), (35.75, 3.75), (35.75, 4.25)}
    places = list(zip(eobs_data["lat"], eobs_data["lon"]))
    for place in intermittent:
        share = coverage[places.index(place)]
        chosen = any((train["lat"].values == place[0]) & (train["lon"].values == place[1]))
        assert chosen == (share >= 0.8), (place, share)
    excluded = set(zip(train["excluded_cell_lat"].values, train["excluded_cell_lon"].values))
    assert (35.25, 4.25) in excluded and excluded <= intermittent
    assert set(intermittent) - excluded, "some intermittent cells must enter with gaps"
    assert np.isnan(train["precip"].values).any()
    log = (workdir / "results" / "logs" / "split_iberia.log").read_text()
    assert "lat=35.25 lon=4.25" in log and "below coverage.min_cell_fraction 0.8" in log
    assert "windows dropped: months 0, completeness" in log


def test_eobs_season_experiments(real_run):
    workdir = real_run("eobs")
    iberia, djf, january = (open_part(workdir, name, "train") for name in ("iberia", "djf", "january"))
    # DJF is the record's own season: the same windows and values as without months
    np.testing.assert_array_equal(djf["time"].values, iberia["time"].values)
    np.testing.assert_array_equal(djf["precip"].values, iberia["precip"].values)
    # ... only the incomplete windows that start in late November (touching 1 December) count as months drops
    assert djf.attrs["n_windows_dropped_months"] > 0
    assert (djf.attrs["n_windows_dropped_months"] + djf.attrs["n_windows_dropped_completeness"]
            == iberia.attrs["n_windows_dropped_completeness"])
    assert iberia.attrs["n_windows_dropped_months"] == 0
    np.testing.assert_array_equal(djf.attrs["months"], [1, 2, 12])
    # January: only windows starting in January; the December and February ones are counted as months drops
    assert (pd.DatetimeIndex(january["time"].values).month == 1).all()
    assert january.attrs["n_windows_dropped_months"] > 0
    kept_january = pd.DatetimeIndex(iberia["time"].values).month == 1
    assert january.sizes["time"] >= 0.9 * kept_january.sum()


# ------------------------------------------------------------------ E-OBS with coverage 1.0 (complete matrices)

def test_eobs_complete_coverage_leaves_out_every_gap(real_run, shared_data, eobs_data):
    workdir = real_run("eobs_complete")
    experiment = user_config("eobs_complete", shared_data)["experiments"]["iberia"]
    expected = expected_split(eobs_data, experiment, min_cell=1.0, min_window=1.0)
    for part in ("train", "test"):
        ds = open_part(workdir, "iberia", part)
        assert not np.isnan(ds["precip"].values).any()
        np.testing.assert_array_equal(ds["time"].values, expected[part]["time"])
        assert ds.sizes["cell"] == int(expected["cells"].sum())
        assert ds.attrs["n_missing_entries"] == 0
    # the cells with a gap in a kept training window are the ones left out
    assert ds.sizes["cell"] + ds.sizes["excluded_cell"] == 328 and ds.sizes["excluded_cell"] >= 3


def test_eobs_complete_coverage_decomposes(real_run):
    """With every gap left out, SVD, NMF and the evaluation run on E-OBS as they are."""
    targets = [f"results/iberia/{name}.nc" for name in ("svd", "nmf", "evaluation")]
    workdir = real_run("eobs_complete", targets)
    with xr.open_dataset(workdir / "results" / "iberia" / "evaluation.nc") as evaluation:
        assert float(evaluation["svd_rmse_overall"]) < float(evaluation["climatology_rmse_overall"])
        assert np.isfinite(evaluation["svd_rmse"].values).all()
    with xr.open_dataset(workdir / "results" / "iberia" / "svd.nc") as svd:
        assert np.isnan(svd["spatial_modes"].sel(lat=35.25, lon=4.25).values).all()   # left out by coverage


def test_eobs_series_figure_breaks_between_winters(real_run, shared_data):
    """The training coefficients of E-OBS drawn with gaps: a break between winters, and the dropped count
    says what split dropped (threshold, coverage), not the summers the record never had."""
    from precipmodes.plots.base import FigureOptions
    from precipmodes.plots.series import coefficients_figure, with_gaps

    targets = [f"results/iberia/{name}.nc" for name in ("svd", "nmf", "evaluation")]
    workdir = real_run("eobs_complete", targets)
    config = user_config("eobs_complete", shared_data)
    train = open_part(workdir, "iberia", "train")
    lo, hi = (np.datetime64(pd.Timestamp(t).tz_convert(None)) for t in config["experiments"]["iberia"]["train"])
    with xr.open_dataset(workdir / "results" / "iberia" / "svd.nc") as svd, \
            xr.open_dataset(workdir / "results" / "prepared" / "selection.nc") as selection:
        gapped = with_gaps(svd["temporal_coefficients"].load(), selection["time"].load(), lo, hi)
    winters = pd.DatetimeIndex(train["time"].values).to_period("Q-NOV").unique()  # Dec-Feb = one quarter
    assert (~gapped["in_record"].values).sum() == winters.size - 1 == 12      # 13 winters, a break between each
    from precipmodes.config import validate_config

    figures = validate_config(config)["figures"]                  # the figures section with its defaults
    options = FigureOptions.from_config(figures, config["domain"], "files", "iberia")
    fig = coefficients_figure(gapped, "mode", "mode", "SVD temporal coefficients", options)
    dropped = train.attrs["n_windows_dropped_threshold"] + train.attrs["n_windows_dropped_coverage"]
    assert f"{dropped} of {dropped + train.attrs['n_windows']} windows dropped" in fig.get_suptitle()


# ------------------------------------------------------------------ mHM: 62 years, curvilinear

def test_mhm_regridded_split_and_djf_counts(real_run, shared_data):
    workdir = real_run("mhm")
    with prepared_totals(workdir / "results" / "prepared") as totals, \
            xr.open_dataset(workdir / "results" / "prepared" / "selection.nc") as selection:
        assert totals.attrs["accumulation_anchor"] == "1950-01-01T00:00:00Z"
        assert totals.attrs["n_windows_dropped"] == 1          # 22,645 days = 7,548 windows + 1 day
        starts = totals["time"].values
        kept = selection["kept"].values.astype(bool)
    assert starts.size == 7548
    for name in ("all", "djf"):
        experiment = user_config("mhm", shared_data)["experiments"][name]
        months = experiment.get("months") or list(range(1, 13))
        season = pd.DatetimeIndex(starts).month.isin(months)
        for part in ("train", "test"):
            lo, hi = (np.datetime64(pd.Timestamp(t).tz_convert(None)) for t in experiment[part])
            inside = (starts >= lo) & (starts + 3 * DAY <= hi)
            ds = open_part(workdir, name, part)
            assert not np.isnan(ds["precip"].values).any()             # the model's cells are complete
            np.testing.assert_array_equal(ds["time"].values, starts[inside & season & kept])
            assert ds.attrs["n_windows_dropped_months"] == int((inside & ~season).sum())
            assert ds.attrs["n_windows_dropped_threshold"] == int((inside & season & ~kept).sum())
            assert ds.attrs["n_windows_dropped_coverage"] == ds.attrs["n_windows_dropped_completeness"] == 0
            assert ds.attrs["n_cells_excluded_coverage"] == 0
    djf = open_part(workdir, "djf", "train")
    assert pd.DatetimeIndex(djf["time"].values).month.isin([12, 1, 2]).all()
    # December to February of 40 years: about a quarter of the 4,870 training windows
    assert 0.22 * 4870 < djf.attrs["n_windows"] + djf.attrs["n_windows_dropped_threshold"] < 0.27 * 4870


def test_mhm_decomposes(real_run):
    targets = [f"results/{name}/{kind}.nc" for name in ("all", "djf") for kind in ("svd", "nmf", "evaluation")]
    workdir = real_run("mhm", targets)
    for name in ("all", "djf"):
        with xr.open_dataset(workdir / "results" / name / "evaluation.nc") as evaluation:
            assert float(evaluation["svd_rmse_overall"]) < float(evaluation["climatology_rmse_overall"])


# ------------------------------------------------------------------ the gap-aware fit

def test_eobs_default_settings_decompose_with_gaps(real_run):
    """The issue's failing run: E-OBS, default settings, NaN left in train.nc -> svd, nmf, evaluate finish."""
    targets = [f"results/{name}/{kind}.nc" for name in ("iberia", "djf") for kind in ("svd", "nmf", "evaluation")]
    workdir = real_run("eobs", targets)
    train = open_part(workdir, "iberia", "train")
    assert train.attrs["n_missing_entries"] > 0
    with xr.open_dataset(workdir / "results" / "iberia" / "svd.nc") as svd:
        chosen = svd["spatial_modes"].sel(lat=xr.DataArray(train["lat"].values, dims="cell"),
                                          lon=xr.DataArray(train["lon"].values, dims="cell"))
        assert np.isfinite(chosen.values).all()        # every chosen cell, gaps included, has a mode value
    with xr.open_dataset(workdir / "results" / "iberia" / "nmf.nc") as nmf:
        assert float(np.nanmin(nmf["basis"].values)) >= 0
    with xr.open_dataset(workdir / "results" / "iberia" / "evaluation.nc") as evaluation:
        assert float(evaluation["svd_rmse_overall"]) < float(evaluation["climatology_rmse_overall"])
        assert np.isfinite(evaluation["svd_rmse"].values).all()
