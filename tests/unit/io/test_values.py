"""block_stats: the numbers the value checks judge, exact on small cases and equal to their definition on any
block (NaN, +-inf, negatives, bounds per step)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from precipmodes.io.blockreader import observed_steps
from precipmodes.io.sources.values import block_stats


def definition(block: np.ndarray, limit: np.ndarray | None) -> np.ndarray:
    finite = block[np.isfinite(block)]
    above = 0 if limit is None else int(np.sum(np.isfinite(block) & (block > limit[:, None, None])))
    return np.array([finite.min() if finite.size else np.nan, np.isinf(block).sum(), above])


def test_exact_small_cases():
    block = np.array([[[1.0, np.nan], [-0.5, 7.0]], [[np.nan, np.nan], [2.0, 3.0]]], np.float32)
    np.testing.assert_array_equal(block_stats(block, None), [-0.5, 0, 0])
    np.testing.assert_array_equal(block_stats(block, np.float32([5.0, 2.5])), [-0.5, 0, 2])  # 7 > 5, 3 > 2.5
    block[1, 0, 0] = np.inf
    block[0, 0, 1] = -np.inf
    np.testing.assert_array_equal(block_stats(block, np.float32([5.0, 2.5])), [-0.5, 2, 2])  # inf is not "above"
    np.testing.assert_array_equal(block_stats(np.full((2, 1, 1), np.nan, np.float32), None), [np.nan, 0, 0])
    np.testing.assert_array_equal(block_stats(np.zeros((0, 2, 2), np.float32), None), [np.nan, 0, 0])


values = st.one_of(st.floats(-5, 50, width=32), st.just(np.nan), st.just(np.inf), st.just(-np.inf))


@settings(max_examples=300, deadline=None)
@given(block=arrays(np.float32, st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(1, 3)), elements=values),
       bound=st.one_of(st.none(), st.floats(-1, 40, width=32)))
def test_block_stats_equal_their_definition(block, bound):
    limit = None if bound is None else np.linspace(bound, bound + 3, block.shape[0]).astype(np.float32)
    np.testing.assert_array_equal(block_stats(block, limit), definition(block, limit))
    np.testing.assert_array_equal(observed_steps(block), (~np.isnan(block)).sum(axis=0))
