"""Chunked SVD of the land-cell x window matrix (EOFs / principal patterns).

:class:`SVD` is an estimator in the style of xeofs: ``fit`` on a ``(cell, time)``
DataArray, ``transform`` new windows to coefficients, ``inverse_transform`` back to
cells; ``to_dataset`` puts the modes back on the grid for ``svd.nc``.

Methods (``svd.method``):

* ``gram`` (method of snapshots): ``G = sum_chunks X_c^T X_c`` in float64 over cell
  chunks, ``eigh`` of the small windows x windows matrix for the leading ``n + 1``
  eigenpairs, then ``Y = X V`` chunk by chunk and a thin QR + SVD of ``Y``
  (Rayleigh-Ritz), which makes the modes orthonormal to rounding and the singular
  values exact to ~1e-14 relative for the leading modes. Two passes over X.
* ``tsqr``: ``dask.array.linalg.svd`` (tall-skinny QR), exact, slower, more memory.
* ``randomized``: ``dask.array.linalg.svd_compressed`` with ``power_iterations``
  QR-orthonormalised power iterations (plain power iterations lose the smaller modes
  to rounding) and ``max(10, n + 1)`` oversamples.
* ``auto``: ``gram`` while windows <= ``gram_max_windows``, else ``randomized``.

The fitted matrix is ``Xt = w * (X - m)``: ``m`` the per-cell training mean when
``center`` (anomalies; default off = the seed's uncentred SVD), ``w = sqrt(cos lat)``
when ``area_weighting``, else 1. ``Xt = U S V^T``; ``spatial_modes`` are the columns
of U (orthonormal, dimensionless, in the weighted space), ``temporal_coefficients``
``= U^T Xt = S V^T`` (mm, the same numbers :meth:`SVD.transform` gives for a window).

Sign convention: each mode is flipped so the sum of its spatial loadings is
positive (the leading mode of rain is then a positive rain pattern); where that sum
is below 1e-6 of the sum of |loadings| (a pure dipole) the largest |loading| is made
positive instead.

All-zero training cells (no rain in any window) are kept out of the fit and reported;
their loading is exactly 0 (the SVD of the full matrix gives them 0 too).

``explained_variance_ratio = s_k^2 / ||Xt||_F^2`` (of the total, all modes).
North et al. (1982): eigenvalue ``lambda_k = s_k^2 / N`` (mm^2, mean square per
window), its sampling error ``lambda_k sqrt(2 / N)`` with ``N`` the number of training
windows (no correction for autocorrelation: an optimistic error), and
``separated(mode)`` is 1 when the gaps to both neighbours exceed that error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import dask
import dask.array as da
import numpy as np
import scipy.linalg
import xarray as xr

from .errors import ConfigError
from .grid import unstack_cells
from .matrix import CellBlocks, area_weights, as_cell_time, require_finite, require_rank, scan

log = logging.getLogger("precipmodes")

METHODS = ("auto", "gram", "tsqr", "randomized")


def _transformed(block: np.ndarray, mean: np.ndarray | None, weights: np.ndarray | None) -> np.ndarray:
    out = block.astype(np.float64)
    if mean is not None:
        out -= mean[:, None]
    if weights is not None:
        out *= weights[:, None]
    return out


def _gram_block(block, mean, weights):
    b = _transformed(block, mean, weights)
    return b.T @ b


def _project_block(block, mean, weights, V):
    return _transformed(block, mean, weights) @ V


def sign_convention(U: np.ndarray) -> np.ndarray:
    """+1/-1 per column of ``U (cell, mode)``: sum of loadings positive (dipoles: largest |loading|)."""
    total = U.sum(axis=0)
    scale = np.abs(U).sum(axis=0)
    peak = U[np.abs(U).argmax(axis=0), np.arange(U.shape[1])]
    ref = np.where(np.abs(total) > 1e-6 * scale, total, peak)
    return np.where(ref < 0, -1.0, 1.0)


@dataclass
class SVD:
    """Truncated SVD (EOF analysis) of a ``(cell, time)`` matrix. See the module docstring."""

    n_modes: int = 25
    method: str = "auto"
    center: bool = False
    area_weighting: bool = False
    gram_max_windows: int = 20000
    power_iterations: int = 4
    cell_chunk: int = 20000
    seed: int = 0
    fitted: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_config(cls, svd_config: dict, n_modes: int) -> "SVD":
        """Estimator from the ``svd`` config section and an experiment's ``n_modes``."""
        return cls(n_modes=n_modes, **{k: svd_config[k] for k in (
            "method", "center", "area_weighting", "gram_max_windows", "power_iterations", "cell_chunk")
            if k in svd_config})

    def choose_method(self, n_windows: int) -> str:
        if self.method not in METHODS:
            raise ConfigError(f"svd.method: {self.method!r} is not one of {', '.join(METHODS)}")
        if self.method != "auto":
            return self.method
        return "gram" if n_windows <= self.gram_max_windows else "randomized"

    # ------------------------------------------------------------------ fit
    def fit(self, X: xr.DataArray, label: str = "training matrix", source: str = "the split step") -> "SVD":
        """Fit on ``X(cell, time)`` (mm). ``label`` names the matrix, ``source`` its file, in errors."""
        X = as_cell_time(X, label)
        n_cells, n_windows = X.shape
        require_rank(self.n_modes, n_cells, n_windows, label, "n_modes")
        blocks = CellBlocks(X, self.cell_chunk)
        found = scan(blocks)
        require_finite(X, found, label, source)
        keep = found.nonzero_cells
        n_zero = int((~keep).sum())
        if n_zero:
            log.info("svd: %d of %d cells are zero in every training window; kept out of the fit (loading 0)",
                     n_zero, n_cells)
            require_rank(self.n_modes, int(keep.sum()), n_windows, f"{label} without its all-zero cells", "n_modes")
        Xk = X.isel(cell=np.flatnonzero(keep)) if n_zero else X
        mean = (found.row_sum[keep] / n_windows) if self.center else None
        weights = area_weights(Xk["lat"].values) if self.area_weighting else None
        method = self.choose_method(n_windows)
        n_extra = min(self.n_modes + 1, int(keep.sum()), n_windows)
        total = None
        if method == "gram":
            U, s, Vt, total = self._fit_gram(Xk, mean, weights, n_extra)
        else:
            Xd = self._dask(Xk, mean, weights)
            if method == "tsqr":
                Ud, sd, Vtd = da.linalg.svd(Xd)
                U, s_all, Vt = dask.compute(Ud[:, :n_extra], sd, Vtd[:n_extra])
                s, total = s_all[:n_extra], float(np.sum(s_all.astype(np.float64) ** 2))
            else:
                Ud, sd, Vtd = da.linalg.svd_compressed(
                    Xd, k=n_extra, n_power_iter=self.power_iterations, iterator="QR",
                    n_oversamples=max(10, n_extra), seed=self.seed, compute=False)
                U, s, Vt, total = dask.compute(Ud, sd, Vtd, (Xd ** 2).sum())
        s = np.asarray(s, dtype=np.float64)
        U = np.asarray(U, dtype=np.float64)
        Vt = np.asarray(Vt, dtype=np.float64)
        n = self.n_modes
        flip = sign_convention(U[:, :n])
        U_full = np.zeros((n_cells, n))
        U_full[keep] = U[:, :n] * flip
        mean_full = None
        if self.center:
            mean_full = np.zeros(n_cells)
            mean_full[keep] = mean
        self.fitted = dict(
            method=method, U=U_full, s=s[:n], s_next=(s[n] if s.size > n else np.nan),
            coeffs=(s[:n, None] * Vt[:n]) * flip[:, None], total=float(total), mean=mean_full,
            weights=area_weights(X["lat"].values) if self.area_weighting else None,
            n_windows=n_windows, n_zero_cells=n_zero, cells=X["cell"], lat=X["lat"], lon=X["lon"], time=X["time"],
        )
        log.info("svd: %s route, %d cells x %d windows, %d modes explain %.1f%% of the total",
                 method, n_cells, n_windows, n, 100 * float((s[:n] ** 2).sum() / total))
        return self

    def _dask(self, X, mean, weights) -> da.Array:
        data = X.data if isinstance(X.data, da.Array) else da.from_array(
            X.values, chunks=(self.cell_chunk, -1))
        data = data.rechunk({1: -1}).astype(np.float64)
        if mean is not None:
            data = data - da.from_array(mean, chunks=(data.chunks[0],))[:, None]
        if weights is not None:
            data = data * da.from_array(weights, chunks=(data.chunks[0],))[:, None]
        return data

    def _fit_gram(self, X, mean, weights, n_extra):
        blocks = CellBlocks(X, self.cell_chunk)
        means = blocks.split(mean) if mean is not None else [None] * len(blocks)
        wts = blocks.split(weights) if weights is not None else [None] * len(blocks)
        G = sum(blocks.map(_gram_block, means, wts))
        total = float(np.trace(G))
        T = G.shape[0]
        evals, V = scipy.linalg.eigh(G, subset_by_index=[T - n_extra, T - 1], overwrite_a=True)
        V = V[:, ::-1]
        Y = np.concatenate(blocks.map(_project_block, means, wts, [V] * len(blocks)))
        Q, R = np.linalg.qr(Y)  # Rayleigh-Ritz on span(V): exact SVD of X V
        Ur, s, Wt = np.linalg.svd(R)
        return Q @ Ur, s, (V @ Wt.T).T, total

    # ------------------------------------------------------------- results
    def _require_fitted(self):
        if not self.fitted:
            raise RuntimeError("SVD: call fit() (or from_dataset) first")
        return self.fitted

    @property
    def components(self) -> xr.DataArray:
        """Spatial modes ``(cell, mode)``, orthonormal in the weighted space."""
        f = self._require_fitted()
        return xr.DataArray(f["U"], dims=("cell", "mode"), coords=dict(
            cell=f["cells"], lat=f["lat"], lon=f["lon"], mode=np.arange(1, f["U"].shape[1] + 1)))

    def transform(self, X: xr.DataArray, label: str = "matrix") -> xr.DataArray:
        """Coefficients ``a = U^T (w (x - m))`` of each window: ``(mode, time)`` mm."""
        f = self._require_fitted()
        X = as_cell_time(X, label)
        values = _transformed(np.asarray(X.values), f["mean"], f["weights"])
        coeffs = f["U"].T @ values
        return xr.DataArray(coeffs, dims=("mode", "time"),
                            coords=dict(mode=np.arange(1, coeffs.shape[0] + 1), time=X["time"]))

    def inverse_transform(self, coeffs: xr.DataArray) -> xr.DataArray:
        """Reconstruction ``m + U a / w`` on the training cells: ``(cell, time)`` mm."""
        f = self._require_fitted()
        a = coeffs.transpose("mode", ...).values
        values = f["U"][:, : a.shape[0]] @ a
        if f["weights"] is not None:
            values = values / f["weights"][:, None]
        if f["mean"] is not None:
            values = values + f["mean"][:, None]
        other = [d for d in coeffs.dims if d != "mode"]
        return xr.DataArray(values, dims=("cell", *other),
                            coords={"cell": f["cells"], "lat": f["lat"], "lon": f["lon"],
                                    **{d: coeffs[d] for d in other if d in coeffs.coords}})

    def basis_for_projection(self) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """``(U, mean, weights)`` for gap filling (see :func:`precipmodes.evaluate.fill_gaps`)."""
        f = self._require_fitted()
        return f["U"], f["mean"], f["weights"]

    # ------------------------------------------------------------ datasets
    def to_dataset(self, lat: xr.DataArray, lon: xr.DataArray) -> xr.Dataset:
        """``svd.nc`` content on the grid ``(lat, lon)`` (1-D axes, e.g. of the land mask)."""
        f = self._require_fitted()
        n = f["U"].shape[1]
        mode = xr.DataArray(np.arange(1, n + 1, dtype=np.int32), dims="mode",
                            attrs={"long_name": "mode number (1 = largest singular value)"})
        s = f["s"]
        N = f["n_windows"]
        eig = s ** 2 / N
        err = eig * np.sqrt(2.0 / N)
        upper = np.concatenate([[np.inf], eig[:-1]])
        lower = np.concatenate([eig[1:], [f["s_next"] ** 2 / N]])
        separated = ((upper - eig) > err) & ((eig - np.nan_to_num(lower, nan=-np.inf)) > err)
        modes = unstack_cells(self.components, lat, lon).transpose("mode", "lat", "lon")
        ds = xr.Dataset(
            {
                "spatial_modes": modes.assign_attrs(
                    long_name="SVD spatial mode (left singular vector, unit norm over land cells)",
                    units="1", comment="NaN off land; in the sqrt(cos lat)-weighted space when area_weighting"),
                "singular_values": ("mode", s, {"long_name": "singular value", "units": "mm"}),
                "explained_variance_ratio": ("mode", s ** 2 / f["total"], {
                    "long_name": "fraction of the total squared Frobenius norm (of the centred and weighted "
                                 "matrix) explained by the mode", "units": "1"}),
                "eigenvalues": ("mode", eig, {"long_name": "s^2 / N: mean square per training window",
                                              "units": "mm2"}),
                "north_error": ("mode", err, {
                    "long_name": "North et al. (1982) sampling error of the eigenvalue, lambda sqrt(2/N)",
                    "units": "mm2", "comment": f"N = {N} training windows, no autocorrelation correction"}),
                "separated": ("mode", separated.astype(np.int8), {
                    "long_name": "1 when the gaps to both neighbouring eigenvalues exceed north_error",
                    "flag_values": np.array([0, 1], dtype=np.int8), "flag_meanings": "not_separated separated"}),
                "temporal_coefficients": (("mode", "time"), f["coeffs"], {
                    "long_name": "projection U^T x of each training window (S V^T)", "units": "mm"}),
            },
            coords={"mode": mode, "time": f["time"]},
            attrs={
                "method": f["method"], "center": int(self.center), "area_weighting": int(self.area_weighting),
                "n_windows": N, "n_zero_cells": f["n_zero_cells"], "total_sum_of_squares": f["total"],
                "sign_convention": "sum of loadings positive (dipoles: largest |loading| positive)",
            },
        )
        if f["mean"] is not None:
            mean = xr.DataArray(f["mean"], dims="cell", coords=dict(cell=f["cells"], lat=f["lat"], lon=f["lon"]))
            ds["mean"] = unstack_cells(mean, lat, lon).assign_attrs(
                long_name="training mean removed before the SVD", units="mm")
        return ds

    @classmethod
    def from_dataset(cls, ds: xr.Dataset, cells: xr.DataArray) -> "SVD":
        """Estimator from ``svd.nc`` for the cells of ``cells`` (a ``(cell, ...)`` array with lat/lon)."""
        model = cls(n_modes=ds.sizes["mode"], method=ds.attrs.get("method", "auto"),
                    center=bool(ds.attrs.get("center", 0)), area_weighting=bool(ds.attrs.get("area_weighting", 0)))
        pick = dict(lat=xr.DataArray(cells["lat"].values, dims="cell"), lon=xr.DataArray(cells["lon"].values, dims="cell"))
        U = ds["spatial_modes"].sel(pick, method="nearest").transpose("cell", "mode").values
        mean = ds["mean"].sel(pick, method="nearest").values if "mean" in ds else None
        model.fitted = dict(
            method=model.method, U=np.nan_to_num(U.astype(np.float64)), s=ds["singular_values"].values,
            s_next=np.nan, coeffs=ds["temporal_coefficients"].values, total=ds.attrs.get("total_sum_of_squares"),
            mean=None if mean is None else np.nan_to_num(mean.astype(np.float64)),
            weights=area_weights(cells["lat"].values) if model.area_weighting else None,
            n_windows=ds.sizes["time"], n_zero_cells=ds.attrs.get("n_zero_cells", 0),
            cells=cells["cell"], lat=cells["lat"], lon=cells["lon"], time=ds["time"])
        return model
