"""split: half-open JST ranges, kept windows only, land stacking, errors naming the experiment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from helpers.preprocess_cases import canonical
from helpers.preprocess_cases import LAND, land_mask

from precipmodes.config import section_defaults
from precipmodes.errors import ConfigError, InputDataError
from precipmodes.grid import unstack_cells
from precipmodes.io.netcdf import open_netcdf, write_netcdf
from precipmodes.preprocess.landmask import land_of
from precipmodes.preprocess.split import require_selection_holds_modes, split_experiment
from precipmodes.preprocess.threshold import select_windows
from precipmodes.steps.windowtotals import accumulate
from precipmodes.steps.split import split_files

N = 20  # 72-hour windows from 2005-12-31T15:00Z (= 2006-01-01 00:00 JST) to 2006-03-01T15:00Z


@pytest.fixture()
def prepared():
    rng = np.random.default_rng(5)
    values = rng.gamma(0.5, 4.0, size=(N, 2, 3)).astype(np.float32) + 0.1
    values[4] = 0.0  # a dry window: dropped by the threshold
    totals = accumulate(canonical(values, step="72h"), 72, "first").compute()
    land = land_of(land_mask(LAND), totals)
    return totals, land, select_windows(totals, land, 0.0, 0.2)


def exp(train, test):
    return {"train": list(train), "test": list(test), "n_modes": 2}


def test_half_open_ranges_kept_windows_and_cells(prepared):
    totals, land, selection = prepared
    # train: 2006-01-01 00:00 JST .. 2006-01-31 00:00 JST = windows 0..9 (window 9 ends at 2006-01-31 00:00 JST)
    # test starts 2006-01-31 00:00 JST; the range end 2006-02-20 12:00 JST cuts window 16 -> 10..15
    parts = split_experiment(totals, land, selection, "jst",
                             exp(["2006-01-01T00:00+09:00", "2006-01-31T00:00+09:00"],
                                 ["2006-01-31T00:00+09:00", "2006-02-20T12:00+09:00"]))
    train, test = parts["train"], parts["test"]
    starts = totals["time"].values
    np.testing.assert_array_equal(train["time"].values, starts[[0, 1, 2, 3, 5, 6, 7, 8, 9]])
    np.testing.assert_array_equal(test["time"].values, starts[10:16])
    assert train["precip"].dims == ("cell", "time") and train["precip"].dtype == np.float32
    assert train.sizes["cell"] == 4 and train.attrs["experiment"] == "jst" and train.attrs["part"] == "train"
    assert train.attrs["range_utc"] == "[2005-12-31T15:00:00Z, 2006-01-30T15:00:00Z)"
    np.testing.assert_array_equal(train["lat"].values, [0, 0, 1, 1])
    np.testing.assert_array_equal(train["lon"].values, [0, 1, 0, 1])
    # unstacks back onto the grid: land values identical, sea NaN
    grid = unstack_cells(test["precip"].compute(), totals["lat"], totals["lon"])
    expected = totals["precip"].isel(time=slice(10, 16)).where(land).transpose("lat", "lon", "time")
    xr.testing.assert_allclose(grid.transpose("lat", "lon", "time").drop_vars("time"),
                               expected.drop_vars("time"))


def test_overlapping_ranges_name_the_experiment(prepared):
    with pytest.raises(ConfigError, match=r"experiments.bad: train .* and test .* overlap"):
        split_experiment(*prepared, "bad", exp(["2006-01-01T00:00Z", "2006-02-01T00:00Z"],
                                               ["2006-01-31T00:00+09:00", "2006-02-20T00:00Z"]))


def test_range_outside_the_data_gives_the_extent(prepared):
    with pytest.raises(ConfigError, match=r"experiments.late.test: .* lies outside the data, which covers "
                                          r"2005-12-31T15:00:00 .. 2006-03-01T15:00:00 UTC"):
        split_experiment(*prepared, "late", exp(["2006-01-01T00:00Z", "2006-02-01T00:00Z"],
                                                ["2011-01-01T00:00+09:00", "2016-01-01T00:00+09:00"]))


def test_empty_split_names_the_experiment(prepared):
    # window 4 (2006-01-12T15Z .. 01-15T15Z) is the only one inside and it is dry
    with pytest.raises(ConfigError, match=r"experiments.dry.test: .* holds no kept window \(1 windows lie inside"):
        split_experiment(*prepared, "dry", exp(["2006-01-01T00:00Z", "2006-01-10T00:00Z"],
                                               ["2006-01-12T15:00Z", "2006-01-15T15:00Z"]))


def test_selection_from_other_totals_is_refused(prepared):
    totals, land, selection = prepared
    with pytest.raises(InputDataError, match="rerun the threshold rule"):
        split_experiment(totals, land, selection.isel(time=slice(1, None)), "x",
                         exp(["2006-01-01T00:00Z", "2006-01-20T00:00Z"], ["2006-01-20T00:00Z", "2006-02-20T00:00Z"]))


def test_split_files_write_lazy_matrices(tmp_path, prepared):
    totals, land, selection = prepared
    write_netcdf(totals, tmp_path / "totals.nc")
    write_netcdf(land_mask(LAND), tmp_path / "land_mask.nc")
    write_netcdf(selection, tmp_path / "selection.nc")
    experiment = exp(["2006-01-01T00:00+09:00", "2006-02-01T00:00+09:00"],
                     ["2006-02-01T00:00+09:00", "2006-03-01T00:00+09:00"])
    train, test = split_files(totals=[tmp_path / "totals.nc"], land_mask=tmp_path / "land_mask.nc",
                              selection=tmp_path / "selection.nc", train=tmp_path / "seed" / "train.nc",
                              test=tmp_path / "seed" / "test.nc", name="seed", experiment=experiment,
                              coverage=section_defaults("coverage"))
    got = open_netcdf(train)
    assert got["precip"].dims == ("cell", "time") and set(got.coords) >= {"lat", "lon", "time"}
    assert got["time_bnds"].dims == ("time", "nv") and got.attrs["experiment"] == "seed"
    assert got.attrs["test_range"] == "[2006-02-01T00:00+09:00, 2006-03-01T00:00+09:00)"
    ref = split_experiment(totals, land, selection, "seed", experiment)
    xr.testing.assert_allclose(got["precip"], ref["train"]["precip"].compute())
    assert open_netcdf(test).sizes["time"] == ref["test"].sizes["time"] > 0


# ---------------------------------------------------------------- coverage rules, months, drop counts

TRAIN = ["2006-01-01T00:00+09:00", "2006-01-31T00:00+09:00"]      # windows 0..9 (window 4 dry)
TEST = ["2006-01-31T00:00+09:00", "2006-02-20T12:00+09:00"]       # windows 10..15


@pytest.fixture()
def gappy():
    """The prepared windows with known gaps on land: cell (1, 1) misses windows 0 and 1 (7 of 9 kept
    training windows: coverage 0.778), cell (0, 0) misses window 2, cells (0, 1) and (1, 0) miss test
    window 12, cell (0, 1) misses test window 13."""
    rng = np.random.default_rng(5)
    values = rng.gamma(0.5, 4.0, size=(N, 2, 3)).astype(np.float32) + 0.1
    values[4] = 0.0
    values[[0, 1], 1, 1] = np.nan
    values[2, 0, 0] = np.nan
    values[12, 0, 1] = values[12, 1, 0] = np.nan
    values[13, 0, 1] = np.nan
    totals = accumulate(canonical(values, step="72h"), 72, "first").compute()
    land = land_of(land_mask(LAND), totals)
    return totals, land, select_windows(totals, land, 0.0, 0.2)


def test_coverage_chooses_cells_and_windows_exactly(gappy):
    totals, land, selection = gappy
    parts = split_experiment(totals, land, selection, "gaps", exp(TRAIN, TEST),
                             {"min_cell_fraction": 0.8, "min_window_fraction": 0.6})
    train, test = parts["train"], parts["test"]
    starts = totals["time"].values
    # cell (1, 1) has data in 7 of the 9 kept training windows: excluded; the others stay
    np.testing.assert_array_equal(train["lat"].values, [0, 0, 1])
    np.testing.assert_array_equal(train["lon"].values, [0, 1, 0])
    np.testing.assert_array_equal(train["cell"].values, [0, 1, 2])
    np.testing.assert_allclose(train["cell_coverage"].values, [8 / 9, 1, 1], rtol=1e-6)
    np.testing.assert_array_equal(train["excluded_cell_lat"].values, [1])
    np.testing.assert_array_equal(train["excluded_cell_lon"].values, [1])
    np.testing.assert_allclose(train["excluded_cell_coverage"].values, [7 / 9], rtol=1e-6)
    # window 2 has 2 of 3 chosen cells (0.667 >= 0.6): kept, its gap stays NaN
    np.testing.assert_array_equal(train["time"].values, starts[[0, 1, 2, 3, 5, 6, 7, 8, 9]])
    np.testing.assert_allclose(train["window_coverage"].values, [1, 1, 2 / 3, 1, 1, 1, 1, 1, 1], rtol=1e-6)
    nan = np.argwhere(np.isnan(train["precip"].values))
    np.testing.assert_array_equal(nan, [[0, 2]])
    # test: window 12 has 1 of 3 cells (dropped by coverage), window 13 has 2 of 3 (kept with NaN)
    np.testing.assert_array_equal(test["time"].values, starts[[10, 11, 13, 14, 15]])
    np.testing.assert_array_equal(np.argwhere(np.isnan(test["precip"].values)), [[1, 2]])
    # the values are the totals' values on the chosen cells
    expected = totals["precip"].isel(time=[10, 11, 13, 14, 15]).values[:, [0, 0, 1], [0, 1, 0]].T
    np.testing.assert_array_equal(test["precip"].values, expected)
    for ds, threshold, coverage, missing in ((train, 1, 0, 1), (test, 0, 1, 1)):
        assert ds.attrs["n_windows_dropped_threshold"] == threshold
        assert ds.attrs["n_windows_dropped_coverage"] == coverage
        assert ds.attrs["n_windows_dropped_months"] == ds.attrs["n_windows_dropped_completeness"] == 0
        assert ds.attrs["n_missing_entries"] == missing
        assert ds.attrs["n_cells_excluded_coverage"] == 1 and ds.attrs["n_land_cells"] == 4
        assert ds.attrs["coverage_min_cell_fraction"] == 0.8 and ds.attrs["coverage_min_window_fraction"] == 0.6


def test_default_coverage_drops_the_partial_windows(gappy):
    parts = split_experiment(*gappy, "gaps", exp(TRAIN, TEST))    # schema defaults 0.8 / 0.8
    starts = gappy[0]["time"].values
    np.testing.assert_array_equal(parts["train"]["time"].values, starts[[0, 1, 3, 5, 6, 7, 8, 9]])
    np.testing.assert_array_equal(parts["test"]["time"].values, starts[[10, 11, 14, 15]])
    assert not np.isnan(parts["train"]["precip"].values).any()
    assert parts["train"].attrs["n_windows_dropped_coverage"] == 1
    assert parts["test"].attrs["n_windows_dropped_coverage"] == 2
    assert parts["train"].attrs["coverage_min_cell_fraction"] == 0.8
    # a lower cell rule keeps cell (1, 1) with its two missing windows
    lenient = split_experiment(*gappy, "gaps", exp(TRAIN, TEST), {"min_cell_fraction": 0.75})
    assert lenient["train"].sizes["cell"] == 4 and lenient["train"].sizes["excluded_cell"] == 0


def test_no_cell_meets_coverage_names_the_key_and_best(gappy):
    totals, land, selection = gappy
    totals = totals.copy()
    totals["precip"] = totals["precip"].where(totals["time"] != totals["time"][3])   # every cell misses one
    with pytest.raises(ConfigError, match=r"coverage.min_cell_fraction: no land cell of experiment gaps has "
                                          r"data in at least 1 of its 9 kept training windows \(best cell "
                                          r"coverage 0.889 at lat=0 lon=1"):
        split_experiment(totals, land, selection, "gaps", exp(TRAIN, TEST), {"min_cell_fraction": 1.0})


def test_test_period_below_coverage_names_the_key(gappy):
    # test range = windows 12 and 13 only: 1/3 and 2/3 of the chosen cells
    with pytest.raises(ConfigError, match=r"coverage.min_window_fraction: none of the 2 kept windows of "
                                          r"experiments.gaps.test .*\(best window coverage 0.667, window starting 2006-02-08T15:00:00 UTC\)"):
        split_experiment(*gappy, "gaps", exp(TRAIN, ["2006-02-05T15:00Z", "2006-02-11T15:00Z"]),
                         {"min_window_fraction": 0.9})


def test_fewer_windows_than_n_modes_names_the_key(gappy):
    """Checked by svd/nmf from train.nc's attributes (so n_modes does not rerun split)."""
    train = split_experiment(*gappy, "gaps", exp(TRAIN, TEST))["train"]
    require_selection_holds_modes(train.attrs, "gaps", 3)          # min(8 windows, 3 cells)
    with pytest.raises(ConfigError, match=r"experiments.gaps.n_modes: 4 modes .* keeps 8 windows x 3 cells "
                                          r"\(windows dropped: months 0, completeness 0, threshold 1, coverage 1\)"):
        require_selection_holds_modes(train.attrs, "gaps", 4)


def daily_winters():
    """Daily data 2005-11-01 .. 2006-03-31 with Jan 10 and 11 missing: 72-hour windows from Nov 1
    (auto anchor: the first 00:00 UTC step); window 23 (Jan 9) has 1 of 3 days, window 50 (Mar 31) 1."""
    days = pd.date_range("2005-11-01", "2006-03-31", freq="D")
    values = np.ones((days.size, 2, 3), np.float32)
    missing = np.flatnonzero(days.isin(pd.to_datetime(["2006-01-10", "2006-01-11"])))
    totals = accumulate(canonical(values, start="2005-11-01", step="1D", drop=missing), 72, "auto").compute()
    land = land_of(land_mask(LAND), totals)
    return totals, land, select_windows(totals, land, 0.0, 0.2)


def test_months_and_completeness_are_counted_separately():
    totals, land, selection = daily_winters()
    assert totals.attrs["n_windows_dropped"] == 2
    np.testing.assert_array_equal(totals["dropped_window"].values,
                                  np.array(["2006-01-09", "2006-03-31"], dtype="datetime64[ns]"))
    experiment = {"train": ["2005-11-01T00:00Z", "2006-02-01T00:00Z"], "test": ["2006-02-01T00:00Z",
                                                                             "2006-04-01T00:00Z"],
                  "months": [12, 1, 2], "n_modes": 2}
    parts = split_experiment(totals, land, selection, "djf", experiment)
    train, test = parts["train"], parts["test"]
    # train: 30 windows inside (Nov 1 .. Jan 27): 10 in November, Jan 9 incomplete, 19 kept
    assert train.sizes["time"] == 19
    assert (train.attrs["n_windows_dropped_months"], train.attrs["n_windows_dropped_completeness"]) == (10, 1)
    assert pd.DatetimeIndex(train["time"].values).month.isin([12, 1]).all()
    assert np.datetime64("2006-01-09", "ns") not in train["time"].values
    # test: Feb 2 .. Mar 28 = 19 windows inside, 10 in March; Mar 31 reaches beyond the range
    assert test.sizes["time"] == 9 and test.attrs["n_windows_dropped_months"] == 10
    assert test.attrs["n_windows_dropped_completeness"] == 0
    np.testing.assert_array_equal(train.attrs["months"], [1, 2, 12])
    # without months the November windows are kept
    everything = split_experiment(totals, land, selection, "all", {**experiment, "months": None})
    assert everything["train"].sizes["time"] == 29
    np.testing.assert_array_equal(everything["train"].attrs["months"], np.arange(1, 13))


def test_season_without_windows_names_the_months_key():
    totals, land, selection = daily_winters()
    experiment = {"train": ["2005-11-01T00:00Z", "2006-02-01T00:00Z"], "test": ["2006-02-01T00:00Z",
                                                                             "2006-04-01T00:00Z"],
                  "months": [6, 7, 8]}
    with pytest.raises(ConfigError, match=r"experiments.jja.months: none of the 29 windows of "
                                          r"experiments.jja.train .* starts \(UTC\) in months \[6, 7, 8\]"):
        split_experiment(totals, land, selection, "jja", experiment)
    with pytest.raises(ConfigError, match=r"experiments.bad.months: \[0, 13\] must list calendar months 1..12"):
        split_experiment(totals, land, selection, "bad", {**experiment, "months": [0, 13]})


def test_gappy_split_files_are_cf_and_logged(tmp_path, gappy, caplog):
    from helpers.cf import LEVELS, cf_failures

    totals, land, selection = gappy
    write_netcdf(totals, tmp_path / "totals.nc", step="accumulate")
    write_netcdf(land_mask(LAND), tmp_path / "land_mask.nc", step="land_mask")
    write_netcdf(selection, tmp_path / "selection.nc", step="threshold")
    with caplog.at_level("INFO", logger="precipmodes"):
        train, test = split_files(totals=[tmp_path / "totals.nc"], land_mask=tmp_path / "land_mask.nc",
                                  selection=tmp_path / "selection.nc", train=tmp_path / "gaps" / "train.nc",
                                  test=tmp_path / "gaps" / "test.nc", name="gaps", experiment=exp(TRAIN, TEST),
                                  coverage=section_defaults("coverage", {"min_window_fraction": 0.6}))
    assert ("train = 3 cells x 9 windows; windows dropped: months 0, completeness 0, threshold 1, coverage 0; "
            "1 of 4 land cells below coverage.min_cell_fraction 0.8; 1 entries missing") in caplog.text
    assert "excluded cells (coverage): lat=1 lon=1 (0.778)" in caplog.text
    for path in (tmp_path / "totals.nc", train, test):
        assert cf_failures(path, LEVELS[:2]) == []
    got = open_netcdf(train)
    assert np.isnan(got["precip"].values).sum() == 1 and got["excluded_cell_lat"].attrs["units"] == "degrees_north"
