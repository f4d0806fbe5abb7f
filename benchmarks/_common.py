"""Shared helpers of the decomposition benchmarks: their command line, a realistic synthetic matrix, timers."""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import xarray as xr


def matrix_parser(description: str | None) -> argparse.ArgumentParser:
    """The command line of a benchmark on a synthetic ``--cells`` x ``--windows`` matrix (default the seed's
    12,700 x 2,200); ``description``: the benchmark's docstring (shown by ``--help``). Add its own options."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=12700, help="cells (rows) of the matrix")
    parser.add_argument("--windows", type=int, default=2200, help="windows (columns) of the matrix")
    return parser


def rain_matrix(n_cells: int, n_windows: int, dtype=np.float64, rank: int = 40, seed: int = 0) -> np.ndarray:
    """Non-negative low-rank + noise ``(cell, window)`` mm: gamma-distributed patterns and amounts,
    a decaying spectrum as real rainfall has, plus sparse gamma noise (dry cells are 0)."""
    rng = np.random.default_rng(seed)
    W = rng.gamma(0.5, 1.0, (n_cells, rank)) * (0.85 ** np.arange(rank))
    H = rng.gamma(0.4, 10.0, (rank, n_windows))
    X = W @ H
    X += rng.gamma(0.3, 2.0, X.shape) * (rng.random(X.shape) < 0.5)
    return X.astype(dtype)


def lognormal_rain_matrix(n_cells: int, n_windows: int, rank: int = 25, zero_fraction: float = 0.4,
                          seed: int = 1, noise: str = "lognormal") -> np.ndarray:
    """A rain-like ``(cell, window)`` float64 matrix unlike :func:`rain_matrix`, mm.

    ``rank`` smooth Gaussian bumps (widths 0.1-0.4) over cells scattered on the unit
    square, times gamma(0.5)-distributed activations with a 0.9^j spectrum, times the ``noise``:
    ``lognormal`` multiplicative lognormal(0, 0.8); ``gamma`` multiplicative gamma(1) (exponential: heavier
    drizzle and bursts); ``additive`` plus |normal| noise of half the signal's mean (not proportional to it).
    Then the smallest ``zero_fraction`` of the entries are set to exactly 0 (dry).
    """
    rng = np.random.default_rng(seed)
    cells = rng.random((n_cells, 2))
    W = np.empty((n_cells, rank))
    for j in range(rank):
        centre, width = rng.random(2), 0.1 + 0.3 * rng.random()
        W[:, j] = np.exp(-((cells - centre) ** 2).sum(axis=1) / (2 * width ** 2))
    H = rng.gamma(0.5, 1.0, (rank, n_windows)) * (0.9 ** np.arange(rank))[:, None]
    X = W @ H
    if noise == "lognormal":
        X *= rng.lognormal(0.0, 0.8, (n_cells, n_windows))
    elif noise == "gamma":
        X *= rng.gamma(1.0, 1.0, (n_cells, n_windows))
    elif noise == "additive":
        X += np.abs(rng.normal(0.0, 0.5 * X.mean(), (n_cells, n_windows)))
    else:
        raise ValueError(f"noise {noise!r} is not lognormal, gamma or additive")
    if zero_fraction > 0:
        X[X <= np.quantile(X, zero_fraction)] = 0.0
    return X


def as_dataarray(values, start: str = "2006-01-01T15:00") -> xr.DataArray:
    n_cells, n_windows = values.shape
    side = int(np.ceil(np.sqrt(n_cells)))
    return xr.DataArray(values, dims=("cell", "time"), name="precip", coords={
        "cell": np.arange(n_cells, dtype=np.int32),
        "lat": ("cell", 30.0 + 0.05 * (np.arange(n_cells) // side)),
        "lon": ("cell", 128.0 + 0.0625 * (np.arange(n_cells) % side)),
        "time": pd.date_range(start, periods=n_windows, freq="72h").values})


def clocked(func, *args, **kwargs):
    """``(result, CPU seconds, wall seconds)`` of one call (CPU: ``time.process_time``, all threads)."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = func(*args, **kwargs)
    return result, time.process_time() - cpu, time.perf_counter() - wall


def timed(func, *args, **kwargs):
    start = time.perf_counter()
    result = func(*args, **kwargs)
    return result, time.perf_counter() - start
