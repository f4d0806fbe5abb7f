"""The fields beside the modes (precipmodes.diagnostics.fields) on matrices whose answer is known, and their figures:
regression/correlation maps, local share of the first k modes, per-cell skill, spectra, seasonal cycle; the
window length in the labels; a wet-fraction plot of a 62-year record."""

from __future__ import annotations

from helpers import figures_synthetic as fs
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from precipmodes.config import section_defaults
from precipmodes.decomposition.svd import SVD
from precipmodes.diagnostics import fields as diagnostics
from precipmodes.plots.base import FigureOptions, use_offline_coastlines
from precipmodes.plots.maps import reconstruction_figure
from precipmodes.plots.series import coefficients_figure, spectrum_figure, wet_fraction_figure


@pytest.fixture(scope="module")
def options() -> FigureOptions:
    use_offline_coastlines("110m")
    return FigureOptions.from_config(section_defaults("figures", {"dpi": 40, "coastline_resolution": "110m"}),
                                     fs.DOMAIN, "files", "small", hours=3)


def matrix(values: np.ndarray, start: str = "2000-01-01", step: str = "3D") -> xr.DataArray:
    n_cells, n_times = values.shape
    cell = np.arange(n_cells)
    return xr.DataArray(values, dims=("cell", "time"), coords={
        "cell": cell, "lat": ("cell", 35.0 + 0.5 * cell), "lon": ("cell", 135.0 + 0.25 * cell),
        "time": pd.date_range(start, periods=n_times, freq=step)}, attrs={"units": "mm"})


def test_regression_and_correlation_of_a_rank_one_field_with_gaps():
    rng = np.random.default_rng(1)
    pattern = np.array([2.0, -1.0, 0.5, 3.0])
    a = rng.normal(10.0, 4.0, 200)
    x = np.outer(pattern, a)
    x[1, ::7] = np.nan  # a cell with missing windows
    coefficients = xr.DataArray(a[None, :], dims=("mode", "time"), coords={"mode": [1]})
    train = matrix(x)
    coefficients = coefficients.assign_coords(time=train["time"])
    regression, correlation = diagnostics.regression_maps(train, coefficients, "mode")
    np.testing.assert_allclose(correlation.sel(mode=1).values, np.sign(pattern), atol=1e-9)
    np.testing.assert_allclose(regression.sel(mode=1).values[[0, 2, 3]], pattern[[0, 2, 3]] * a.std(), rtol=1e-9)
    observed = a[np.isfinite(x[1])]
    np.testing.assert_allclose(regression.sel(mode=1).values[1], -observed.std(), rtol=1e-9)


def test_local_share_of_the_first_k_modes_matches_numpy():
    rng = np.random.default_rng(2)
    x = rng.gamma(0.6, 5.0, size=(30, 80))
    train = matrix(x)
    svd = SVD(n_modes=30).fit(train).to_dataset(
        xr.DataArray(np.sort(np.unique(train["lat"].values)), dims="lat"),
        xr.DataArray(np.sort(np.unique(train["lon"].values)), dims="lon"))
    share = diagnostics.local_share(train, svd)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    for k in (1, 3):
        fitted = (u[:, :k] * s[:k]) @ vt[:k]
        expected = 1 - ((x - fitted) ** 2).sum(axis=1) / (x ** 2).sum(axis=1)
        np.testing.assert_allclose(share.sel(mode=k).values, expected, atol=1e-8)
    np.testing.assert_allclose(share.sel(mode=30).values, 1.0, atol=1e-8)  # all modes: everything


def test_cell_skill_is_one_for_a_perfect_and_zero_for_the_reference():
    rng = np.random.default_rng(3)
    grid = xr.DataArray(rng.gamma(1.0, 3.0, (10, 3, 4)), dims=("time", "lat", "lon"))
    reference = grid.mean("time") + 0 * grid
    perfect = diagnostics.cell_skill(grid, grid, reference)
    assert np.allclose(perfect.values, 1.0)
    assert np.allclose(diagnostics.cell_skill(grid, reference, reference).values, 0.0)
    halfway = diagnostics.cell_skill(grid, (grid + reference) / 2, reference)
    assert np.allclose(halfway.values, 0.75)  # error halved: MSE a quarter


def test_power_spectrum_peaks_at_the_annual_period_and_seasonal_cycle_by_month():
    times = pd.date_range("2000-01-01", periods=10 * 122, freq="3D")
    day = (times - times[0]).days.values
    a = 5.0 + 3.0 * np.sin(2 * np.pi * day / 365.25)
    series = xr.DataArray(a[None, :], dims=("mode", "time"), coords={"mode": [1], "time": times})
    gapped = series.where(np.arange(times.size) % 11 != 0)  # dropped windows
    power = diagnostics.power_spectrum(gapped, "mode", np.timedelta64(3, "D"))
    assert abs(float(power["period"][int(np.argmax(power.sel(mode=1).values))]) - 365.25) < 15
    assert float(power.sel(mode=1).sum()) == pytest.approx(1.0)
    mean, error = diagnostics.seasonal_cycle(gapped, "mode")
    month = pd.DatetimeIndex(times).month
    for m in (1, 4, 7, 10):
        expected = np.nanmean(gapped.values[0][month == m])
        assert float(mean.sel(mode=1, month=m)) == pytest.approx(expected)
    assert mean.attrs["units"] == "mm" and (error.values > 0).all()


def test_labels_name_the_window_length_and_the_units(options):
    field = xr.DataArray(np.ones((1, 2, 2)), dims=("time", "lat", "lon"), coords={
        "time": [np.datetime64("2000-01-01")], "lat": [35.0, 36.0], "lon": [135.0, 136.0]}, attrs={"units": "mm"})
    fig = reconstruction_figure(field, {"SVD": field}, {"SVD": xr.DataArray([1.0], dims="time",
                                                                           coords={"time": field["time"]})}, options)
    labels = [ax.get_xlabel() for ax in fig.axes]
    assert "3-hour total (mm)" in labels and not any("72-hour" in label for label in labels)
    coefficients = xr.DataArray(np.ones((2, 5)), dims=("mode", "time"), coords={
        "mode": [1, 2], "time": pd.date_range("2000-01-01", periods=5, freq="3h")}, attrs={"units": "mm"})
    fig = coefficients_figure(coefficients, "mode", "mode", "SVD temporal coefficients", options)
    assert [ax.get_ylabel() for ax in fig.axes] == ["mode 1\n(mm)", "mode 2\n(mm)"]


def test_spectrum_titles_say_share_of_the_sum_of_squares_unless_centred(options, tmp_path):
    x = matrix(np.random.default_rng(4).gamma(0.6, 5.0, size=(12, 40)))
    lat = xr.DataArray(np.sort(np.unique(x["lat"].values)), dims="lat")
    lon = xr.DataArray(np.sort(np.unique(x["lon"].values)), dims="lon")
    for center, word in ((False, "share of the sum of squares"), (True, "explained variance")):
        svd = SVD(n_modes=3, center=center).fit(x).to_dataset(lat, lon)
        fig = spectrum_figure(svd, options)
        texts = " ".join(ax.get_title() + ax.get_ylabel() for ax in fig.axes)
        assert word in texts.lower() or word.capitalize() in texts
        other = "explained variance" if not center else "sum of squares"
        assert other not in texts.lower()


def test_wet_fraction_of_a_62_year_record_draws_yearly_summaries(options):
    times = pd.date_range("1950-01-01", "2011-12-31", freq="3D")
    rng = np.random.default_rng(5)
    fraction = np.clip(rng.beta(2, 3, times.size), 0, 1)
    kept = (fraction > 0.2).astype(np.int8)
    selection = xr.Dataset({"wet_area_fraction": ("time", fraction), "kept": ("time", kept)}, coords={"time": times})
    fig = wet_fraction_figure(selection, 0.2, options, {"train": ("1950-01-01", "2000-01-01")})
    assert len(fig.axes) == 2  # the windows with yearly median/quartiles, and windows per year
    labels = [text.get_text() for text in fig.legends[0].get_texts()]
    assert {"yearly median", "kept per year", "dropped per year"} <= set(labels)
    bars = [patch.get_height() for patch in fig.axes[1].patches]
    assert len(bars) == 2 * 62 and max(bars) <= 123
    assert "3-hour window" in fig.get_suptitle()
