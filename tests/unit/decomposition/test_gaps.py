"""Gap-aware SVD (iterative EOF imputation), NMF (EM inside HALS), projection and evaluation with missing entries."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from helpers.decompose_cases import grid_axes, matrix
from hypothesis import given, settings
from hypothesis import strategies as st

from precipmodes import NMF, SVD
from precipmodes.config import section_defaults
from precipmodes.diagnostics.evaluate import evaluate
from precipmodes.errors import ConvergenceWarning
from precipmodes.io.netcdf import open_netcdf, write_netcdf
from precipmodes.steps.decompose import evaluate_files, nmf_files, svd_files

EPS = np.finfo(np.float64).eps
IGNORE_MAX_ITER = pytest.mark.filterwarnings("ignore::precipmodes.errors.ConvergenceWarning")


def hide(X, fraction, seed=0):
    hidden = np.random.default_rng(seed).random(X.shape) < fraction
    return X.where(~xr.DataArray(hidden, dims=X.dims)), hidden


def masked_error(model, gappy):
    values = gappy.values.astype(np.float64)
    observed = ~np.isnan(values)
    recon = model.basis_.values @ model.activations_.values
    return np.linalg.norm((values - recon)[observed]) / np.linalg.norm(values[observed])


@pytest.mark.parametrize("center", [False, True])
def test_svd_recovers_missing_entries_of_an_exact_low_rank_matrix(center):
    X = matrix(300, 90, rank=4, noise=0.0, seed=5)
    gappy, hidden = hide(X, 0.1)
    tol = 1e-10
    model = SVD(n_modes=4, center=center, area_weighting=center, gap_tol=tol, gap_max_iter=2000).fit(gappy)
    assert model.n_missing_entries_ == hidden.sum() and model.gap_iterations_ > 1 and model.converged_
    recon = model.inverse_transform(model.scores()).values
    # EM converges linearly: with a rate rho <= 0.99 the error left is <= rho / (1 - rho) * tol = 99 tol
    rms = np.sqrt(np.mean((recon[hidden] - X.values[hidden]) ** 2) / np.mean(X.values[hidden] ** 2))
    assert rms < 100 * tol
    complete = SVD(n_modes=4, center=center, area_weighting=center).fit(X)
    np.testing.assert_allclose(model.singular_values(), complete.singular_values(), rtol=100 * tol)
    ds = model.to_dataset(*grid_axes(X))
    assert ds.attrs["n_missing_entries"] == hidden.sum()
    assert ds.attrs["missing_fraction"] == pytest.approx(hidden.mean())
    assert "DINEOF" in ds.attrs["gap_method"] and ds.attrs["gap_iterations"] == model.gap_iterations_


def test_svd_imputation_logs_and_warns_when_it_runs_out_of_updates(caplog):
    X = matrix(200, 60, rank=4, noise=1.0, seed=1)
    gappy, _ = hide(X, 0.2)
    with caplog.at_level("INFO", logger="precipmodes"), pytest.warns(ConvergenceWarning, match="gap_max_iter = 2"):
        model = SVD(n_modes=4, gap_tol=0, gap_max_iter=2).fit(gappy)
    assert "imputation update 2, relative RMS change" in caplog.text
    assert model.gap_iterations_ == 2 and not model.converged_


@pytest.mark.parametrize("Model", [SVD, NMF])
def test_fully_observed_input_gives_the_dense_result_bit_for_bit(Model):
    """No missing entry: the dense path; a field whose only NaN are empty grid points gives the same bits."""
    X = matrix(120, 40, rank=3, noise=0.5, seed=3)
    dense = Model(3).fit(X)
    lat, lon = grid_axes(X)
    grid = np.full((X.sizes["time"], lat.size, lon.size), np.nan)
    grid[:, np.searchsorted(lat.values, X["lat"].values), np.searchsorted(lon.values, X["lon"].values)] = X.values.T
    field = xr.DataArray(grid, dims=("time", "lat", "lon"), coords={"time": X["time"], "lat": lat, "lon": lon})
    on_field = Model(3).fit(field)
    assert dense.n_missing_entries_ == 0 and dense.gap_method_ == "none" and on_field.n_missing_entries_ == 0
    np.testing.assert_array_equal(on_field.scores().values, dense.scores().values)
    comps = on_field.components().values.reshape(3, -1)
    np.testing.assert_array_equal(comps[:, ~np.isnan(comps[0])].T, dense.components().values)


@IGNORE_MAX_ITER
@settings(max_examples=12, deadline=None)
@given(n_cells=st.integers(12, 70), n_windows=st.integers(8, 40), k=st.integers(1, 4), seed=st.integers(0, 999),
       fraction=st.floats(0.01, 0.4), init=st.sampled_from(["nndsvd", "nndsvda", "random"]))
def test_gap_aware_nmf_never_increases_its_masked_objective(n_cells, n_windows, k, seed, fraction, init):
    X = matrix(n_cells, n_windows, rank=3, noise=1.0, seed=seed)
    gappy, hidden = hide(X, fraction, seed)
    observed = ~hidden
    if not (observed.any(axis=0).all() and observed.any(axis=1).all()):
        return  # a cell or window without data is refused (tested elsewhere)
    model = NMF(k, init=init, seed=seed, tol=1e-7, max_iter=150, cell_chunk=11).fit(gappy)
    errors = model.error_history_.values
    # each value comes from Gram products (float64): good to ~eps / error relative
    assert np.all(np.diff(errors) <= 100 * EPS / max(errors.min(), EPS) * errors[:-1])
    direct = masked_error(model, gappy)
    np.testing.assert_allclose(model.reconstruction_error_, direct, rtol=100 * EPS / max(direct, 1e-8) ** 2)
    assert (model.basis_.values >= 0).all() and (model.activations_.values >= 0).all()
    assert model.n_missing_entries_ == hidden.sum()


@IGNORE_MAX_ITER
def test_gap_aware_nmf_fills_missing_entries_better_than_cell_means():
    X = matrix(200, 80, rank=4, noise=0.0, seed=7)
    gappy, hidden = hide(X, 0.1, seed=2)
    model = NMF(4, tol=1e-8, max_iter=2000).fit(gappy)
    recon = model.inverse_transform(model.scores()).values
    cell_mean = np.nanmean(gappy.values, axis=1, keepdims=True) * np.ones(X.shape)
    error = np.sqrt(np.mean((recon[hidden] - X.values[hidden]) ** 2))
    baseline = np.sqrt(np.mean((cell_mean[hidden] - X.values[hidden]) ** 2))
    assert error < 0.05 * baseline
    ds = model.to_dataset(*grid_axes(X))
    assert ds.attrs["n_missing_entries"] == hidden.sum() and "EM" in ds.attrs["gap_method"]
    assert "observed entries only" in ds["reconstruction_error"].attrs["long_name"]


@IGNORE_MAX_ITER
def test_dask_chunks_give_the_numpy_result_with_gaps():
    X = matrix(300, 50, rank=4, noise=0.5, seed=4)
    gappy, _ = hide(X, 0.05)
    # 60 divides 300: the in-memory chunks (equal sizes, at most cell_chunk) are then the dask chunks
    for Model, kw in ((SVD, dict(n_modes=4, cell_chunk=60)), (NMF, dict(n_components=4, cell_chunk=60, max_iter=40))):
        eager = Model(**kw).fit(gappy)
        lazy = Model(**kw).fit(gappy.chunk(cell=60))
        np.testing.assert_allclose(lazy.components(), eager.components(), rtol=1e-9, atol=1e-12)
    lazy_tsqr = SVD(n_modes=4, method="tsqr").fit(gappy.chunk(cell=70))
    gram = SVD(n_modes=4, method="gram", cell_chunk=70).fit(gappy)
    np.testing.assert_allclose(lazy_tsqr.singular_values(), gram.singular_values(), rtol=1e-3)


@IGNORE_MAX_ITER
def test_evaluation_projects_gappy_windows_from_observed_cells_and_scores_observed_entries():
    X = matrix(200, 120, rank=4, noise=0.0, seed=6)
    train, test = X.isel(time=slice(0, 80)), X.isel(time=slice(80, None))
    svd = SVD(n_modes=4).fit(train)
    nmf = NMF(4, tol=1e-10, max_iter=3000).fit(train)
    gappy, hidden = hide(test, 0.3, seed=1)
    ds = evaluate(train, gappy, svd, nmf, *grid_axes(X))
    np.testing.assert_allclose(ds["observed_fraction"], 1 - hidden.mean(axis=0))
    assert ds.attrs["n_missing_test_entries"] == hidden.sum()
    # exact low-rank data: the observed cells determine the window, also its hidden cells
    assert float(ds["svd_rmse_overall"]) < 1e-8 * float(test.max())
    recon = svd.inverse_transform(svd.transform(gappy)).values
    assert np.abs(recon[hidden] - test.values[hidden]).max() < 1e-8 * float(test.max())
    # RMSE over observed entries only, per window
    clim = ds["climatology_rmse"].values
    values = gappy.values
    predicted = ds["climatology_reconstruction"]
    assert predicted.dims == ("time", "lat", "lon")
    t = 5
    obs = ~hidden[:, t]
    climatology_window = np.nanmean(train.values, axis=1)  # January-only training here
    manual = np.sqrt(np.mean((values[obs, t] - climatology_window[obs]) ** 2))
    assert clim[t] == pytest.approx(manual, rel=1e-12)
    assert (ds["nmf_coefficients"] >= 0).all()


@IGNORE_MAX_ITER
def test_gappy_matrices_through_the_file_steps(tmp_path):
    X = matrix(150, 100, rank=3, noise=0.3, seed=9).astype(np.float32)
    gappy, hidden = hide(X, 0.05, seed=3)
    train, test = gappy.isel(time=slice(0, 70)), gappy.isel(time=slice(70, None))
    lat, lon = grid_axes(X)
    land = xr.DataArray(np.zeros((lat.size, lon.size), dtype=np.int8), dims=("lat", "lon"),
                        coords={"lat": lat, "lon": lon})
    land.values[np.searchsorted(lat.values, X["lat"].values), np.searchsorted(lon.values, X["lon"].values)] = 1
    paths = {name: tmp_path / f"{name}.nc" for name in ("train", "test", "land_mask", "svd", "nmf", "evaluation")}
    write_netcdf(xr.Dataset({"precip": train}), paths["train"], step="test")
    write_netcdf(xr.Dataset({"precip": test}), paths["test"], step="test")
    write_netcdf(xr.Dataset({"land": land}), paths["land_mask"], step="test")
    experiment = {"n_modes": 3}
    svd_files(train=paths["train"], land_mask=paths["land_mask"], output=paths["svd"],
              svd=section_defaults("svd", {"gaps": {"max_iter": 200, "tol": 1e-6}}), name="g", experiment=experiment)
    nmf_files(train=paths["train"], land_mask=paths["land_mask"], output=paths["nmf"],
              nmf=section_defaults("nmf", {"max_iter": 300}), name="g", experiment=experiment)
    evaluate_files(train=paths["train"], test=paths["test"], svd=paths["svd"], nmf=paths["nmf"],
                   land_mask=paths["land_mask"], output=paths["evaluation"],
                   evaluation=section_defaults("evaluation", {"nmf_projection": "nnls"}), name="g")
    n_train_missing = int(np.isnan(train.values).sum())
    for name in ("svd", "nmf"):
        attrs = open_netcdf(paths[name]).attrs
        assert attrs["n_missing_entries"] == n_train_missing > 0
        assert attrs["missing_fraction"] == pytest.approx(n_train_missing / train.size)
        assert attrs["gap_iterations"] > 0
    ev = open_netcdf(paths["evaluation"])
    assert ev["observed_fraction"].attrs["units"] == "1"
    assert np.isfinite(ev["svd_rmse"]).all() and np.isfinite(ev["nmf_pattern_correlation"]).all()
    assert float(ev["svd_rmse_overall"]) < float(ev["climatology_rmse_overall"])


def eobs_field(path):
    """E-OBS daily pr -> 72-hour totals of consecutive days as a (time, lat, lon) field, NaN where a day is missing."""
    pr = xr.open_dataset(path)["pr"].load()
    starts = pr["time"].values[:-2]
    idx = np.flatnonzero((pr["time"].values[2:] - starts) == np.timedelta64(2, "D"))[::3]
    totals = sum(pr.isel(time=idx + i).values for i in range(3))
    field = xr.DataArray(totals.astype(np.float32), dims=("time", "lat", "lon"),
                         coords={"time": starts[idx], "lat": pr["lat"].values, "lon": pr["lon"].values})
    return field, np.isfinite(pr.values).all(axis=0)


@IGNORE_MAX_ITER
def test_eobs_with_its_intermittent_cells_and_hidden_entries(shared_data):
    """The real E-OBS field (4 edge cells missing on some days) plus 2 % hidden entries whose values we know."""
    field, always = eobs_field(shared_data / "eobs_iberia_pr_djf_1982-2002.nc")
    gappy = field.where(~xr.DataArray(np.random.default_rng(0).random(field.shape) < 0.02, dims=field.dims))
    hidden = np.isnan(gappy.values) & ~np.isnan(field.values)
    model = SVD(n_modes=10).fit(gappy)
    sea = np.isnan(gappy.values).all(axis=0)
    assert model.converged_ and model.n_missing_entries_ == int(np.isnan(gappy.values[:, ~sea]).sum())
    # the leading modes of the gappy fit match the fit of the always-observed cells (measured |cos| 1.0000, 0.9999,
    # 0.9989 for modes 1-3, >= 0.986 for all 10)
    complete = SVD(n_modes=10).fit(field.where(xr.DataArray(always, dims=("lat", "lon"))))
    a, b = model.components().values.reshape(10, -1), complete.components().values.reshape(10, -1)
    both = ~np.isnan(b[0])
    cos = np.abs((a[:, both] * b[:, both]).sum(1)) / np.linalg.norm(a[:, both], axis=1) / np.linalg.norm(b[:, both], axis=1)
    assert (cos[:3] > 0.99).all()
    # the hidden entries' reconstruction beats the climatology (each cell's mean over its observed windows);
    # measured RMSE on the 3,774 hidden entries: SVD 3.87 mm, NMF 4.03 mm, climatology 10.81 mm
    recon = model.inverse_transform(model.scores()).values
    truth = field.values[hidden]
    climatology = np.broadcast_to(np.nanmean(gappy.values, axis=0), field.shape)[hidden]
    assert np.sqrt(np.mean((recon[hidden] - truth) ** 2)) < 0.5 * np.sqrt(np.mean((climatology - truth) ** 2))
    nmf = NMF(10, max_iter=300, tol=1e-5).fit(gappy)
    nmf_recon = nmf.inverse_transform(nmf.scores()).values
    assert np.sqrt(np.mean((nmf_recon[hidden] - truth) ** 2)) < 0.5 * np.sqrt(np.mean((climatology - truth) ** 2))


def test_svd_imputation_stops_when_the_observed_residual_stops_falling(caplog):
    # more modes than the data's rank: the imputed entries drift along noise modes for many slow EM
    # updates while the fit of the observed entries has settled
    X = matrix(300, 100, rank=3, noise=1.0, seed=4)
    gappy, _ = hide(X, 0.02)
    with caplog.at_level("INFO", logger="precipmodes"):
        model = SVD(n_modes=6, gap_tol=1e-3, gap_max_iter=500).fit(gappy)
    assert model.converged_ and 20 < model.gap_iterations_ < 500
    assert "observed entries' residual fell by at most gap_tol" in caplog.text
    last = [line for line in caplog.text.splitlines() if "relative RMS change of the missing entries" in line][-1]
    assert float(last.split("missing entries ")[1].split(",")[0]) >= 1e-3  # the change rule had not fired
