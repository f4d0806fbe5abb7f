"""Predictive skill of the modes on unseen cells, the rank-k ceiling, and clipping of negative rain.

The test RMSE of :mod:`precipmodes.diagnostics.evaluate` fits each test window's own coefficients to
all its cells: it measures compression. Here the modes have to *predict*:

* Hold-out: in every test window a seeded fraction of its observed cells (``fraction``,
  at least one cell, at least one left visible) is hidden; the window is projected from
  the visible cells only (the estimators' observed-row projection, as gap filling) and
  the reconstruction is scored on the hidden cells: ``<m>_holdout_rmse(time)`` and
  ``<m>_holdout_rmse_overall`` (mm), and ``<m>_skill = 1 - MSE_m / MSE_climatology`` on
  the same hidden cells (1 perfect, 0 no better than the monthly climatology, < 0 worse).
* ``rank_optimum_rmse_overall``: the RMSE of the best rank-k fit of the test matrix itself
  (Eckart-Young: its own truncated SVD, of the anomalies from the training mean when the
  SVD is centred; iterative imputation over missing entries), the floor under any rank-k
  reconstruction's compression RMSE.
* :func:`clip_negative`: precipitation is not negative, so SVD reconstructions are set
  to ``max(x, 0)`` (counting how many entries were below 0).
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import xarray as xr

from precipmodes.decomposition.matrix import as_cell_time
from precipmodes.errors import ParameterError

Predictor = Callable[[xr.DataArray], np.ndarray]


def clip_negative(values: np.ndarray) -> tuple[np.ndarray, int]:
    """``(max(values, 0), number of entries below 0)``; NaN stays NaN."""
    values = np.asarray(values, dtype=np.float64)
    negative = values < 0
    return np.where(negative, 0.0, values), int(negative.sum())


def holdout_mask(observed: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Bool ``(cell, time)``: in each window ``round(fraction * n_observed)`` observed cells, seeded.

    At least one cell is hidden and at least one left visible in every window with two or
    more observed cells; windows with fewer hide nothing.
    """
    if not 0 < fraction < 1:
        raise ParameterError("holdout_fraction", f"hold-out fraction {fraction} must be in (0, 1)")
    observed = np.asarray(observed, dtype=bool)
    rng = np.random.default_rng(seed)
    held = np.zeros_like(observed)
    for t in range(observed.shape[1]):
        cells = np.flatnonzero(observed[:, t])
        if cells.size < 2:
            continue
        n_hide = min(max(int(round(fraction * cells.size)), 1), cells.size - 1)
        held[rng.choice(cells, n_hide, replace=False), t] = True
    return held


def holdout_skill(test: xr.DataArray, predictors: Mapping[str, Predictor], baseline: np.ndarray,
                  fraction: float = 0.2, seed: int = 0) -> xr.Dataset:
    """Hold-out scores of each predictor on ``test (cell, time)`` mm (NaN = missing), see the module docstring.

    ``predictors`` maps a method name to a function that reconstructs every cell ``(cell, time)``
    of a test matrix whose hidden cells are NaN; ``baseline (cell, time)`` is the climatology
    prediction. Returns ``<m>_holdout_rmse(time)``, ``<m>_holdout_rmse_overall``, ``<m>_skill``
    and the same RMSEs for ``climatology``; ``holdout_cells(time)`` counts the hidden cells.
    """
    test = as_cell_time(test, "test matrix")
    values = np.asarray(test.values, dtype=np.float64)
    held = holdout_mask(~np.isnan(values), fraction, seed)
    visible = test.copy(data=np.where(held, np.nan, values))
    count = held.sum(axis=0)
    held_cell, held_window = np.nonzero(held)
    held_values = values[held_cell, held_window]

    def squared_errors(prediction: np.ndarray) -> np.ndarray:
        """Per window, the sum of squared errors over its held-out cells ``(time,)`` mm^2."""
        error = np.asarray(prediction)[held_cell, held_window].astype(np.float64) - held_values
        return np.bincount(held_window, weights=error * error, minlength=held.shape[1])

    def scores(name: str, squared: np.ndarray) -> dict:
        with np.errstate(invalid="ignore", divide="ignore"):
            per_window = np.where(count > 0, np.sqrt(squared / np.maximum(count, 1)), np.nan)
        overall = float(np.sqrt(squared.sum() / count.sum()))
        what = f"{name} prediction of the held-out cells ({100 * fraction:g}% of each test window's observed cells)"
        return {f"{name}_holdout_rmse": xr.DataArray(per_window, dims="time", attrs={
                    "long_name": f"RMSE over the held-out cells of the {what}", "units": "mm"}),
                f"{name}_holdout_rmse_overall": xr.DataArray(overall, attrs={
                    "long_name": f"RMSE over all held-out cells and test windows of the {what}", "units": "mm"})}

    base = squared_errors(baseline)
    out = scores("climatology", base)
    for name, predict in predictors.items():
        squared = squared_errors(predict(visible))
        out.update(scores(name, squared))
        out[f"{name}_skill"] = xr.DataArray(1.0 - squared.sum() / base.sum() if base.sum() > 0 else np.nan, attrs={
            "long_name": f"{name} hold-out skill score 1 - MSE / MSE_climatology on the held-out cells",
            "units": "1", "comment": "1 perfect, 0 as good as the monthly climatology, negative worse"})
    out["holdout_cells"] = xr.DataArray(count.astype(np.int32), dims="time", attrs={
        "long_name": "number of observed land cells held out (hidden from the projection) in the test window",
        "units": "1"})
    ds = xr.Dataset(out, coords={"time": test["time"].values})
    ds.attrs.update(holdout_fraction=float(fraction), holdout_seed=int(seed),
                    holdout_method="per test window a seeded random fraction of its observed cells is hidden, "
                                   "the window projected from the rest and scored on the hidden cells")
    return ds


def rank_optimum_rmse(test: xr.DataArray, rank: int, mean: np.ndarray | None = None) -> float:
    """RMSE (mm, observed entries) of the best rank-``rank`` fit of ``test (cell, time)`` (minus ``mean (cell,)``).

    Exact truncated SVD when nothing is missing; with missing entries the rank-k fit of
    :class:`~precipmodes.decomposition.svd.SVD` (iterative imputation) scored on the observed entries.
    Cells never observed in the test period are left out; ``rank`` is capped at min(cells, windows).
    """
    from precipmodes.decomposition.svd import SVD

    test = as_cell_time(test, "test matrix")
    values = np.asarray(test.values, dtype=np.float64)
    if mean is not None:
        values = values - np.asarray(mean, dtype=np.float64)[:, None]
    observed = ~np.isnan(values)
    rows = observed.any(axis=1)
    values, observed = values[rows], observed[rows]
    k = min(int(rank), *values.shape)
    if observed.all():
        U, s, Vt = np.linalg.svd(values, full_matrices=False)
        fitted = (U[:, :k] * s[:k]) @ Vt[:k]
    else:
        model = SVD(n_modes=k, method="gram").fit(test.isel(cell=np.flatnonzero(rows)).copy(data=values),
                                                  label="test matrix (rank-k optimum)")
        fitted = model.inverse_transform(model.scores()).transpose("cell", "time").values
    residual = np.where(observed, values - np.where(observed, fitted, 0.0), 0.0)
    return float(np.sqrt((residual ** 2).sum() / observed.sum()))


def svd_reconstruction(svd, coefficients: xr.DataArray, clip: bool) -> tuple[np.ndarray, int, int]:
    """``(reconstruction (cell, time) mm, entries below 0, entries below -0.5 mm)`` of SVD ``coefficients``
    (counted before clipping); ``clip`` sets the negative entries to 0."""
    values = svd.inverse_transform(coefficients).transpose("cell", ...).values
    n_below_half_mm = int((values < -0.5).sum())
    clipped, n_negative = clip_negative(values)
    return (clipped if clip else values), n_negative, n_below_half_mm


def predictive_scores(test: xr.DataArray, svd, nmf, nmf_projection: str, baseline: np.ndarray,
                      fraction: float = 0.2, seed: int = 0, clip: bool = True) -> xr.Dataset:
    """Hold-out scores of the fitted ``svd`` and ``nmf`` (``nmf_projection``: nnls or pinv) on ``test``, and
    ``rank_optimum_rmse_overall`` at the SVD's number of modes (module docstring). ``baseline (cell, time)``
    is the climatology prediction; ``clip`` clips the SVD predictions at 0."""
    predictors = {
        "svd": lambda X: svd_reconstruction(svd, svd.transform(X), clip)[0],  # clipped when clip
        "nmf": lambda X: nmf.inverse_transform(nmf.transform(X, method=nmf_projection)).transpose("cell", ...).values,
    }
    ds = holdout_skill(test, predictors, baseline, fraction, seed)
    k = svd.spatial_modes_.sizes["mode"]
    mean = None if svd.mean_ is None else svd.mean_.values
    ds["rank_optimum_rmse_overall"] = xr.DataArray(rank_optimum_rmse(test, k, mean), attrs={
        "long_name": f"RMSE of the best rank-{k} fit of the test matrix itself (its own truncated SVD"
                     + (", of the anomalies from the training mean)" if mean is not None else ")"),
        "units": "mm", "comment": "floor under the compression RMSE of any rank-k reconstruction"})
    return ds


def clipped_variable(n_negative: int, n_below_half_mm: int, n_entries: int, clip: bool) -> xr.DataArray:
    """``svd_clipped_entries``: how many of the ``n_entries`` (cells x windows) SVD reconstruction entries were
    below 0 (set to 0 when ``clip``), and in the attributes the fractions below 0 and below -0.5 mm."""
    return xr.DataArray(np.int64(n_negative), attrs={
        "long_name": "number of test-period SVD reconstruction entries below 0 mm"
                     + (", set to 0" if clip else " (not clipped: evaluation.clip_negative false)"),
        "units": "1", "fraction_of_entries": float(n_negative / max(n_entries, 1)),
        "fraction_below_minus_half_mm": float(n_below_half_mm / max(n_entries, 1)), "clip_negative": int(clip)})
