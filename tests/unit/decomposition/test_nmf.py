"""NMF estimator: sklearn parity, HALS accuracy, invariants, bad input, NetCDF round trip; NNLS projection."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
from helpers.decompose_cases import grid_axes, matrix
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.decomposition import NMF as SkNMF

from precipmodes.decomposition.nmf import NMF
from precipmodes.errors import InputDataError, ParameterError
from precipmodes.io.netcdf import open_netcdf, write_netcdf
from precipmodes.linalg.nnls import nnls_gram


def sklearn_error(values, k, **kwargs):
    model = SkNMF(n_components=k, init="nndsvd", max_iter=5000, **kwargs)
    W = model.fit_transform(values)
    return model, W, np.linalg.norm(values - W @ model.components_) / np.linalg.norm(values)


def test_sklearn_backend_equals_sklearn():
    X = matrix(200, 60, rank=5)
    ours = NMF(5, solver="sklearn").fit(X)
    sk, W, error = sklearn_error(X.values, 5)
    np.testing.assert_allclose(ours.components().values @ ours.scores().values, W @ sk.components_,
                               rtol=1e-10, atol=1e-10)
    assert ours.reconstruction_error_ == pytest.approx(error, rel=1e-12)
    assert ours.n_iter_ == sk.n_iter_


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_hals_reaches_sklearn_error(dtype):
    X = matrix(300, 80, rank=6, noise=0.5, dtype=dtype)
    _, _, error = sklearn_error(X.values, 6)
    ours = NMF(6, tol=1e-7).fit(X)
    assert ours.reconstruction_error_ <= error * (1 + 2e-3)
    # the reported error comes from float64 Gram products of the exact (float32 or float64) factors:
    # ||X - WH||^2 = ||X||^2 - 2<C, H> + <D, HH^T> cancels by 1/error^2, so it is good to ~eps64 / error^2
    values = X.values.astype(np.float64)
    direct = np.linalg.norm(values - ours.basis_.values @ ours.activations_.values) / np.linalg.norm(values)
    eps = np.finfo(np.float64).eps
    np.testing.assert_allclose(direct, ours.reconstruction_error_, rtol=100 * eps / direct ** 2)


def test_regularised_hals_reaches_sklearn_objective():
    X = matrix(150, 50, rank=4, noise=0.5)
    opts = dict(alpha_W=0.01, alpha_H=0.01, l1_ratio=0.5)
    sk, W, error = sklearn_error(X.values, 4, tol=1e-6, **opts)
    m, n = X.shape
    H = sk.components_
    sk_objective = (0.5 * (error * np.linalg.norm(X.values)) ** 2
                    + 0.01 * n * (0.5 * W.sum() + 0.25 * (W ** 2).sum())
                    + 0.01 * m * (0.5 * H.sum() + 0.25 * (H ** 2).sum()))
    ours = NMF(4, tol=1e-9, **opts).fit(X)
    assert ours.objective_ <= sk_objective * (1 + 1e-3)
    plain = NMF(4, tol=1e-9).fit(X)
    assert (ours.basis_.values == 0).sum() > (plain.basis_.values == 0).sum()  # the L1 penalty makes the basis sparser


@settings(max_examples=12, deadline=None)
@given(n_cells=st.integers(10, 80), n_windows=st.integers(6, 40), k=st.integers(1, 5), seed=st.integers(0, 999),
       init=st.sampled_from(["nndsvd", "nndsvda", "random"]))
def test_invariants(n_cells, n_windows, k, seed, init):
    X = matrix(n_cells, n_windows, rank=3, noise=1.0, seed=seed)
    model = NMF(k, init=init, seed=seed, tol=1e-6, max_iter=200, cell_chunk=13).fit(X)
    errors = model.error_history_.values
    assert np.all(np.diff(errors) <= 1e-9)  # reconstruction error never increases
    W, H = model.basis_.values, model.activations_.values
    assert (W >= 0).all() and (H >= 0).all()
    peaks = W.max(axis=0)
    assert np.all((np.abs(peaks - 1) < 1e-12) | (peaks == 0))
    totals = H.sum(axis=1)
    assert np.all(np.diff(totals) <= 1e-9 * max(totals.max(), 1))
    again = NMF(k, init=init, seed=seed, tol=1e-6, max_iter=200, cell_chunk=13).fit(X)
    np.testing.assert_array_equal(again.basis_.values, W)
    np.testing.assert_array_equal(again.activations_.values, H)


def test_dask_chunks_give_the_numpy_result():
    X = matrix(400, 60, rank=4)
    eager = NMF(4, cell_chunk=100, max_iter=50).fit(X)
    lazy = NMF(4, max_iter=50).fit(X.chunk(cell=100))
    np.testing.assert_allclose(lazy.basis_, eager.basis_, rtol=1e-9, atol=1e-12)
    assert lazy.n_iter_ == eager.n_iter_


def test_in_memory_chunks_on_two_threads_give_the_one_thread_result_bit_for_bit():
    import dask
    from threadpoolctl import threadpool_limits

    from precipmodes.linalg.blocks import CellBlocks

    X = matrix(401, 60, rank=4)
    assert [s.stop - s.start for s in CellBlocks(X, 100).slices] == [80, 80, 81, 80, 80]  # 5 equal chunks
    fits = {}
    for workers in (1, 2):
        with threadpool_limits(1), dask.config.set(num_workers=workers):
            fits[workers] = NMF(4, cell_chunk=100, max_iter=50).fit(X)
    np.testing.assert_array_equal(fits[2].basis_.values, fits[1].basis_.values)
    np.testing.assert_array_equal(fits[2].activations_.values, fits[1].activations_.values)
    assert fits[2].n_iter_ == fits[1].n_iter_


def test_h_warmup_is_checked_and_zero_runs_the_accelerated_sweeps_from_the_first_iteration():
    X = matrix(120, 40, rank=3)
    for bad in (-1, 2.5, True):
        with pytest.raises(ParameterError, match="h_warmup"):
            NMF(3, h_warmup=bad).fit(X)
    warm, cold = NMF(3, max_iter=30).fit(X), NMF(3, max_iter=30, h_warmup=0).fit(X)
    # the first iteration differs (one H sweep against up to 1 + 0.5 (1 + 120 / 4) = 16), the start is the same
    assert warm.error_history_.values[0] != cold.error_history_.values[0]
    assert warm.to_dataset(*grid_axes(X)).attrs["h_warmup"] == 10


def test_negative_values_are_refused_naming_where_and_the_file():
    X = matrix(50, 20)
    values = X.values.copy()
    values[4, 2] = -1
    with pytest.raises(InputDataError, match=r"negative values in 1 cells .*windows .*results/e/train.nc"):
        NMF(3).fit(X.copy(data=values), source="results/e/train.nc")
    values[4, 2] = np.inf
    with pytest.raises(InputDataError, match="infinite"):
        NMF(3).fit(X.copy(data=values))
    values[4, 2] = np.nan  # missing: the hals solver fits around it, sklearn's cannot
    with pytest.raises(ParameterError, match="solver 'sklearn' cannot fit around them"):
        NMF(3, solver="sklearn").fit(X.copy(data=values))


def test_zero_cells_get_zero_basis(caplog):
    X = matrix(60, 30)
    values = X.values.copy()
    values[:5] = 0
    with caplog.at_level("INFO", logger="precipmodes"):
        model = NMF(3).fit(X.copy(data=values))
    assert "5 of 60 cells are zero" in caplog.text
    assert np.all(model.basis_.values[:5] == 0) and model.n_zero_cells_ == 5


def test_nnls_gram_equals_scipy_nnls():
    rng = np.random.default_rng(1)
    W = rng.random((200, 6))
    X = rng.random((200, 15)) - 0.3
    H = nnls_gram(W.T @ W, W.T @ X)
    for t in range(X.shape[1]):
        np.testing.assert_allclose(H[:, t], scipy.optimize.nnls(W, X[:, t])[0], atol=1e-9)


def test_transform_and_round_trip(tmp_path):
    X = matrix(120, 40, rank=3, noise=0.0)
    model = NMF(3, tol=1e-10, max_iter=3000).fit(X)
    nnls = model.transform(X, "nnls")
    pinv = model.transform(X, "pinv")
    assert (nnls.values >= 0).all()
    np.testing.assert_allclose(model.inverse_transform(nnls).values, X.values, atol=1e-3 * X.values.max())
    np.testing.assert_allclose(pinv.values, nnls.values, atol=1e-3 * nnls.values.max())  # exact data: both agree
    path = write_netcdf(model.to_dataset(*grid_axes(X)), tmp_path / "nmf.nc", step="test")
    ds = open_netcdf(path)
    assert ds["basis"].dims == ("component", "lat", "lon") and ds.attrs["solver"] == "hals"
    assert float(ds["basis"].max()) == 1.0
    again = NMF.from_dataset(ds, X)
    np.testing.assert_allclose(again.transform(X).values, nnls.values, rtol=1e-8, atol=1e-8)


def test_hals_stops_at_the_first_iteration_whose_window_decrease_is_within_tol():
    from precipmodes.linalg.hals import STOP_WINDOW

    X = matrix(120, 50, rank=4, noise=1.0, seed=2)
    tol = 1e-4
    model = NMF(6, tol=tol).fit(X)
    e = model.error_history_.values
    n = model.n_iter_
    assert model.converged_ and n == e.size > STOP_WINDOW
    window = e[:-STOP_WINDOW] - e[STOP_WINDOW:]  # decrease over the window ending at each iteration
    assert window[-1] <= tol * e[-1]
    assert (window[:-1] > tol * e[STOP_WINDOW:-1]).all()
