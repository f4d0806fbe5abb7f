"""Predictive skill: hold-out masks, skill on structured data and on noise, the rank-k optimum, clipping."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.decompose_cases import grid_axes, matrix, wrap

from precipmodes.decomposition.nmf import NMF
from precipmodes.decomposition.svd import SVD
from precipmodes.diagnostics.evaluate import climatology, evaluate, predict_climatology
from precipmodes.diagnostics.skill import clip_negative, holdout_mask, holdout_skill, rank_optimum_rmse
from precipmodes.errors import ParameterError

EPS = np.finfo(np.float64).eps


def split(X, n_train):
    return X.isel(time=slice(0, n_train)), X.isel(time=slice(n_train, None))


def test_holdout_mask_hides_the_fraction_of_observed_cells_in_each_window():
    observed = np.ones((50, 6), dtype=bool)
    observed[:10, 2] = False  # 40 observed cells in window 2
    observed[1:, 5] = False  # one observed cell: nothing hidden
    held = holdout_mask(observed, 0.2, seed=3)
    assert held.sum(axis=0).tolist() == [10, 10, 8, 10, 10, 0]
    assert not (held & ~observed).any()
    np.testing.assert_array_equal(held, holdout_mask(observed, 0.2, seed=3))
    assert not np.array_equal(held, holdout_mask(observed, 0.2, seed=4))
    with pytest.raises(ParameterError, match="holdout_fraction|fraction"):
        holdout_mask(observed, 1.0)


def test_clip_negative_counts_and_keeps_nan():
    clipped, n = clip_negative(np.array([[-1.0, 0.0, 2.0], [np.nan, -1e-9, 3.0]]))
    assert n == 2
    np.testing.assert_array_equal(clipped, [[0.0, 0.0, 2.0], [np.nan, 0.0, 3.0]])


def test_skill_positive_for_structured_data_and_near_zero_for_noise():
    X = matrix(200, 300, rank=4, noise=0.5, seed=11)
    train, test = split(X, 220)
    ds = evaluate(train, test, SVD(n_modes=4).fit(train), NMF(4, max_iter=500).fit(train), *grid_axes(X))
    assert float(ds["svd_skill"]) > 0.9 and float(ds["nmf_skill"]) > 0.9
    assert ds["holdout_cells"].values.tolist() == [40] * test.sizes["time"]
    assert float(ds["svd_holdout_rmse_overall"]) < float(ds["climatology_holdout_rmse_overall"])

    # pure noise, same distribution in every cell and window: no method can beat the climatology
    rng = np.random.default_rng(12)
    n_cells, n_windows, k = 200, 1200, 4
    noise = wrap(rng.gamma(2.0, 5.0, (n_cells, n_windows)))
    train, test = split(noise, 1000)
    ds = evaluate(train, test, SVD(n_modes=k).fit(train), NMF(k, max_iter=300).fit(train), *grid_axes(noise))
    # error terms of order 1/n: the climatology's (about 1000/12 training windows per month), the modes'
    # (k coefficients fitted to 160 visible cells), and the sampling error of the MSE ratio over the held cells
    held = int(ds["holdout_cells"].sum())
    bound = 3 * (12 / 1000 + k / 160 + np.sqrt(2 / held))
    for method in ("svd", "nmf"):
        assert abs(float(ds[f"{method}_skill"])) < bound, (method, float(ds[f"{method}_skill"]), bound)


def test_holdout_scores_exactly_on_a_small_case():
    # every window is 2 x a fixed pattern: a rank-1 model predicts the hidden cells exactly
    pattern = np.linspace(1.0, 2.0, 30)
    X = wrap(np.outer(pattern, np.arange(1.0, 41.0)))
    train, test = split(X, 30)
    svd = SVD(n_modes=1).fit(train)
    baseline = predict_climatology(climatology(train), test["time"])
    ds = holdout_skill(test, {"svd": lambda V: svd.inverse_transform(svd.transform(V)).values}, baseline, 0.3, 0)
    held = holdout_mask(~np.isnan(test.values), 0.3, 0)
    assert float(ds["svd_holdout_rmse_overall"]) < 1e3 * EPS * float(test.max())
    assert float(ds["svd_skill"]) == pytest.approx(1.0, abs=1e-12)
    expected = np.sqrt(((baseline - test.values)[held] ** 2).mean())
    assert float(ds["climatology_holdout_rmse_overall"]) == pytest.approx(expected, rel=1e-12)


def test_rank_optimum_is_the_truncated_svd_error_and_a_floor():
    X = matrix(120, 90, rank=6, noise=1.0, seed=13)
    train, test = split(X, 60)
    s = np.linalg.svd(test.values, compute_uv=False)
    k = 3
    expected = np.sqrt((s[k:] ** 2).sum() / test.size)
    assert rank_optimum_rmse(test, k) == pytest.approx(expected, rel=1e-10)
    for center in (False, True):
        svd = SVD(n_modes=k, center=center).fit(train)
        ds = evaluate(train, test, svd, NMF(k, max_iter=300).fit(train), *grid_axes(X), clip_negative=False)
        floor = float(ds["rank_optimum_rmse_overall"])
        assert floor <= float(ds["svd_rmse_overall"]) * (1 + 1e-12)
        assert floor <= float(ds["nmf_rmse_overall"]) * (1 + 1e-12)
    assert rank_optimum_rmse(test, 500) < 1e3 * EPS * float(test.max())  # rank capped: exact fit


def test_clip_negative_in_evaluate_counts_the_negative_reconstructions():
    rng = np.random.default_rng(14)
    values = rng.gamma(0.3, 4.0, (150, 120)) * (rng.random((150, 120)) < 0.5)  # intermittent rain: many zeros
    X = wrap(values)
    train, test = split(X, 80)
    svd = SVD(n_modes=5).fit(train)
    nmf = NMF(5, max_iter=200).fit(train)
    raw = evaluate(train, test, svd, nmf, *grid_axes(X), clip_negative=False)
    clipped = evaluate(train, test, svd, nmf, *grid_axes(X))
    unclipped = svd.inverse_transform(svd.transform(test)).values
    n_negative = int((unclipped < 0).sum())
    assert n_negative > 0
    assert int(clipped["svd_clipped_entries"]) == n_negative == int(raw["svd_clipped_entries"])
    assert clipped["svd_clipped_entries"].attrs["clip_negative"] == 1
    assert raw["svd_clipped_entries"].attrs["clip_negative"] == 0
    assert clipped["svd_clipped_entries"].attrs["fraction_of_entries"] == pytest.approx(n_negative / test.size)
    assert clipped["svd_clipped_entries"].attrs["fraction_below_minus_half_mm"] == pytest.approx(
        (unclipped < -0.5).sum() / test.size)
    assert float(raw["svd_reconstruction"].min()) < 0
    assert float(clipped["svd_reconstruction"].min()) >= 0
    # clipping at 0 moves every negative estimate of a non-negative amount closer: the RMSE cannot grow
    assert float(clipped["svd_rmse_overall"]) <= float(raw["svd_rmse_overall"])
    assert float(clipped["svd_skill"]) >= float(raw["svd_skill"])
