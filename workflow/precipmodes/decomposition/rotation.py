"""Rotated SVD modes: varimax (orthogonal) and promax (oblique) rotation of the leading loadings.

As xeofs' ``EOFRotator`` (Richman 1986): the leading ``k`` modes are turned into loadings
``L = U_k diag(s_k) / sqrt(N)`` (cell x k, mm: each column a mode scaled by the square
root of its eigenvalue ``s^2 / N``) and rotated, ``L_r = L R`` (R: k x k).

* ``varimax``: the orthogonal R maximising the variance of the squared loadings of each
  column (Kaiser 1958), by the usual SVD iteration: ``B = A R``,
  ``R <- P Q^T`` with ``P S Q^T = svd(A^T (B o (B o B - B diag(1^T (B o B)) / cells)))``,
  until the sum of the singular values changes by less than ``rtol`` (relative).
* ``promax``: varimax, then the least-squares fit of the varimax loadings to the target
  ``T = B o |B|^(power - 1)`` (column-max-normalised), its columns rescaled so the factor
  correlations have a unit diagonal (Hendrickson & White 1964, as xeofs).
* ``kaiser`` (default on, as xeofs, which always applies it): rows of ``L`` are divided
  by their communality ``h = ||L_i||`` before rotating and multiplied back after, so every
  cell weighs the same whatever its variance; ``kaiser=False`` rotates the raw loadings
  (cells of large variance dominate the criterion).

Rotation only mixes the leading ``k`` modes: ``L_r F = L (sqrt(N) V_k^T)`` with the
rotated scores ``F = R^-1 sqrt(N) V_k^T`` (unit mean square per window for varimax), so
the rank-k reconstruction is unchanged. Outputs, ordered by rotated variance
``sum_cells L_r^2`` (descending) and with :func:`precipmodes.linalg.gram.sign_convention`:

* ``rotated_modes (cell, rotated_mode)``: ``L_r`` columns normalised to unit norm
  (dimensionless, in the weighted space of the SVD, like ``spatial_modes``);
* ``rotated_coefficients (rotated_mode, time)``: ``||L_r|| F`` (mm): the rank-k
  approximation is ``rotated_modes @ rotated_coefficients`` (xeofs' rotated ``scores()``
  are the same numbers);
* ``rotated_explained_variance_ratio``: ``N ||L_r||^2 / ||Xt||_F^2`` (sums to the
  unrotated ratio of the k modes for varimax);
* ``rotation_matrix (input_mode, rotated_mode)``: R with its columns ordered and signed as
  the rotated modes, ``L_r = L R``; ``factor_correlation`` ``R^-1 R^-T`` (the correlation
  matrix of the rotated scores F; the identity for varimax).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import xarray as xr

from precipmodes.errors import ConvergenceWarning, ParameterError

log = logging.getLogger("precipmodes")

METHODS = ("none", "varimax", "promax")


def varimax(loadings: np.ndarray, kaiser: bool = True, max_iter: int = 1000,
            rtol: float = 1e-8) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """Varimax rotation of ``loadings (cell, k)``: ``(rotated (cell, k), R (k, k), iterations, converged)``.

    ``rotated = loadings @ R`` with R orthogonal. Rows with zero communality stay 0.
    """
    A = np.asarray(loadings, dtype=np.float64)
    n_cells, k = A.shape
    if k < 2:
        raise ParameterError("n_modes", f"rotation needs at least 2 modes, got {k}")
    h = _communality(A) if kaiser else None
    if h is not None:
        A = A / h[:, None]
    R = np.eye(k)
    criterion = 0.0
    converged = False
    for iteration in range(1, max_iter + 1):
        B = A @ R
        B2 = B * B
        P, svals, Qt = np.linalg.svd(A.T @ (B * (B2 - B2.sum(axis=0) / n_cells)))
        R = P @ Qt
        previous, criterion = criterion, float(svals.sum())
        if criterion == 0 or abs(criterion - previous) / criterion < rtol:
            converged = True
            break
    return loadings @ R, R, iteration, converged


def promax(loadings: np.ndarray, power: float = 4, kaiser: bool = True, max_iter: int = 1000,
           rtol: float = 1e-8) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """Promax rotation of ``loadings (cell, k)`` (xeofs' recipe): ``(rotated, R, iterations, converged)``.

    ``rotated = loadings @ R``; R = R_varimax @ M is not orthogonal (oblique factors).
    """
    if not power > 1:
        raise ParameterError("power", f"promax power = {power} must be > 1 (power 1 is varimax)")
    B, R_v, iterations, converged = varimax(loadings, kaiser, max_iter, rtol)
    h = _communality(B) if kaiser else np.ones(B.shape[0])
    Bn = B / h[:, None]
    target = Bn / np.abs(Bn).max(axis=0)
    target = target * np.abs(target) ** (power - 1)
    M = np.linalg.lstsq(Bn, target, rcond=None)[0]  # least-squares fit of Bn M to the target
    M = M * np.sqrt(np.diag(np.linalg.inv(M.T @ M)))[None, :]  # unit diagonal of the factor correlations
    R = R_v @ M
    return np.asarray(loadings, dtype=np.float64) @ R, R, iterations, converged


def _communality(A: np.ndarray) -> np.ndarray:
    """Row norms of ``A`` plus eps (a zero row stays 0 after dividing and multiplying back)."""
    return np.sqrt((A * A).sum(axis=1)) + np.finfo(np.float64).eps


def rotate(modes: xr.DataArray, singular_values: xr.DataArray, coefficients: xr.DataArray, n_windows: int,
           total_sum_of_squares: float, method: str = "varimax", n_modes: int = 10, power: float = 4,
           kaiser: bool = True, max_iter: int = 1000, rtol: float = 1e-8) -> xr.Dataset:
    """Rotate the leading ``n_modes`` SVD modes (module docstring).

    ``modes (cell, mode)`` unit-norm (dimensionless), ``singular_values (mode,)`` mm,
    ``coefficients (mode, time)`` = ``S V^T`` mm, ``n_windows`` N, ``total_sum_of_squares``
    ``||Xt||_F^2`` mm^2. Returns a Dataset on ``cell`` with ``rotated_modes (cell, rotated_mode)``,
    ``rotated_coefficients (rotated_mode, time)``, ``rotated_explained_variance_ratio``,
    ``rotation_matrix (input_mode, rotated_mode)`` and ``factor_correlation (rotated_mode,
    rotated_mode_2)``.
    """
    from precipmodes.linalg.gram import sign_convention

    if method not in METHODS[1:]:
        raise ParameterError("rotation_method", f"rotation method {method!r} is not one of {', '.join(METHODS)}")
    available = modes.sizes["mode"]
    if not 2 <= n_modes <= available:
        raise ParameterError("rotation_n_modes", f"rotating {n_modes} modes needs 2 <= n_modes <= the {available} "
                                                 "SVD modes fitted")
    U = modes.transpose("cell", "mode").values[:, :n_modes].astype(np.float64)
    s = singular_values.values[:n_modes].astype(np.float64)
    L = U * (s / np.sqrt(n_windows))
    if method == "varimax":
        rotated, R, iterations, converged = varimax(L, kaiser, max_iter, rtol)
    else:
        rotated, R, iterations, converged = promax(L, power, kaiser, max_iter, rtol)
    if not converged:
        message = (f"rotation: {method} did not converge in max_iter = {max_iter} iterations "
                   f"(relative change of the criterion above rtol = {rtol})")
        warnings.warn(message, ConvergenceWarning, stacklevel=2)
        log.warning(message)
    variance = (rotated ** 2).sum(axis=0)  # mm^2 per mode: sum over cells of the squared loadings
    order = np.argsort(-variance, kind="stable")
    rotated, R, variance = rotated[:, order], R[:, order], variance[order]
    norms = np.sqrt(variance)
    patterns = rotated / np.where(norms > 0, norms, 1.0)
    flip = sign_convention(patterns)
    patterns, R = patterns * flip, R * flip
    V_t = coefficients.transpose("mode", "time").values[:n_modes].astype(np.float64) / s[:, None]  # V^T
    R_inv = np.linalg.inv(R)
    scores = R_inv @ (np.sqrt(n_windows) * V_t)  # F: rotated scores, L_r F = L sqrt(N) V^T
    phi = R_inv @ R_inv.T
    log.info("rotation: %s of %d modes (kaiser %s) in %d iterations; rotated variance %s%%", method, n_modes,
             kaiser, iterations, ", ".join(f"{100 * v * n_windows / total_sum_of_squares:.1f}" for v in variance))
    rmode = np.arange(1, n_modes + 1, dtype=np.int32)
    cell_coords = {name: coord for name, coord in modes.coords.items() if "mode" not in coord.dims}
    return xr.Dataset(
        {
            "rotated_modes": xr.DataArray(patterns, dims=("cell", "rotated_mode"), coords=cell_coords),
            "rotated_coefficients": xr.DataArray(norms[:, None] * scores, dims=("rotated_mode", "time"),
                                                 coords={"time": coefficients["time"].values}),
            "rotated_explained_variance_ratio": ("rotated_mode", variance * n_windows / total_sum_of_squares),
            "rotation_matrix": (("input_mode", "rotated_mode"), R),
            "factor_correlation": (("rotated_mode", "rotated_mode_2"), phi),
        },
        coords={"rotated_mode": rmode, "rotated_mode_2": rmode, "input_mode": rmode},
        attrs={"method": method, "n_modes": n_modes, "power": float(power) if method == "promax" else 1.0,
               "kaiser": int(kaiser), "iterations": iterations, "converged": int(converged)},
    )


def rotation_dataset(rotated: xr.Dataset, on_grid) -> xr.Dataset:
    """``svd.nc`` variables of a :func:`rotate` result, with CF attributes; ``on_grid`` maps a
    ``(..., cell)`` DataArray onto ``(..., lat, lon)`` (e.g. ``SVD._on_grid`` with the grid axes)."""
    a = rotated.attrs
    kind = "oblique (promax)" if a["method"] == "promax" else "orthogonal (varimax)"
    kaiser = "with Kaiser row normalisation" if a["kaiser"] else "without Kaiser normalisation (raw loadings)"
    modes = on_grid(rotated["rotated_modes"].transpose("rotated_mode", "cell"))
    ds = xr.Dataset(
        {
            "rotated_modes": modes.drop_vars("rotated_mode").assign_attrs(
                long_name=f"{kind} rotated SVD mode, unit norm over land cells", units="1",
                comment=f"the leading {a['n_modes']} modes' loadings rotated {kaiser}; NaN off land; "
                        "ordered by rotated variance, sum of loadings positive"),
            "rotated_coefficients": rotated["rotated_coefficients"].assign_attrs(
                long_name="coefficients of the rotated modes (rotated_modes @ rotated_coefficients is the "
                          "rank-n_modes approximation)", units="mm"),
            "rotated_explained_variance_ratio": rotated["rotated_explained_variance_ratio"].assign_attrs(
                long_name="fraction of the total squared Frobenius norm carried by the rotated mode", units="1"),
            "rotation_matrix": rotated["rotation_matrix"].assign_attrs(
                long_name="rotation matrix R: rotated loadings = unrotated loadings @ R", units="1",
                comment="loadings = spatial_modes * singular_values / sqrt(n_windows); columns ordered and "
                        "signed as rotated_mode"),
            "factor_correlation": rotated["factor_correlation"].assign_attrs(
                long_name="correlation matrix of the rotated scores, R^-1 R^-T (identity for varimax)", units="1"),
        },
        coords={name: rotated[name].assign_attrs(long_name=long_name) for name, long_name in (
            ("rotated_mode", "rotated mode number (1 = largest rotated variance)"),
            ("rotated_mode_2", "rotated mode number (second axis of factor_correlation)"),
            ("input_mode", "unrotated SVD mode number entering the rotation"))},
    )
    ds.attrs.update({f"rotation_{key}": value for key, value in a.items()})
    return ds
