"""SVD estimator: exactness against numpy, invariants, options, bad input, NetCDF round trip."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from helpers.decompose_cases import grid_axes, matrix, wrap
from hypothesis import given, settings
from hypothesis import strategies as st

from precipmodes.decomposition.svd import SVD
from precipmodes.errors import InputDataError
from precipmodes.io.netcdf import open_netcdf, write_netcdf
from precipmodes.linalg.gram import LANCZOS_MAX_FRACTION, leading_eigenvectors, sign_convention


def numpy_svd(values, k):
    U, s, Vt = np.linalg.svd(values, full_matrices=False)
    flip = sign_convention(U[:, :k])
    return U[:, :k] * flip, s, Vt[:k] * flip[:, None]


@pytest.mark.parametrize("method", ["gram", "tsqr", "randomized"])
def test_matches_numpy(method):
    X = matrix(400, 90, rank=8, noise=0.5)
    k = 8
    model = SVD(n_modes=k, method=method, cell_chunk=128, power_iterations=6).fit(X)
    U, s, Vt = numpy_svd(X.values, k)
    np.testing.assert_allclose(model.singular_values(), s[:k], rtol=1e-10)
    np.testing.assert_allclose(model.components(), U, atol=1e-8)  # same signs: the convention is deterministic
    np.testing.assert_allclose(model.scores(), s[:k, None] * Vt, rtol=1e-8, atol=1e-8 * s[0])
    assert model.total_sum_of_squares_ == pytest.approx(np.sum(s ** 2), rel=1e-12)
    angles = scipy.linalg.subspace_angles(model.components().values, U)
    assert angles.max() < 1e-8


@pytest.mark.parametrize("center, area_weighting, chunk", [(False, False, 400), (True, True, 128)])
def test_float32_gram_is_within_its_rounding_bound_of_the_exact_svd(center, area_weighting, chunk):
    """A float32 Gram matrix G + E, ||E||_2 <= ||E||_F <= g ||Xt||_F^2 with g = m eps32 (m cells summed per
    chunk, the worst case of a float32 sum of products), turns the k-mode subspace by at most
    sin(theta) <= ||E|| / (l_k - l_k+1) (Davis-Kahan, l = s^2); the float64 Rayleigh-Ritz step then puts
    each l_i within l_1 sin^2(theta) of the exact one. The total is the float64 pass's, exact to rounding."""
    X = matrix(400, 90, rank=8, noise=0.5).astype(np.float32)
    k = 8
    model = SVD(n_modes=k, center=center, area_weighting=area_weighting, cell_chunk=chunk,
                gram_dtype="float32").fit(X)
    Xt = X.values.astype(np.float64)
    if center:
        Xt = Xt - Xt.mean(axis=1, keepdims=True)
    if area_weighting:
        Xt = Xt * np.sqrt(np.cos(np.deg2rad(X["lat"].values)))[:, None]
    U, s, _ = numpy_svd(Xt, k)
    lam = s ** 2
    sin_theta = chunk * np.finfo(np.float32).eps * lam.sum() / (lam[k - 1] - lam[k])
    assert sin_theta < 0.1  # the bound says something on this matrix
    angles = scipy.linalg.subspace_angles(model.components().values, U)
    assert np.sin(angles.max()) <= sin_theta
    np.testing.assert_allclose(model.singular_values() ** 2, lam[:k], rtol=0, atol=lam[0] * sin_theta ** 2)
    assert model.total_sum_of_squares_ == pytest.approx(lam.sum(), rel=1e-12)
    exact = SVD(n_modes=k, center=center, area_weighting=area_weighting, cell_chunk=chunk).fit(X)
    assert np.abs(model.singular_values() - exact.singular_values()).max() > 0  # the float32 route did run


def test_center_and_area_weighting_match_numpy_on_the_transformed_matrix():
    X = matrix(250, 70, seed=3)
    model = SVD(n_modes=5, center=True, area_weighting=True).fit(X)
    w = np.sqrt(np.cos(np.deg2rad(X["lat"].values)))[:, None]
    Xt = (X.values - X.values.mean(axis=1, keepdims=True)) * w
    U, s, _ = numpy_svd(Xt, 5)
    np.testing.assert_allclose(model.singular_values(), s[:5], rtol=1e-10)
    np.testing.assert_allclose(model.components(), U, atol=1e-9)
    ds = model.to_dataset(*grid_axes(X))
    np.testing.assert_allclose(ds["explained_variance_ratio"], s[:5] ** 2 / np.sum(s ** 2), rtol=1e-10)
    # transform/inverse_transform respect centring and weighting: full rank reconstructs exactly
    full = SVD(n_modes=70, center=True, area_weighting=True).fit(X)
    back = full.inverse_transform(full.transform(X))
    np.testing.assert_allclose(back.values, X.values, atol=1e-8)
    assert back.dims == ("cell", "time") and np.array_equal(back["lat"], X["lat"])


@settings(max_examples=15, deadline=None)
@given(n_cells=st.integers(20, 120), n_windows=st.integers(8, 60), seed=st.integers(0, 10_000),
       float32=st.booleans())
def test_modes_orthonormal_and_ordered(n_cells, n_windows, seed, float32):
    X = matrix(n_cells, n_windows, rank=4, noise=1.0, seed=seed, dtype=np.float32 if float32 else np.float64)
    k = min(5, n_cells, n_windows)
    model = SVD(n_modes=k, cell_chunk=17).fit(X)
    U = model.components().values
    np.testing.assert_allclose(U.T @ U, np.eye(k), atol=1e-10)
    assert np.all(np.diff(model.singular_values()) <= 0)
    assert np.all(sign_convention(U) == 1)


def test_dask_chunks_give_the_numpy_result():
    X = matrix(500, 80)
    eager = SVD(n_modes=6).fit(X)
    lazy = SVD(n_modes=6).fit(X.chunk(cell=77))
    np.testing.assert_allclose(lazy.singular_values(), eager.singular_values(), rtol=1e-12)
    np.testing.assert_allclose(lazy.components(), eager.components(), atol=1e-12)


def test_all_zero_cells_are_left_out_with_zero_loading(caplog):
    X = matrix(200, 60)
    values = X.values.copy()
    values[[3, 50, 51]] = 0
    Xz = X.copy(data=values)
    with caplog.at_level("INFO", logger="precipmodes"):
        model = SVD(n_modes=4).fit(Xz)
    assert "3 of 200 cells are zero" in caplog.text
    assert np.all(model.components().values[[3, 50, 51]] == 0)
    U, s, _ = numpy_svd(values, 4)
    np.testing.assert_allclose(model.singular_values(), s[:4], rtol=1e-10)
    assert model.to_dataset(*grid_axes(Xz)).attrs["n_zero_cells"] == 3


def test_too_many_modes_names_both_sizes():
    X = matrix(30, 12)
    with pytest.raises(InputDataError, match=r"n_modes = 13 .*min\(30, 12\)"):
        SVD(n_modes=13).fit(X, label="experiment 'seed'")


def test_infinite_values_and_empty_cells_are_refused_naming_cells_windows_and_file():
    # NaN entries are missing data (gap-aware fit); infinities and cells without any data are errors
    X = matrix(40, 20)
    values = X.values.copy()
    values[7, 4] = np.inf
    with pytest.raises(InputDataError, match=r"infinite values in 1 cells \(first: lat=.* and 1 windows .*results/x/train.nc"):
        SVD(n_modes=3).fit(X.copy(data=values), source="results/x/train.nc")
    values[7] = np.nan
    with pytest.raises(InputDataError, match=r"no data at all in 1 cells .*results/x/train.nc"):
        SVD(n_modes=3).fit(X.copy(data=values), source="results/x/train.nc")
    values = X.values.copy()
    values[:, 3] = np.nan
    with pytest.raises(InputDataError, match=r"no data at all in 1 windows"):
        SVD(n_modes=3).fit(X.copy(data=values))


def test_north_errors_and_separation():
    X = matrix(300, 100, rank=3, noise=1.0)
    ds = SVD(n_modes=5).fit(X).to_dataset(*grid_axes(X))
    eig = ds["singular_values"].values ** 2 / 100
    np.testing.assert_allclose(ds["north_error"], eig * np.sqrt(2 / 100))
    # three strong modes well apart, then noise modes close together
    assert ds["separated"].values[0] == 1
    assert ds["separated"].values[4] == 0


def test_dataset_round_trip_through_netcdf(tmp_path):
    X = matrix(150, 40).astype(np.float32)
    model = SVD(n_modes=4, center=True).fit(X)
    lat, lon = grid_axes(X)
    path = write_netcdf(model.to_dataset(lat, lon), tmp_path / "svd.nc", step="test")
    ds = open_netcdf(path)
    assert set(ds["spatial_modes"].dims) == {"mode", "lat", "lon"}
    assert ds["mode"].values.tolist() == [1, 2, 3, 4]
    assert np.isnan(ds["spatial_modes"].values).any()  # cells off the matrix are NaN on the grid
    again = SVD.from_dataset(ds, X)
    np.testing.assert_allclose(again.transform(X).values, model.transform(X).values, rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(ds["temporal_coefficients"].values, model.transform(X).values, rtol=1e-6, atol=1e-4)


def test_lanczos_route_gives_the_eigh_route_modes():
    X = matrix(400, 300, rank=6, noise=1.0, seed=3).values
    G = X.T @ X
    p = 6
    assert p <= LANCZOS_MAX_FRACTION * G.shape[0]  # the Lanczos route
    V = leading_eigenvectors(G.copy(), p)
    evals, V_ref = scipy.linalg.eigh(G, subset_by_index=[G.shape[0] - p, G.shape[0] - 1])
    # each vector is the eigh one up to sign: the gaps of a rank-6 + noise spectrum are wide
    np.testing.assert_allclose(np.abs(V.T @ V_ref[:, ::-1]), np.eye(p), atol=1e-8)
    s = SVD(n_modes=5).fit(wrap(X)).singular_values().values
    s_ref = np.linalg.svd(X, compute_uv=False)[:5]
    np.testing.assert_allclose(s, s_ref, rtol=50 * np.finfo(float).eps * np.sqrt(X.size))


def test_dask_passes_run_with_one_blas_thread_per_task():
    import dask
    import dask.array as da
    from threadpoolctl import threadpool_info

    from precipmodes.linalg.blocks import CellBlocks

    def blas_threads(block):
        return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")

    X = matrix(60, 10)
    blocks = CellBlocks(X.copy(data=da.from_array(X.values, chunks=(20, -1))))
    outside = blas_threads(None)
    with dask.config.set(scheduler="threads", num_workers=2):
        assert blocks.map(blas_threads) == [1, 1, 1]
    with dask.config.set(scheduler="synchronous"):
        assert blocks.map(blas_threads) == [outside] * 3
    assert blas_threads(None) == outside
