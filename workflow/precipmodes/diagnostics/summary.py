"""Key numbers of an experiment (summary.json) from its svd.nc, nmf.nc and evaluation.nc datasets.

* :func:`key_numbers` - an experiment's key numbers from svd.nc, nmf.nc and evaluation.nc (summary.json);
  the overview of a whole results folder is :mod:`precipmodes.steps.overview`
* :func:`variance_label` - what the SVD's per-mode fraction is: the share of the sum of squares under the
  uncentred SVD (its mode 1 is close to the mean field), explained variance only when centred

Light on purpose (no matplotlib): the Snakefile's onsuccess hook imports it.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

# evaluation.nc method names -> display names
METHODS = {"SVD": "svd", "NMF": "nmf", "climatology": "climatology"}


def variance_label(centred: bool, short: bool = False) -> str:
    """The name of ``explained_variance_ratio``: explained variance for a centred SVD, else the share of
    the sum of squares (the uncentred SVD's mode 1 carries the mean field, not a variance)."""
    if centred:
        return "var" if short else "explained variance"
    return "of sum of squares" if short else "share of the sum of squares (uncentred SVD)"


def is_centred(svd: xr.Dataset) -> bool:
    """Whether svd.nc comes from an SVD of anomalies (``svd.center``)."""
    return bool(int(svd.attrs.get("center", 0)))


def overall_rmse(evaluation: xr.Dataset, var: str) -> float:
    """Overall test RMSE (mm) of a method: ``<var>_rmse_overall`` if present, else from the per-window RMSE."""
    name = f"{var}_rmse_overall"
    if name in evaluation:
        return float(evaluation[name])
    return float(np.sqrt(np.nanmean(evaluation[f"{var}_rmse"].values ** 2)))


def key_numbers(svd: xr.Dataset, nmf: xr.Dataset, evaluation: xr.Dataset) -> dict:
    """Key numbers of an experiment: land cells, variance (or share of the sum of squares), NMF error,
    overall test RMSE (mm), and where the files have them the hold-out skill scores, hold-out RMSE, rank-k
    optimum, clipped SVD entries, rotation and bootstrap pattern stability."""
    ratio = svd["explained_variance_ratio"].values.astype(float)
    return {**_basic_numbers(svd, nmf, evaluation, ratio), **_science_numbers(svd, evaluation)}


def _basic_numbers(svd: xr.Dataset, nmf: xr.Dataset, evaluation: xr.Dataset, ratio: np.ndarray) -> dict:
    return {
        "n_modes": int(ratio.size),
        "n_cells": int(np.isfinite(svd["spatial_modes"].isel(mode=0)).sum()) if "spatial_modes" in svd else None,
        "svd_centred": is_centred(svd),
        "variance_measure": variance_label(is_centred(svd)),
        "explained_variance_percent": {int(m): round(100 * float(r), 3) for m, r in zip(svd["mode"].values, ratio)},
        "cumulative_explained_variance_percent": round(100 * float(ratio.sum()), 3),
        "n_training_windows": int(svd.sizes["time"]),
        "nmf_relative_reconstruction_error": float(nmf["reconstruction_error"]),
        "nmf_solver": str(nmf["reconstruction_error"].attrs.get("solver", nmf.attrs.get("solver", ""))),
        "nmf_iterations": _int_attr(nmf, "n_iter"),
        "n_test_windows": int(evaluation.sizes["time"]),
        "test_rmse_mm": {name: round(overall_rmse(evaluation, var), 4) for name, var in METHODS.items()},
    }


def _science_numbers(svd: xr.Dataset, evaluation: xr.Dataset) -> dict:
    """The predictive-skill and significance numbers present in the files (none from older files)."""
    out: dict = {}
    skill = {name: round(float(evaluation[f"{var}_skill"]), 4) for name, var in METHODS.items()
             if f"{var}_skill" in evaluation}
    if skill:
        out["holdout_skill"] = skill
        out["holdout_fraction"] = float(evaluation.attrs.get("holdout_fraction", np.nan))
        out["holdout_rmse_mm"] = {name: round(float(evaluation[f"{var}_holdout_rmse_overall"]), 4)
                                  for name, var in METHODS.items() if f"{var}_holdout_rmse_overall" in evaluation}
    if "rank_optimum_rmse_overall" in evaluation:
        out["rank_optimum_rmse_mm"] = round(float(evaluation["rank_optimum_rmse_overall"]), 4)
    if "svd_clipped_entries" in evaluation:
        clipped = evaluation["svd_clipped_entries"]
        out["svd_clipped_entries"] = int(clipped)
        out["svd_clipped_percent"] = round(100 * float(clipped.attrs.get("fraction_of_entries", np.nan)), 3)
        out["svd_below_minus_half_mm_percent"] = round(
            100 * float(clipped.attrs.get("fraction_below_minus_half_mm", np.nan)), 3)
    if "rotated_explained_variance_ratio" in svd:
        out["rotation"] = {"method": str(svd.attrs.get("rotation_method")), "kaiser": bool(svd.attrs.get(
            "rotation_kaiser", 1)), "explained_variance_percent": {
            int(m): round(100 * float(r), 3) for m, r in zip(svd["rotated_mode"].values,
                                                             svd["rotated_explained_variance_ratio"].values)}}
    if "pattern_stability" in svd:
        out["pattern_stability"] = {int(m): round(float(v), 3) for m, v in zip(svd["mode"].values,
                                                                               svd["pattern_stability"].values)}
    if "separated" in svd:
        out["n_separated_modes"] = int(svd["separated"].sum())
    return out


def _int_attr(ds: xr.Dataset, name: str) -> int | None:
    value = ds["reconstruction_error"].attrs.get(name, ds.attrs.get(name))
    return None if value is None else int(value)
