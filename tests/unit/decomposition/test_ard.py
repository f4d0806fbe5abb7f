"""ARD-NMF: known ranks found from k_max = 20, gaps, nmf.nc round trip, bad input (benchmarks/bench_ard.py: 12,700 x 2,200)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.decompose_cases import grid_axes, wrap

from precipmodes.decomposition.nmf import NMF
from precipmodes.errors import ParameterError
from precipmodes.linalg.ard import PRUNE_THRESHOLD

K_MAX = 20


def low_rank(n_cells: int, n_windows: int, rank: int, noise: float = 0.1, seed: int = 0):
    """Rain-like ``W H`` of a known rank (gamma factors) plus Gaussian noise of ``noise`` times its
    standard deviation, clipped at 0."""
    rng = np.random.default_rng(seed)
    V = rng.gamma(0.6, 1.0, (n_cells, rank)) @ rng.gamma(0.6, 10.0, (rank, n_windows))
    return wrap(np.maximum(V + noise * V.std() * rng.standard_normal(V.shape), 0))


@pytest.mark.parametrize("rank", [3, 6, 10])
def test_ard_from_k_max_20_keeps_the_true_rank(rank):
    X = low_rank(300, 120, rank)
    model = NMF(n_components=K_MAX, ard=True, max_iter=3000).fit(X)
    assert model.converged_
    assert abs(model.n_components_ - rank) <= 1
    assert model.components().sizes["component"] == model.n_components_
    assert model.scores().sizes["component"] == model.n_components_
    relevance = model.relevance_.values
    assert relevance.size == K_MAX and (np.diff(relevance) <= 0).all()
    assert (relevance[model.n_components_:] < PRUNE_THRESHOLD).all()
    assert relevance[model.n_components_ - 1] > 10  # the kept ones stand far above the switched-off ones
    plain = NMF(n_components=rank, max_iter=3000).fit(X)  # the pruned fit is as good as a fit at the true rank
    assert model.reconstruction_error_ <= plain.reconstruction_error_ * 1.02


def test_ard_is_gap_aware():
    X = low_rank(300, 120, 6, seed=1)
    gappy = X.where(np.random.default_rng(4).random(X.shape) > 0.1)
    model = NMF(n_components=K_MAX, ard=True, max_iter=3000).fit(gappy)
    assert model.n_missing_entries_ == int(gappy.isnull().sum()) and model.gap_method_.startswith("EM")
    assert abs(model.n_components_ - 6) <= 1


def test_relevance_and_kept_count_travel_in_the_dataset():
    X = low_rank(300, 120, 3, seed=2)
    model = NMF(n_components=K_MAX, ard=True, max_iter=3000).fit(X)
    lat, lon = grid_axes(X)
    ds = model.to_dataset(lat, lon)
    assert ds.attrs["ard"] == 1 and ds.attrs["n_components"] == model.n_components_ == ds.sizes["component"]
    assert ds.attrs["n_components_max"] == K_MAX and ds.attrs["ard_threshold"] == PRUNE_THRESHOLD
    np.testing.assert_array_equal(ds["relevance"].values, model.relevance_.values)
    again = NMF.from_dataset(ds, X)
    assert again.ard and again.n_components == K_MAX and again.n_components_ == model.n_components_
    np.testing.assert_array_equal(again.relevance_.values, model.relevance_.values)
    plain = NMF(n_components=3, max_iter=200).fit(X)
    assert plain.n_components_ == 3 and plain.relevance_ is None and "relevance" not in plain.to_dataset(lat, lon)


def test_ard_with_one_component_is_refused_naming_n_components():
    with pytest.raises(ParameterError, match="n_components = 1") as info:
        NMF(n_components=1, ard=True).fit(low_rank(50, 30, 2))
    assert info.value.parameter == "n_components"


def test_ard_with_the_sklearn_solver_is_refused():
    with pytest.raises(ParameterError, match="solver 'hals'") as info:
        NMF(n_components=5, ard=True, solver="sklearn").fit(low_rank(50, 30, 2))
    assert info.value.parameter == "ard"


def test_pruning_every_component_is_refused_naming_the_threshold():
    with pytest.raises(ParameterError, match="all 5 components were pruned") as info:
        NMF(n_components=5, ard=True, ard_threshold=1e12, max_iter=500).fit(low_rank(80, 40, 2))
    assert info.value.parameter == "ard_threshold"
