"""Evaluation: projections, RMSE, climatology, gap filling, truth matching, rank choice, E-OBS chain."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from helpers.decompose_cases import grid_axes, matrix

from precipmodes.config import section_defaults
from precipmodes.decomposition.nmf import NMF
from precipmodes.decomposition.projection import fill_gaps
from precipmodes.decomposition.svd import SVD
from precipmodes.diagnostics.evaluate import climatology, evaluate, match_truth
from precipmodes.diagnostics.rank import cross_validate_ranks
from precipmodes.errors import InputDataError
from precipmodes.grid import stack_land
from precipmodes.io.netcdf import open_netcdf, write_netcdf
from precipmodes.steps.decompose import evaluate_files, nmf_files, svd_files


def split(X, n_train):
    return X.isel(time=slice(0, n_train)), X.isel(time=slice(n_train, None))


def test_exact_low_rank_data_is_reconstructed_and_beats_climatology():
    X = matrix(200, 150, rank=4, noise=0.0)
    train, test = split(X, 100)
    svd = SVD(n_modes=4).fit(train)
    nmf = NMF(4, tol=1e-10, max_iter=3000).fit(train)
    ds = evaluate(train, test, svd, nmf, *grid_axes(X))
    assert float(ds["svd_rmse_overall"]) < 1e-8 * float(test.max())
    assert float(ds["nmf_rmse_overall"]) < 1e-3 * float(test.max())
    assert float(ds["climatology_rmse_overall"]) > 100 * float(ds["nmf_rmse_overall"])
    assert (ds["nmf_coefficients"] >= 0).all()
    assert ds["svd_reconstruction"].dims == ("time", "lat", "lon")
    np.testing.assert_array_equal(ds["time"].values, test["time"].values)
    assert ds["svd_pattern_correlation"].min() > 0.999999
    per_window = np.sqrt(((svd.inverse_transform(svd.transform(test)) - test) ** 2).mean("cell"))
    np.testing.assert_allclose(ds["svd_rmse"].values, per_window.values, rtol=1e-6, atol=1e-12)


def test_pinv_projection_can_go_negative_nnls_cannot():
    X = matrix(150, 120, rank=5, noise=2.0, seed=4)
    train, test = split(X, 80)
    nmf = NMF(5).fit(train)
    ds = evaluate(train, test, SVD(n_modes=5).fit(train), nmf, *grid_axes(X), nmf_projection="nnls")
    assert (ds["nmf_coefficients"] >= 0).all()
    assert "nmf_pinv_rmse" in ds and (ds["nmf_pinv_coefficients"] < 0).any()
    # NNLS is the least-squares optimum among non-negative activations, pinv the unconstrained one
    assert float(ds["nmf_pinv_rmse_overall"]) <= float(ds["nmf_rmse_overall"]) + 1e-12


def test_climatology_is_the_training_mean_per_calendar_month():
    X = matrix(20, 200, seed=2)
    clim = climatology(X)
    months = X["time"].dt.month.values
    np.testing.assert_allclose(clim.sel(month=3).values, X.values[:, months == 3].mean(axis=1))
    short = X.isel(time=slice(0, 10))  # January only: other months fall back to the overall mean
    np.testing.assert_allclose(climatology(short).sel(month=7).values, short.values.mean(axis=1))


@pytest.mark.parametrize("kind", ["svd", "nmf"])
def test_gap_filling_recovers_hidden_cells(kind):
    X = matrix(300, 90, rank=4, noise=0.0, seed=5)
    train, test = split(X, 60)
    model = SVD(n_modes=4).fit(train) if kind == "svd" else NMF(4, tol=1e-12, max_iter=5000).fit(train)
    hidden = np.random.default_rng(0).random(test.shape) < 0.4
    gappy = test.where(~xr.DataArray(hidden, dims=test.dims))
    filled = fill_gaps(model, gappy)
    error = np.abs(filled.values[hidden] - test.values[hidden]).max() / test.values.max()
    assert error < (1e-8 if kind == "svd" else 1e-2)
    assert filled.dims == ("cell", "time") and np.array_equal(filled["lat"], test["lat"])


def test_truth_matching_finds_a_permutation():
    rng = np.random.default_rng(0)
    truth = xr.DataArray(rng.random((4, 100)), dims=("pattern", "cell"), coords={"pattern": [1, 2, 3, 4]})
    perm = [2, 0, 3, 1]
    basis = xr.DataArray(truth.values[perm].T + 0.01 * rng.random((100, 4)), dims=("cell", "component"),
                         coords={"component": [1, 2, 3, 4]})
    ds = match_truth(basis, truth)
    assert ds["truth_match_component"].values.tolist() == [perm.index(p) + 1 for p in range(4)]
    assert (ds["truth_match_correlation"] > 0.99).all()


def test_empty_test_period_is_refused():
    X = matrix(50, 40)
    train, test = split(X, 40)
    with pytest.raises(InputDataError, match="experiment 'e1'.*no kept windows"):
        evaluate(train, test, SVD(n_modes=3).fit(train), NMF(3).fit(train), *grid_axes(X), label="experiment 'e1'")


def test_rank_selection_finds_the_true_rank():
    X = matrix(150, 80, rank=3, noise=0.3, seed=8)
    ds = cross_validate_ranks(X, [1, 3, 8], seed=0)
    assert ds["cv_rmse"].dims == ("method", "rank")
    assert ds.attrs["best_rank_svd"] == 3 and ds.attrs["best_rank_nmf"] == 3
    assert (ds["fit_rmse"].sel(rank=8) <= ds["fit_rmse"].sel(rank=3)).all()


def eobs_matrices(path):
    """E-OBS daily pr -> 72-hour totals inside each winter (no window spans a gap) -> land (cell, time)."""
    pr = xr.open_dataset(path)["pr"].load()
    starts = pr["time"].values[:-2]
    step = np.timedelta64(1, "D")
    ok = (pr["time"].values[2:] - starts) == 2 * step
    idx = np.flatnonzero(ok)[::3]
    totals = sum(pr.isel(time=idx + i).values for i in range(3))
    da = xr.DataArray(totals.astype(np.float32), dims=("time", "lat", "lon"),
                      coords={"time": starts[idx], "lat": pr["lat"].values, "lon": pr["lon"].values})
    land = xr.DataArray(np.isfinite(pr.values).all(axis=0), dims=("lat", "lon"), coords={"lat": da["lat"],
                                                                                     "lon": da["lon"]})
    cells = stack_land(da, land).transpose("cell", "time").rename("precip")
    cut = np.datetime64("1996-06-01")
    return cells.sel(time=cells["time"] < cut), cells.sel(time=cells["time"] >= cut), land


def test_eobs_through_svd_nmf_and_evaluate(shared_data, tmp_path):
    train, test, land = eobs_matrices(shared_data / "eobs_iberia_pr_djf_1982-2002.nc")
    assert 300 < train.sizes["cell"] <= 328 and train.sizes["time"] > 300 and test.sizes["time"] > 150
    mask = xr.Dataset({"land": land.astype(np.int8), "land_fraction": land.astype(np.float32)})
    paths = {name: tmp_path / f"{name}.nc" for name in ("train", "test", "land_mask")}
    write_netcdf(xr.Dataset({"precip": train}), paths["train"], step="test")
    write_netcdf(xr.Dataset({"precip": test}), paths["test"], step="test")
    write_netcdf(mask, paths["land_mask"], step="test")
    experiment = {"n_modes": 10}
    svd_files(train=paths["train"], land_mask=paths["land_mask"], output=tmp_path / "svd.nc",
              svd=section_defaults("svd", {"method": "gram"}), name="eobs", experiment=experiment)
    nmf_files(train=paths["train"], land_mask=paths["land_mask"], output=tmp_path / "nmf.nc",
              nmf=section_defaults("nmf", {"max_iter": 400, "tol": 1e-5}), name="eobs", experiment=experiment)
    evaluate_files(train=paths["train"], test=paths["test"], svd=tmp_path / "svd.nc", nmf=tmp_path / "nmf.nc",
                   land_mask=paths["land_mask"], output=tmp_path / "evaluation.nc",
                   evaluation=section_defaults("evaluation", {"nmf_projection": "nnls"}), name="eobs")
    svd = open_netcdf(tmp_path / "svd.nc")
    s = np.linalg.svd(train.values.astype(np.float64), compute_uv=False)
    np.testing.assert_allclose(svd["singular_values"].values, s[:10], rtol=1e-10)
    assert float(np.isnan(svd["spatial_modes"].isel(mode=0)).sum()) == float((~land).sum())
    nmf = open_netcdf(tmp_path / "nmf.nc")
    assert 0 < float(nmf["reconstruction_error"]) < 0.6
    ev = open_netcdf(tmp_path / "evaluation.nc")
    for method in ("svd", "nmf", "climatology"):
        assert np.isfinite(ev[f"{method}_rmse"]).all()
    # ten modes of winter rain beat the monthly climatology on unseen winters
    assert float(ev["svd_rmse_overall"]) < float(ev["climatology_rmse_overall"])
    assert float(ev["nmf_rmse_overall"]) < float(ev["climatology_rmse_overall"])
