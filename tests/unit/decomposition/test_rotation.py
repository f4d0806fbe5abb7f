"""Rotated SVD modes: xeofs' EOFRotator on the same matrix, exact simple structure, invariants, errors, svd.nc."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.decompose_cases import grid_axes, matrix

from precipmodes.config import section_defaults
from precipmodes.decomposition.rotation import promax, rotate, varimax
from precipmodes.decomposition.svd import SVD
from precipmodes.errors import ConfigError, ParameterError
from precipmodes.io.netcdf import open_netcdf, write_netcdf
from precipmodes.steps.decompose import svd_files

EPS = np.finfo(np.float64).eps


def rotated(model, method, k, **kwargs):
    return rotate(model.spatial_modes_, model.singular_values_, model.temporal_coefficients_, model.n_windows_,
                  model.total_sum_of_squares_, method=method, n_modes=k, **kwargs)


def raw_varimax_criterion(L):
    """Kaiser's varimax criterion of loadings ``L (cell, k)``: sum over columns of the variance of L^2."""
    return float(((L ** 2) ** 2).mean(axis=0).sum() - ((L ** 2).mean(axis=0) ** 2).sum())


@pytest.mark.parametrize("method, power", [("varimax", 1), ("promax", 4)])
def test_matches_xeofs_eof_rotator(method, power):
    xe = pytest.importorskip("xeofs")
    X = matrix(200, 150, rank=6, noise=0.5, seed=1)
    k = 5
    model = SVD(n_modes=8, center=True).fit(X)
    ours = rotated(model, method, k, power=power)
    eof = xe.single.EOF(n_modes=8, center=True, use_coslat=False).fit(X.transpose("time", "cell"), dim="time")
    theirs = xe.single.EOFRotator(n_modes=k, power=power).fit(eof)
    components = theirs.components().transpose("cell", "mode").values
    scores = theirs.scores().transpose("mode", "time").values
    patterns = ours["rotated_modes"].values
    # same modes in the same (variance) order; only the sign conventions differ
    sign = np.sign(np.diag(patterns.T @ components))
    # both run the same iteration to the same rtol: differences are rounding, amplified per iteration
    tol = 50 * EPS * np.sqrt(X.sizes["cell"]) * ours.attrs["iterations"]
    np.testing.assert_allclose(patterns, components * sign, rtol=0, atol=tol)
    np.testing.assert_allclose(ours["rotated_coefficients"].values, scores * sign[:, None], rtol=0,
                               atol=tol * np.abs(scores).max())
    np.testing.assert_allclose(ours["rotated_explained_variance_ratio"].values,
                               theirs.explained_variance_ratio().values, rtol=tol)
    if method == "promax":
        phi = theirs.data["phi_matrix"].values
        order = theirs.data["idx_modes_sorted"].values
        np.testing.assert_allclose(np.abs(ours["factor_correlation"].values), np.abs(phi[np.ix_(order, order)]),
                                   atol=tol)


def test_varimax_recovers_a_rotated_simple_structure_exactly():
    # three groups of cells, each loading on one factor only; mix them by an orthogonal rotation
    S = np.zeros((30, 3))
    for j in range(3):
        S[10 * j:10 * (j + 1), j] = np.linspace(1.0, 2.0, 10)
    Q = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0]
    for kaiser in (True, False):
        out, R, iterations, converged = varimax(S @ Q, kaiser=kaiser, rtol=1e-14)
        assert converged
        np.testing.assert_allclose(R.T @ R, np.eye(3), atol=10 * EPS * 3)
        # up to order and sign, each column is one group again (zeros elsewhere)
        match = np.abs(out.T @ S) / (np.linalg.norm(out, axis=0)[:, None] * np.linalg.norm(S, axis=0))
        np.testing.assert_allclose(np.sort(match.max(axis=1)), 1.0, atol=1e-10)


def test_invariants_of_rotated_modes():
    X = matrix(180, 120, rank=6, noise=1.0, seed=5)
    model = SVD(n_modes=8).fit(X)
    k = 6
    U = model.spatial_modes_.values[:, :k]
    SVt = model.temporal_coefficients_.values[:k]
    for method in ("varimax", "promax"):
        ds = rotated(model, method, k)
        P, C = ds["rotated_modes"].values, ds["rotated_coefficients"].values
        # rotation only mixes the k modes: the rank-k reconstruction is unchanged
        np.testing.assert_allclose(P @ C, U @ SVt, atol=1e3 * EPS * np.abs(U @ SVt).max())
        np.testing.assert_allclose(np.linalg.norm(P, axis=0), 1.0, atol=100 * EPS)
        ratio = ds["rotated_explained_variance_ratio"].values
        assert (np.diff(ratio) <= 0).all()  # ordered by rotated variance
        assert (P.sum(axis=0) > 0).all()  # the sign convention of the unrotated modes
        phi = ds["factor_correlation"].values
        np.testing.assert_allclose(np.diag(phi), 1.0, atol=1e3 * EPS)
        np.testing.assert_allclose(phi, phi.T, atol=1e3 * EPS)
        R = ds["rotation_matrix"].values
        L = U * (model.singular_values_.values[:k] / np.sqrt(model.n_windows_))
        np.testing.assert_allclose(L @ R, P * np.sqrt(ratio * model.total_sum_of_squares_ / model.n_windows_),
                                   atol=1e3 * EPS * np.abs(L).max())
    varimax_ds = rotated(model, "varimax", k)
    np.testing.assert_allclose(varimax_ds["factor_correlation"].values, np.eye(k), atol=1e3 * EPS)
    unrotated = model.explained_variance_ratio().values[:k].sum()
    assert varimax_ds["rotated_explained_variance_ratio"].values.sum() == pytest.approx(unrotated, rel=1e-12)


def test_kaiser_normalisation_changes_the_rotation_and_raw_varimax_maximises_the_raw_criterion():
    X = matrix(180, 120, rank=6, noise=1.0, seed=5)
    model = SVD(n_modes=6).fit(X)
    L = model.spatial_modes_.values * (model.singular_values_.values / np.sqrt(model.n_windows_))
    raw, _, _, _ = varimax(L, kaiser=False, rtol=1e-12)
    normalised, _, _, _ = varimax(L, kaiser=True, rtol=1e-12)
    assert raw_varimax_criterion(raw) >= raw_varimax_criterion(normalised) - 1e-12 * raw_varimax_criterion(raw)
    assert raw_varimax_criterion(raw) > raw_varimax_criterion(L)
    assert not np.allclose(np.abs(raw), np.abs(normalised), atol=1e-3)


def test_parameter_errors_and_config_key_in_the_message(tmp_path):
    X = matrix(60, 40, seed=2)
    model = SVD(n_modes=4).fit(X)
    with pytest.raises(ParameterError, match="2 <= n_modes <= the 4"):
        rotated(model, "varimax", 5)
    with pytest.raises(ParameterError, match="power"):
        promax(np.eye(3), power=1)
    lat, lon = grid_axes(X)
    train = tmp_path / "train.nc"
    write_netcdf(X.to_dataset(name="precip"), train, step="test")
    mask = (X.isel(time=0) * 0 + 1).rename("land")
    from precipmodes.grid import unstack_cells
    land = unstack_cells(mask, lat, lon).fillna(0).astype(np.int8)
    write_netcdf(land.to_dataset(name="land"), tmp_path / "land.nc", step="test")
    with pytest.raises(ConfigError, match=r"svd.rotation.n_modes: .*the 4 SVD modes"):
        svd_files(train=train, land_mask=tmp_path / "land.nc", output=tmp_path / "svd.nc",
                  svd=section_defaults("svd", {"rotation": {"method": "varimax", "n_modes": 10}}), name="e1",
                  experiment={"n_modes": 4})
    path = svd_files(train=train, land_mask=tmp_path / "land.nc", output=tmp_path / "svd.nc",
                     svd=section_defaults("svd", {"rotation": {"method": "promax", "n_modes": 3, "power": 4,
                                                               "kaiser": True}}),
                     name="e1", experiment={"n_modes": 4})
    ds = open_netcdf(path)
    assert ds["rotated_modes"].dims == ("rotated_mode", "lat", "lon")
    assert ds["rotated_coefficients"].dims == ("rotated_mode", "time")
    assert ds["rotation_matrix"].dims == ("input_mode", "rotated_mode")
    for name in ("rotated_modes", "rotated_coefficients", "rotated_explained_variance_ratio", "rotation_matrix",
                 "factor_correlation"):
        assert ds[name].attrs["units"] and ds[name].attrs["long_name"]
    assert ds.attrs["rotation_method"] == "promax" and ds.attrs["rotation_kaiser"] == 1
    # the same cells are NaN (off the matrix) as in the unrotated modes
    np.testing.assert_array_equal(np.isnan(ds["rotated_modes"].isel(rotated_mode=0)),
                                  np.isnan(ds["spatial_modes"].isel(mode=0)))
