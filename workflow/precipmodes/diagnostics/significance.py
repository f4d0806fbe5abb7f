"""Significance of SVD modes: North et al. with an effective sample size, and a moving-block bootstrap.

North et al. (1982): the sampling error of an eigenvalue ``lambda_k = s_k^2 / N`` is
``lambda_k sqrt(2 / N)`` for N independent windows. Consecutive 72-hour windows are not
independent; with the lag-1 autocorrelation ``r1`` of the mode's coefficients the
effective sample size is ``N_eff = N (1 - r1) / (1 + r1)`` (Bretherton et al. 1999; ``r1``
clipped at 0, so ``N_eff <= N``), and ``north_error_effective = lambda_k sqrt(2 / N_eff)``.
``r1`` is the Pearson correlation of the pairs of windows exactly one window step apart
(the smallest spacing of the window starts), so pairs across a dropped window or a gap
between seasons do not count; a mode without such pairs gets ``r1`` NaN and ``N_eff = N``.
A mode is ``separated`` when the gaps to both neighbouring eigenvalues exceed its error
and theirs (the larger of the two errors, each from its own ``N_eff``).

Moving-block bootstrap (Kuensch 1989): a resample of the N training windows is
``ceil(N / b)`` blocks of ``b`` consecutive windows (starts drawn uniformly, seeded),
cut to N, so the autocorrelation inside a block is kept. The SVD is refitted on each
resample with the same settings; ``eigenvalue_low``/``eigenvalue_high`` are the 2.5 and
97.5 percentiles of the resamples' k-th eigenvalue, and ``pattern_stability`` the mean
over resamples of ``|u_k . u'_j|`` (the absolute pattern correlation, uncentred: the cosine
of the unit-norm modes) of each full-sample mode with the resample mode the Hungarian
assignment (``scipy.optimize.linear_sum_assignment``, maximising the total) matched to it:
near 1 for a well separated mode, low for modes that mix with their neighbours.

NMF stability (:func:`nmf_rank_stability`, for the rank choice): the NMF of each rank is fitted
from several random initialisations; each fit's components are Hungarian-matched to the first
fit's by Pearson correlation over cells, and the mean matched correlation says how reproducible
the components are (low once the rank exceeds what the data determine).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import scipy.optimize
import xarray as xr

from precipmodes.errors import ParameterError
from precipmodes.logs import Progress, quiet, timed

log = logging.getLogger("precipmodes")


def lag1_autocorrelation(coefficients: xr.DataArray, dim: str = "time") -> np.ndarray:
    """``r1 (mode,)`` of ``coefficients (mode, time)``: correlation of windows one step apart (module docstring)."""
    values = coefficients.transpose(..., dim).values.astype(np.float64)
    times = coefficients[dim].values
    order = np.argsort(times, kind="stable")
    values, times = values[..., order], times[order]
    diffs = np.diff(times)
    positive = diffs[diffs > diffs.dtype.type(0)] if diffs.size else diffs
    if positive.size == 0:
        return np.full(values.shape[0], np.nan)
    pairs = np.flatnonzero(diffs == positive.min())
    if pairs.size < 3:
        return np.full(values.shape[0], np.nan)
    a, b = values[:, pairs], values[:, pairs + 1]
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    denom = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (a * b).sum(axis=1) / np.where(denom > 0, denom, 1.0), np.nan)


def effective_sample_size(r1: np.ndarray, n: int) -> np.ndarray:
    """``N (1 - r1) / (1 + r1)`` with ``r1`` clipped to [0, 1) (NaN -> N), at least 1."""
    r = np.clip(np.nan_to_num(np.asarray(r1, dtype=np.float64), nan=0.0), 0.0, 1.0 - 1e-12)
    return np.maximum(n * (1 - r) / (1 + r), 1.0)


def north_test(singular_values: np.ndarray, next_singular_value: float, n_windows: int,
               coefficients: xr.DataArray) -> dict[str, np.ndarray]:
    """North et al. errors and separation for ``singular_values (mode,)`` mm (module docstring).

    ``next_singular_value`` is that of mode ``n + 1`` (NaN when unknown: the last mode's lower
    gap is then not tested), ``coefficients (mode, time)`` the training coefficients. Returns
    arrays by mode: ``eigenvalues`` (mm^2), ``north_error``, ``north_error_effective`` (mm^2),
    ``lag1_autocorrelation``, ``n_effective`` and ``separated`` (bool, from the effective errors).
    """
    s = np.asarray(singular_values, dtype=np.float64)
    N = int(n_windows)
    eig = s ** 2 / N
    r1 = lag1_autocorrelation(coefficients)
    n_eff = effective_sample_size(r1, N)
    err = eig * np.sqrt(2.0 / N)
    err_eff = eig * np.sqrt(2.0 / n_eff)
    upper_gap = np.concatenate([[np.inf], eig[:-1] - eig[1:]])
    lower_gap = np.concatenate([eig[:-1] - eig[1:], [eig[-1] - next_singular_value ** 2 / N]])
    upper_err = np.maximum(err_eff, np.concatenate([[0.0], err_eff[:-1]]))
    lower_err = np.maximum(err_eff, np.concatenate([err_eff[1:], [0.0]]))
    separated = (upper_gap > upper_err) & (np.nan_to_num(lower_gap, nan=np.inf) > lower_err)
    return {"eigenvalues": eig, "north_error": err, "north_error_effective": err_eff, "lag1_autocorrelation": r1,
            "n_effective": n_eff, "separated": separated}


def block_resample(n_windows: int, block_windows: int, rng: np.random.Generator) -> np.ndarray:
    """Indices ``(n_windows,)`` of one moving-block resample: ``ceil(N / b)`` blocks of ``b`` consecutive windows."""
    if not 1 <= block_windows <= n_windows:
        raise ParameterError("block_windows", f"bootstrap blocks of {block_windows} windows need "
                                              f"1 <= block_windows <= the {n_windows} training windows")
    n_blocks = -(-n_windows // block_windows)
    starts = rng.integers(0, n_windows - block_windows + 1, n_blocks)
    return (starts[:, None] + np.arange(block_windows)[None, :]).reshape(-1)[:n_windows]


def matched_correlation(reference: np.ndarray, other: np.ndarray) -> np.ndarray:
    """``|cos|`` of each column of ``reference (cell, k)`` with its Hungarian-matched column of ``other (cell, m)``.

    Columns are normalised first (a zero column matches with 0). Returns ``(k,)`` in [0, 1].
    """
    def unit(A):
        norm = np.linalg.norm(A, axis=0)
        return A / np.where(norm > 0, norm, 1.0)

    C = np.abs(unit(reference).T @ unit(other))
    rows, cols = scipy.optimize.linear_sum_assignment(-C)
    out = np.zeros(reference.shape[1])
    out[rows] = C[rows, cols]
    return out


def bootstrap_svd(model, X: xr.DataArray, n_resamples: int, block_windows: int = 10, seed: int = 0,
                  level: float = 0.95) -> xr.Dataset:
    """Moving-block bootstrap of a fitted :class:`~precipmodes.decomposition.svd.SVD` on its training data ``X``.

    ``X`` is what the model was fitted on: a ``(cell, time)`` matrix or a field stacked like the
    fit's input (e.g. ``(time, lat, lon)``); it is resampled along the sample dimension.

    Each resample is fitted with the model's own parameters. Returns ``eigenvalue_low``,
    ``eigenvalue_high`` (mm^2, the ``level`` percentile interval of ``s^2 / N``) and
    ``pattern_stability`` (1) by ``mode``; attrs give the resamples, block length and seed.
    """
    if n_resamples < 2:
        raise ParameterError("n_resamples", f"a bootstrap needs at least 2 resamples, got {n_resamples}")
    X = model._matrix(X, "bootstrap input")  # (cell, time) on the fitted cells
    N = X.sizes["time"]
    k = model.spatial_modes_.sizes["mode"]
    reference = model.spatial_modes_.values
    rng = np.random.default_rng(seed)
    eig = np.empty((n_resamples, k))
    stability = np.empty((n_resamples, k))
    progress = Progress("svd bootstrap", n_resamples, "resamples")
    with timed(f"svd bootstrap ({n_resamples} resamples of {N} windows, blocks of {block_windows})"):
        with quiet():  # not the refits' own info lines, once per resample
            for i in range(n_resamples):
                idx = block_resample(N, block_windows, rng)
                refit = dataclasses.replace(model).fit(X.isel(time=idx), label=f"bootstrap resample {i + 1}")
                eig[i] = refit.singular_values_.values ** 2 / N
                stability[i] = matched_correlation(reference, refit.spatial_modes_.values)
                progress.advance()
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(eig, [tail, 100 - tail], axis=0)
    log.info("svd bootstrap: pattern stability by mode %s", ", ".join(f"{v:.2f}" for v in stability.mean(axis=0)))
    coords = {"mode": model.spatial_modes_["mode"].values}
    described = f"{n_resamples} moving-block resamples of the training windows (blocks of {block_windows})"
    return xr.Dataset({
        "eigenvalue_low": ("mode", low, {"long_name": f"lower end of the {100 * level:g}% bootstrap interval of "
                                                      "the eigenvalue s^2/N", "units": "mm2", "comment": described}),
        "eigenvalue_high": ("mode", high, {"long_name": f"upper end of the {100 * level:g}% bootstrap interval of "
                                                        "the eigenvalue s^2/N", "units": "mm2", "comment": described}),
        "pattern_stability": ("mode", stability.mean(axis=0), {
            "long_name": "mean absolute pattern correlation of the mode with its Hungarian-matched bootstrap mode",
            "units": "1", "valid_range": np.array([0.0, 1.0]), "comment": described}),
    }, coords=coords, attrs={"bootstrap_n": int(n_resamples), "bootstrap_block_windows": int(block_windows),
                             "bootstrap_seed": int(seed), "bootstrap_level": float(level)})


def nmf_seed_stability(nmf, X: xr.DataArray, seeds, progress: Progress | None = None) -> np.ndarray:
    """Stability ``(component,)`` of an NMF configuration over random initialisations.

    ``nmf`` is an unfitted :class:`~precipmodes.decomposition.nmf.NMF` (its parameters are kept; ``init`` becomes
    ``random`` with each of ``seeds``, at least 2). Each fit's basis is matched (Hungarian) to the first
    seed's; a component's stability is the mean over the other seeds of its matched Pearson
    correlation over cells (centred: all-positive bases would make the cosine high whatever their shape).
    ``progress`` (optional) counts each fit.
    """
    seeds = list(seeds)
    if len(seeds) < 2:
        raise ParameterError("n_seeds", f"NMF stability needs at least 2 seeds, got {len(seeds)}")
    bases = []
    for seed in seeds:
        fit = dataclasses.replace(nmf, init="random", seed=int(seed)).fit(X, label=f"NMF stability fit, seed {seed}")
        basis = fit.basis_.values
        bases.append(basis - basis.mean(axis=0))
        if progress is not None:
            progress.advance()
    return np.mean([matched_correlation(bases[0], other) for other in bases[1:]], axis=0)


def nmf_rank_stability(nmf_for_rank, X: xr.DataArray, ranks, n_seeds: int = 4) -> xr.Dataset:
    """``nmf_stability(rank)`` (mean over components) and ``nmf_stability_min(rank)`` of :func:`nmf_seed_stability`
    with seeds ``0 .. n_seeds - 1``; ``nmf_for_rank(rank)`` gives the unfitted NMF of each rank."""
    if n_seeds < 2:
        raise ParameterError("n_seeds", f"NMF stability needs at least 2 seeds, got {n_seeds}")
    ranks = sorted(set(int(r) for r in ranks))
    mean, low = np.empty(len(ranks)), np.empty(len(ranks))
    progress = Progress("nmf stability", n_seeds * len(ranks), "fits")
    with timed(f"nmf stability ({n_seeds} random initialisations x ranks {ranks})"), quiet():
        for i, rank in enumerate(ranks):
            per_component = nmf_seed_stability(nmf_for_rank(rank), X, range(n_seeds), progress)
            mean[i], low[i] = per_component.mean(), per_component.min()
    what = f"over {n_seeds} random initialisations, Hungarian-matched to the first"
    return xr.Dataset({
        "nmf_stability": ("rank", mean, {"long_name": f"mean over components of the NMF basis correlation {what}",
                                         "units": "1"}),
        "nmf_stability_min": ("rank", low, {"long_name": f"least stable component's NMF basis correlation {what}",
                                            "units": "1"}),
    }, coords={"rank": np.array(ranks, dtype=np.int32)}, attrs={"stability_seeds": int(n_seeds)})
