"""Hilbert (complex) SVD: a travelling rain band, xeofs' HilbertEOF on real E-OBS winters, gaps, runs, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.signal
import xarray as xr

from precipmodes.decomposition.hilbert import (MIN_RUN_WINDOWS, HilbertSVD, analytic_signal, contiguous_runs,
                                               pad_exponential)
from precipmodes.errors import RankError

EOBS = "eobs_iberia_pr_djf_1982-2002.nc"
NX, NY, T = 40, 6, 400
SPEED = 0.5  # grid cells per window: the band crosses the (periodic) domain every NX / SPEED windows


def travelling_band(noise: float = 0.5, seed: int = 0) -> xr.DataArray:
    """A Gaussian rain band (10 mm peak, 3 cells wide) moving east at SPEED cells per window, plus noise."""
    x = np.arange(NX)
    position = (5 + SPEED * np.arange(T)) % NX
    distance = (x[None, :] - position[:, None] + NX / 2) % NX - NX / 2
    band = 10 * np.exp(-0.5 * (distance / 3) ** 2)
    rng = np.random.default_rng(seed)
    field = band[:, None, :] + rng.normal(0, noise, (T, NY, NX))
    time = pd.date_range("2000-01-01", periods=T, freq="72h").values
    return xr.DataArray(field, dims=("time", "lat", "lon"), name="precip", attrs={"units": "mm"},
                        coords={"time": time, "lat": 30.0 + np.arange(NY), "lon": 130.0 + np.arange(NX)})


def overlap(a: xr.DataArray, b: xr.DataArray) -> np.ndarray:
    """``|<a_k, b_k>|`` per mode of two complex ``(mode, ...)`` patterns: 1 when equal up to a phase factor."""
    a = a.values.reshape(a.shape[0], -1)
    b = b.values.reshape(b.shape[0], -1)
    ok = ~np.isnan(a[0])
    a, b = a[:, ok], b[:, ok]
    return np.abs(np.sum(a.conj() * b, axis=1)) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_travelling_band_gives_one_dominant_mode_whose_phase_grows_eastward_at_the_band_speed():
    field = travelling_band()
    model = HilbertSVD(n_modes=3).fit(field)
    ratio = model.explained_variance_ratio().values
    assert ratio[0] > 0.5 and ratio[0] > 1.8 * ratio[1]
    # the band's fundamental travels one domain length (2 pi of phase) per NX / SPEED windows
    phase = np.unwrap(model.components_phase().isel(mode=0).mean("lat").values)
    slope = np.polyfit(np.arange(NX), phase, 1)[0]
    assert slope == pytest.approx(2 * np.pi / NX, rel=0.02)  # increases eastward, the direction of travel
    score_phase = np.unwrap(model.scores_phase().isel(mode=0).values)
    rate = np.polyfit(np.arange(T), score_phase, 1)[0]
    assert rate == pytest.approx(2 * np.pi * SPEED / NX, rel=0.02)  # advances with time at the same frequency
    amplitude = model.components_amplitude().isel(mode=0)
    assert float(amplitude.std()) < 0.1 * float(amplitude.mean())  # the band visits every cell
    peak = model.components().isel(mode=0).values.ravel()
    assert abs(np.angle(peak[np.abs(peak).argmax()])) < 1e-12  # phase convention: the largest loading is real, > 0
    np.testing.assert_allclose(np.abs(model.scores()), model.scores_amplitude())
    # the data are the real part of the analytic signal: the complete model reproduces them
    full = HilbertSVD(n_modes=min(NX * NY, T)).fit(field)
    np.testing.assert_allclose(full.inverse_transform(full.scores()).real, field, atol=1e-8)


@pytest.mark.parametrize("padding", ["none", "exp"])
def test_matches_xeofs_hilbert_eof_on_a_complete_eobs_winter(shared_data, padding):
    """One winter of E-OBS daily rain (90 consecutive days), land cells complete in it: same complex patterns
    up to a phase factor, the same explained variance and the same scores up to that factor."""
    xe = pytest.importorskip("xeofs")
    pr = xr.open_dataset(shared_data / EOBS)["pr"].sel(time=slice("1990-12-01", "1991-02-28")).astype("float64")
    complete = pr.notnull().all("time")
    pr = pr.where(complete)
    assert int(complete.sum()) > 250 and pr.sizes["time"] == 90
    n = 4
    ours = HilbertSVD(n_modes=n, padding=padding).fit(pr)
    assert len(ours.runs_) == 1
    theirs = xe.single.HilbertEOF(n_modes=n, padding=padding, center=True)
    theirs.fit(pr.where(complete, drop=False), dim="time")
    np.testing.assert_allclose(ours.explained_variance_ratio(), theirs.explained_variance_ratio(), rtol=1e-8)
    their_components = theirs.components().transpose("mode", "lat", "lon")
    np.testing.assert_allclose(overlap(ours.components(), their_components), 1, atol=1e-8)
    factor = np.sum(ours.components().fillna(0).values * their_components.fillna(0).values.conj(), axis=(1, 2))
    np.testing.assert_allclose(ours.scores().values,
                               theirs.scores(normalized=False).transpose("mode", "time").values * factor[:, None],
                               rtol=1e-6, atol=1e-8 * float(ours.singular_values()[0]))
    shifted = ours.components_phase().isel(mode=0).values[complete.values] - np.angle(factor[0])
    theirs_phase = theirs.components_phase().isel(mode=0).values[complete.values]
    np.testing.assert_allclose(np.exp(1j * shifted), np.exp(1j * theirs_phase), atol=1e-6)  # same phase map


def test_exponential_padding_is_xeofs_padding():
    xeofs_hilbert = pytest.importorskip("xeofs.utils.hilbert_transform")
    y = np.random.default_rng(1).gamma(0.5, 4.0, (7, 30))
    np.testing.assert_allclose(pad_exponential(y, 0.3), xeofs_hilbert._pad_exp(y.T, 0.3).T, rtol=1e-12)


def test_gappy_fit_matches_the_complete_fit_leading_modes():
    field = travelling_band()
    complete = HilbertSVD(n_modes=2).fit(field)
    rng = np.random.default_rng(3)
    gappy_field = field.where(rng.random(field.shape) > 0.1)  # 10 % of the entries missing
    gappy = HilbertSVD(n_modes=2).fit(gappy_field)
    assert gappy.n_missing_entries_ == int(gappy_field.isnull().sum()) and gappy.gap_iterations_ > 1
    assert gappy.converged_
    assert overlap(gappy.components(), complete.components()).min() > 0.99
    np.testing.assert_allclose(gappy.explained_variance_ratio(), complete.explained_variance_ratio(), rtol=0.05)


def test_each_contiguous_run_is_transformed_on_its_own():
    """Two winters (a season per year): the runs are found from the time steps and transformed separately."""
    days = np.concatenate([pd.date_range("2001-12-01", periods=30, freq="D").values,
                           pd.date_range("2002-12-01", periods=20, freq="D").values])
    runs = contiguous_runs(days)
    assert runs == [slice(0, 30), slice(30, 50)]
    y = np.random.default_rng(2).normal(size=(5, 50))
    Z = analytic_signal(y, runs, "none", 0.2)
    for run in runs:
        alone = scipy.signal.hilbert(y[:, run], axis=1)
        np.testing.assert_allclose(Z[:, run], alone - 1j * alone.imag.mean(axis=1, keepdims=True), atol=1e-12)
    np.testing.assert_allclose(Z.real, y, atol=1e-12)  # the real part stays the data
    field = xr.DataArray(y.T, dims=("time", "cell"), coords={
        "time": days, "cell": np.arange(5), "lat": ("cell", np.full(5, 40.0)), "lon": ("cell", np.arange(5.0))})
    assert HilbertSVD(n_modes=2, padding="exp").fit(field).runs_ == runs


def test_windows_in_runs_too_short_are_left_out_of_the_fit():
    """A long run and a lone pair of windows after a gap: the pair is left out (NaN scores, run 0)."""
    field = travelling_band()
    kept = np.r_[0:200, 250:252]
    model = HilbertSVD(n_modes=2).fit(field.isel(time=kept))
    alone = HilbertSVD(n_modes=2).fit(field.isel(time=slice(0, 200)))
    assert model.runs_ == [slice(0, 200)] and model.n_windows_ == 200
    assert np.isnan(model.scores().values[:, 200:]).all()
    np.testing.assert_allclose(model.scores().values[:, :200], alone.scores().values, rtol=1e-10, atol=1e-10)
    ds = model.to_dataset()
    assert ds["run"].values.tolist() == [1] * 200 + [0, 0]


def test_fewer_windows_than_modes_is_refused_naming_n_modes():
    field = travelling_band().isel(time=slice(0, 4))
    with pytest.raises(RankError, match="n_modes = 5") as info:
        HilbertSVD(n_modes=5).fit(field)
    assert info.value.parameter == "n_modes"


def test_a_run_too_short_for_the_transform_is_refused_naming_it():
    field = travelling_band().isel(time=slice(0, MIN_RUN_WINDOWS - 1))
    with pytest.raises(RankError, match="at least 3 consecutive windows") as info:
        HilbertSVD(n_modes=1, padding="exp").fit(field)
    assert info.value.parameter == "training_windows"
    assert "2000-01-01" in str(info.value)


def test_hilbert_dataset_round_trip_through_netcdf(tmp_path):
    from helpers.decompose_cases import grid_axes

    from precipmodes.io.netcdf import open_netcdf, write_netcdf

    field = travelling_band()
    model = HilbertSVD(n_modes=2).fit(field)
    X = field.stack(c=("lat", "lon")).transpose("c", "time")
    cells = xr.DataArray(X.values, dims=("cell", "time"), coords={
        "cell": np.arange(X.sizes["c"]), "lat": ("cell", X["lat"].values), "lon": ("cell", X["lon"].values),
        "time": field["time"].values})
    matrix_model = HilbertSVD(n_modes=2).fit(cells)
    lat, lon = grid_axes(cells)
    path = write_netcdf(matrix_model.to_dataset(lat, lon), tmp_path / "hilbert.nc", title="test")
    ds = open_netcdf(path)
    assert ds["amplitude"].dims == ("mode", "lat", "lon") and ds["phase"].attrs["units"] == "rad"
    again = HilbertSVD.from_dataset(ds, cells)
    np.testing.assert_allclose(again.components().values, matrix_model.components().values, atol=1e-12)
    np.testing.assert_allclose(again.scores().values, matrix_model.scores().values, rtol=1e-12)
    np.testing.assert_allclose(matrix_model.components().values.T.reshape(2, NY, NX),
                               model.components().values, atol=1e-12)  # a field and its matrix give one fit
    assert again.runs_ == matrix_model.runs_
