"""split: half-open JST ranges, kept windows only, land stacking, errors naming the experiment."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from precipmodes.accumulate import accumulate
from precipmodes.errors import ConfigError, InputDataError
from precipmodes.grid import unstack_cells
from precipmodes.netcdf import open_netcdf, write_netcdf
from precipmodes.split import split_experiment, split_files
from precipmodes.threshold import land_of, select_windows
from preprocess_cases import canonical
from test_threshold import LAND, land_mask

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
    train, test = split_files(tmp_path / "totals.nc", tmp_path / "land_mask.nc", tmp_path / "selection.nc",
                              "seed", experiment, tmp_path / "seed" / "train.nc", tmp_path / "seed" / "test.nc")
    got = open_netcdf(train)
    assert got["precip"].dims == ("cell", "time") and set(got.coords) >= {"lat", "lon", "time"}
    assert got["time_bnds"].dims == ("time", "nv") and got.attrs["experiment"] == "seed"
    assert got.attrs["test_range"] == "[2006-02-01T00:00+09:00, 2006-03-01T00:00+09:00)"
    ref = split_experiment(totals, land, selection, "seed", experiment)
    xr.testing.assert_allclose(got["precip"], ref["train"]["precip"].compute())
    assert open_netcdf(test).sizes["time"] == ref["test"].sizes["time"] > 0
