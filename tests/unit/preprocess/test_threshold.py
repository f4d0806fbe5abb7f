"""threshold: exact wet-area fractions, kept windows, NaN handling, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from helpers.preprocess_cases import canonical

from precipmodes.config import section_defaults
from precipmodes.errors import InputDataError
from precipmodes.io.netcdf import open_netcdf, write_netcdf
from precipmodes.preprocess.landmask import land_of
from precipmodes.preprocess.threshold import select_windows, wet_area_fraction
from precipmodes.steps.windowtotals import accumulate
from precipmodes.steps.landmask import land_mask_files
from precipmodes.steps.threshold import threshold_files
from helpers.preprocess_cases import LAND, land_mask


def totals_of(values) -> xr.Dataset:
    return accumulate(canonical(np.asarray(values, dtype=np.float32), step="72h"), 72, "first").compute()


def test_exact_fractions_and_kept():
    windows = np.zeros((4, 2, 3))
    windows[0, 0, :2] = 5.0          # 2 of 4 land cells wet
    windows[2] = 1.0                 # all land wet (sea values are ignored)
    windows[3, :, 2] = 9.0           # only sea wet -> 0
    windows[3, 1, 1] = np.nan        # ... and one land cell without data
    totals = totals_of(windows)
    land = land_of(land_mask(LAND), totals)
    sel = select_windows(totals, land, wet_mm=0.0, min_wet_fraction=0.5)
    np.testing.assert_allclose(sel["wet_area_fraction"].values, [0.5, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(sel["kept"].values, [1, 0, 1, 0])
    assert sel["kept"].dtype == np.int8
    assert sel.attrs["n_kept"] == 2 and sel.attrs["n_land_cells"] == 4
    assert sel.attrs["threshold_min_wet_fraction"] == 0.5 and sel.attrs["threshold_wet_mm"] == 0.0
    # wet means strictly above wet_mm; the NaN land cell is left out of the denominator
    windows[1, 0, 0] = 2.0
    windows[1, 1, 1] = np.nan
    frac = wet_area_fraction(totals_of(windows)["precip"], land, 2.0).values
    np.testing.assert_allclose(frac, [0.5, 0.0, 0.0, 0.0])
    frac = wet_area_fraction(totals_of(windows)["precip"], land, 1.5).values
    np.testing.assert_allclose(frac, [0.5, 1 / 3, 0.0, 0.0])


def test_window_without_land_data_is_nan_and_dropped():
    windows = np.ones((2, 2, 3))
    windows[1] = np.nan
    sel = select_windows(totals_of(windows), land_of(land_mask(LAND), totals_of(windows)), 0.0, 0.2)
    assert np.isnan(sel["wet_area_fraction"].values[1])
    np.testing.assert_array_equal(sel["kept"].values, [1, 0])


def test_no_window_passing_names_both_thresholds_and_best_fraction():
    windows = np.zeros((3, 2, 3))
    windows[1, 0, 0] = 1.0  # best: 1 of 4 land cells
    totals = totals_of(windows)
    with pytest.raises(InputDataError) as info:
        select_windows(totals, land_of(land_mask(LAND), totals), 0.0, 0.3)
    message = str(info.value)
    assert "threshold.min_wet_fraction=0.3" in message and "threshold.wet_mm=0.0" in message
    assert "best wet-area fraction seen is 0.2500" in message


def test_mask_on_another_grid_is_refused():
    totals = totals_of(np.ones((2, 2, 3)))
    with pytest.raises(InputDataError, match="mask.nc: its lon axis"):
        land_of(land_mask([[1, 1], [1, 1]]), totals, "mask.nc", "totals.nc")


@pytest.mark.parametrize("method", ["file", "data_nan"])
def test_threshold_files_streams_and_writes_every_window_on_the_land_masks_land(tmp_path, method):
    """Two partitions read as one, on the land cells that land_mask finds from the same inputs: a mask file, or
    the cells with data in the partitions' counts (the last column is sea: NaN throughout)."""
    rng = np.random.default_rng(3)
    windows = rng.gamma(0.5, 4.0, size=(150, 2, 3)) * (rng.random((150, 2, 3)) < 0.5)
    windows[:, :, 2] = np.nan
    totals = totals_of(windows)
    paths = []
    for number, part in enumerate((totals.isel(time=slice(0, 70)), totals.isel(time=slice(70, None)))):
        part.attrs["n_windows"] = part.sizes["time"]  # two partitions, read as one
        part["n_observed_steps"] = part["precip"].notnull().sum("time").astype(np.int32)
        paths.append(write_netcdf(part, tmp_path / f"{number}.nc"))
    grid = write_netcdf(totals, tmp_path / "grid.nc")
    settings = section_defaults("land_mask", {"method": method,
                                              "path": str(write_netcdf(land_mask(LAND), tmp_path / "mask.nc"))})
    out = threshold_files(totals=paths, grid=grid, output=tmp_path / "selection.nc", land_mask=settings,
                          threshold={"wet_mm": 0.0, "min_wet_fraction": 0.5})
    sel = open_netcdf(out)
    assert sel.sizes["time"] == 150
    expected = (windows[:, :, :2] > 0).mean(axis=(1, 2))
    np.testing.assert_allclose(sel["wet_area_fraction"].values, expected, rtol=1e-6)
    np.testing.assert_array_equal(sel["kept"].values, (expected >= 0.5).astype(np.int8))
    mask = open_netcdf(land_mask_files(grid=grid, output=tmp_path / "land_mask.nc", land_mask=settings,
                                       totals=paths if method == "data_nan" else None))
    assert sel.attrs["n_land_cells"] == mask.attrs["n_land_cells"] == 4


@settings(max_examples=40, deadline=None)
@given(values=arrays(np.float32, (5, 3, 4), elements=st.one_of(st.floats(0, 100, width=32), st.just(np.nan))),
       land=arrays(bool, (3, 4)), wet_mm=st.floats(0, 50))
def test_property_wet_fraction_in_unit_interval(values, land, wet_mm):
    da = xr.DataArray(values, dims=("time", "lat", "lon"))
    frac = wet_area_fraction(da, xr.DataArray(land, dims=("lat", "lon")), wet_mm).values
    has_data = (~np.isnan(values) & land).any(axis=(1, 2))
    assert np.all(np.isnan(frac) == ~has_data)
    assert np.all((frac[has_data] >= 0) & (frac[has_data] <= 1))
