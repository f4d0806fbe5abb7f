"""Rank choice by cross-validation: hold out random entries, fit with them missing, score them.

A random ``holdout`` fraction of the entries of the training matrix (seeded) is hidden.
For each rank, SVD and NMF are fitted with the hidden entries imputed by
expectation-maximisation: start from each cell's mean of its visible entries, then
alternate one model update on the filled matrix with refilling the hidden entries
from the model (SVD: one warm-started subspace iteration, "hard impute"; NMF: one
HALS iteration) until the hidden values change by less than ``tol`` (relative RMS)
or ``max_iter`` iterations. ``cv_rmse`` is the RMSE on the hidden entries (mm): it
falls while the rank adds signal and rises once extra modes fit noise.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import xarray as xr

from precipmodes.decomposition.matrix import as_cell_time, require_rank
from precipmodes.linalg.hals import hals_sweeps, nndsvd
from precipmodes.logs import Progress

METHODS = ("svd", "nmf")


def _svd_step(filled: np.ndarray, V: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    Q, _ = np.linalg.qr(filled @ V)
    Ub, s, Vt = np.linalg.svd(Q.T @ filled, full_matrices=False)
    return (Q @ Ub[:, :rank]) * s[:rank] @ Vt[:rank], Vt[:rank].T


def _nmf_step(filled: np.ndarray, Wt: np.ndarray, H: np.ndarray) -> np.ndarray:
    hals_sweeps(Wt, H @ filled.T, H @ H.T, 0.0, 0.0, 1)
    hals_sweeps(H, Wt @ filled, Wt @ Wt.T, 0.0, 0.0, 1)
    return Wt.T @ H


def _impute(values: np.ndarray, held: np.ndarray, rank: int, method: str, max_iter: int, tol: float):
    """EM imputation of the ``held`` entries (bool, (cell, time)): ``(reconstruction, iterations)``."""
    filled = values.copy()
    visible_mean = np.where(held, 0, values).sum(axis=1) / np.maximum((~held).sum(axis=1), 1)
    filled[held] = np.broadcast_to(visible_mean[:, None], values.shape)[held]
    U, s, Vt = np.linalg.svd(filled, full_matrices=False)
    V = Vt[:rank].T
    if method == "nmf":
        W, H = nndsvd(U[:, :rank], s[:rank], Vt[:rank], "nndsvda", float(filled.mean()))
        Wt = np.ascontiguousarray(W.T)
    scale = np.sqrt(np.mean(values[~held] ** 2)) or 1.0
    for iteration in range(1, max_iter + 1):
        if method == "svd":
            recon, V = _svd_step(filled, V, rank)
        else:
            recon = _nmf_step(filled, Wt, H)
        change = np.sqrt(np.mean((recon[held] - filled[held]) ** 2)) / scale
        filled[held] = recon[held]
        if change < tol:
            break
    return recon, iteration


def cross_validate_ranks(X: xr.DataArray, ranks: Sequence[int], holdout: float = 0.1, seed: int = 0,
                         max_iter: int = 300, tol: float = 1e-5, label: str = "training matrix") -> xr.Dataset:
    """``cv_rmse(method, rank)`` and ``fit_rmse(method, rank)`` (mm) for ``X(cell, time)``.

    ``method`` is ``svd`` and ``nmf``; ``iterations(method, rank)`` the EM iterations used.
    Entries missing in ``X`` (NaN) are imputed alongside the held-out ones and never scored.
    ``ranks`` larger than min(cells, windows) raise :class:`~precipmodes.errors.RankError`.
    """
    X = as_cell_time(X, label)
    values = np.asarray(X.values, dtype=np.float64)
    ranks = sorted(set(int(r) for r in ranks))
    for rank in ranks:
        require_rank(rank, *values.shape, label, "ranks")
    missing = np.isnan(values)  # missing entries are imputed like the held-out ones but never scored
    held = (np.random.default_rng(seed).random(values.shape) < holdout) & ~missing
    hidden = held | missing
    used = ~hidden
    cv = np.empty((len(METHODS), len(ranks)))
    fit = np.empty_like(cv)
    iterations = np.empty(cv.shape, dtype=np.int32)
    progress = Progress("rank cross-validation", len(METHODS) * len(ranks), "fits (SVD and NMF x ranks)")
    for i, method in enumerate(METHODS):
        for j, rank in enumerate(ranks):
            recon, iterations[i, j] = _impute(values, hidden, rank, method, max_iter, tol)
            cv[i, j] = np.sqrt(np.mean((recon[held] - values[held]) ** 2))
            fit[i, j] = np.sqrt(np.mean((recon[used] - values[used]) ** 2))
            progress.advance()
    coords = {"method": list(METHODS), "rank": np.array(ranks, dtype=np.int32)}
    return xr.Dataset({
        "cv_rmse": (("method", "rank"), cv, {"long_name": "RMSE on the held-out entries", "units": "mm"}),
        "fit_rmse": (("method", "rank"), fit, {"long_name": "RMSE on the entries used for fitting", "units": "mm"}),
        "iterations": (("method", "rank"), iterations, {"long_name": "EM imputation iterations"}),
    }, coords=coords, attrs={"holdout_fraction": holdout, "seed": seed, "n_heldout": int(held.sum()),
                             "n_missing_entries": int(missing.sum()),
                             "best_rank_svd": ranks[int(np.argmin(cv[0]))],
                             "best_rank_nmf": ranks[int(np.argmin(cv[1]))]})
