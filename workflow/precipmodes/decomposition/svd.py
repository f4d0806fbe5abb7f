"""Chunked SVD of the land-cell x window matrix (EOFs / principal patterns).

:class:`SVD` is an estimator in the style of xeofs (skeleton in :mod:`precipmodes.decomposition.base`):
``SVD(n_modes=25, center=True, area_weighting=True).fit(precip, dim="time")`` on a
``(cell, time)`` matrix or a ``(time, lat, lon)`` field with NaN where there is no data;
``components()`` ``(mode, lat, lon)`` / ``(cell, mode)``, ``scores()`` ``(mode, time)``,
``singular_values()``, ``explained_variance_ratio()``; ``transform`` new windows to
coefficients, ``inverse_transform`` back to cells; ``to_dataset`` for ``svd.nc``.

Methods (``svd.method``; the narrative, measurements and references: ``docs/methods/decomposition.md``):
``gram`` (method of snapshots: the leading eigenvectors of the windows x windows Gram matrix, then a
Rayleigh-Ritz step; two passes over X; ``gram_dtype`` the dtype of the Gram products), ``tsqr``
(``dask.array.linalg.svd``), ``randomized`` (``dask.array.linalg.svd_compressed``, ``power_iterations``
QR-orthonormalised power iterations), ``auto`` (``gram`` while windows <= ``gram_max_windows``, else
``randomized``). The kernels are :mod:`precipmodes.linalg.gram`.

The fitted matrix is ``Xt = w * (X - m)``: ``m`` the per-cell training mean when ``center``, ``w =
sqrt(cos lat)`` when ``area_weighting``, else 1. ``Xt = U S V^T``; ``spatial_modes`` are the columns of U
(orthonormal, dimensionless, in the weighted space), ``temporal_coefficients`` ``= U^T Xt = S V^T`` (mm, the
same numbers :meth:`SVD.transform` gives for a window). Each mode's loadings sum to a positive number (a pure
dipole: its largest |loading| is positive; :func:`~precipmodes.linalg.gram.sign_convention`). All-zero
training cells are kept out of the fit, their loading exactly 0.

Missing entries (NaN): iterative EOF imputation (DINEOF, EM), each update one warm-started subspace
iteration, until the missing entries' relative RMS change is below ``gap_tol``, or the residual of the
observed entries fell by at most ``gap_tol`` over the last ``STOP_WINDOW`` (20) updates, or after
``gap_max_iter`` updates (then a ConvergenceWarning). With nothing missing the dense path runs unchanged.

``explained_variance_ratio = s_k^2 / ||Xt||_F^2`` (of the total, all modes).
Eigenvalues: ``lambda_k = s_k^2 / N`` here (mean square per window); eofs and xeofs
divide by ``N - 1`` (their ``eigenvalues()`` = ours ``* N / (N - 1)``).
North et al. (1982): eigenvalue ``lambda_k = s_k^2 / N`` (mm^2, mean square per
window), its sampling error ``lambda_k sqrt(2 / N)`` with ``N`` the number of training
windows (no correction for autocorrelation: an optimistic error) and beside it
``north_error_effective`` from the effective sample size ``N (1 - r1) / (1 + r1)``
(:mod:`precipmodes.diagnostics.significance`); ``separated(mode)`` is 1 when the gaps to both
neighbours exceed the effective errors.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
import xarray as xr

from precipmodes.decomposition.base import Decomposition, SingularSpectrum
from precipmodes.decomposition.constraints import Boolean, Interval, Options
from precipmodes.decomposition.matrix import area_weights
from precipmodes.diagnostics.significance import north_test
from precipmodes.linalg.blocks import CellBlocks, MatrixScan, missing_indices
from precipmodes.linalg.dineof import fill_change, refilled
from precipmodes.linalg.gram import fill_dask_block, gram_svd, sign_convention, subspace_step
from precipmodes.linalg.hals import STOP_WINDOW
from precipmodes.linalg.nnls import lstsq_gram

log = logging.getLogger("precipmodes")

METHODS = ("auto", "gram", "tsqr", "randomized")
GRAM_DTYPES = ("float64", "float32")


@dataclass
class SVD(SingularSpectrum, Decomposition):
    """Truncated SVD (EOF analysis) of a ``(cell, time)`` matrix or a field. See the module docstring.

    Parameters
    ----------
    n_modes : int
        Number of modes kept.
    method : {"auto", "gram", "tsqr", "randomized"}
        Route to the SVD (module docstring).
    center : bool
        Remove each cell's training mean first (anomalies).
    area_weighting : bool
        Weight cells by ``sqrt(cos lat)``.
    gram_max_windows, power_iterations, cell_chunk, seed
        Route details: ``auto`` uses ``gram`` up to ``gram_max_windows`` windows; randomized
        power iterations and seed; cells per chunk of a pass.
    gram_dtype : {"float64", "float32"}
        Precision of the Gram products (``gram`` route). ``float32`` costs less (27 % less CPU
        at 300,000 x 2,200); the Rayleigh-Ritz step stays float64, so the singular values keep
        ~1e-9 relative accuracy, the modes ~1e-5 (docs/methods/decomposition.md).
    gap_max_iter : int
        Most imputation updates when entries are missing (0: one fit of the mean-filled matrix).
    gap_tol : float
        Stop imputing when the missing entries' relative RMS change is below this, or when the
        observed entries' residual fell by at most this (relative) over the last 20 updates.

    Fitted attributes (``(cell,)`` over the fitted cells, zero cells included)
    -------------------------------------------------------------------------
    spatial_modes_ : DataArray (cell, mode)
        Columns of U, orthonormal, dimensionless, in the weighted space.
    singular_values_ : DataArray (mode,)
        mm.
    temporal_coefficients_ : DataArray (mode, time)
        ``U^T Xt = S V^T``, mm.
    mean_ : DataArray (cell,) or None
        Removed mean, mm (``center``).
    weights_ : DataArray (cell,) or None
        ``sqrt(cos lat)`` (``area_weighting``).
    total_sum_of_squares_ : float
        ``||Xt||_F^2``, mm^2 (of the filled matrix when entries are missing).
    method_ : str
        The route used. ``next_singular_value_`` (mode ``n_modes + 1``, NaN when unknown),
        ``n_windows_``, ``n_zero_cells_`` and the gap attributes of :mod:`precipmodes.decomposition.base`.
    """

    n_modes: int = 25
    method: str = "auto"
    center: bool = False
    area_weighting: bool = False
    gram_max_windows: int = 20000
    gram_dtype: str = "float64"
    power_iterations: int = 4
    cell_chunk: int = 20000
    seed: int = 0
    gap_max_iter: int = 100
    gap_tol: float = 1e-4

    mode_dim = "mode"
    rank_parameter = "n_modes"
    kind = "svd"
    config_section = "svd"
    config_keys = {"method": ("method",), "center": ("center",), "area_weighting": ("area_weighting",),
                   "gram_max_windows": ("gram_max_windows",), "gram_dtype": ("gram_dtype",),
                   "power_iterations": ("power_iterations",), "cell_chunk": ("cell_chunk",),
                   "gap_max_iter": ("gaps", "max_iter"), "gap_tol": ("gaps", "tol")}
    _parameter_constraints = {
        "method": Options(METHODS), "center": Boolean(), "area_weighting": Boolean(),
        "gram_max_windows": Interval(integer=True, low=1), "gram_dtype": Options(GRAM_DTYPES),
        "power_iterations": Interval(integer=True, low=0), "cell_chunk": Interval(integer=True, low=1),
        "seed": Interval(integer=True, low=0), "gap_max_iter": Interval(integer=True, low=0),
        "gap_tol": Interval(integer=False, low=0)}

    def choose_method(self, n_windows: int) -> str:
        """The route for ``n_windows`` windows (``auto``: gram up to ``gram_max_windows``)."""
        self._check_parameters()
        if self.method != "auto":
            return self.method
        return "gram" if n_windows <= self.gram_max_windows else "randomized"

    # ------------------------------------------------------------------ fit
    def _fit_cells(self, Xk: xr.DataArray, found: MatrixScan, keep: np.ndarray) -> None:
        n_cells = keep.size
        m, n_windows = Xk.shape
        weights = area_weights(Xk["lat"].values) if self.area_weighting else None
        method = self.choose_method(n_windows)
        n_extra = min(self.n_modes + 1, m, n_windows)
        if int(found.observed_cells[keep].sum()) == m * n_windows:
            mean = (found.row_sum[keep] / n_windows) if self.center else None
            U, s, Vt, total = self._decompose(Xk, mean, weights, n_extra, method, None)
        else:
            U, s, Vt, total, mean = self._fit_gappy(Xk, found.row_sum[keep], found.observed_cells[keep],
                                                    weights, n_extra, method)
        n = self.n_modes
        flip = sign_convention(U[:, :n])
        modes = np.zeros((n_cells, n))
        modes[keep] = U[:, :n] * flip
        self.method_ = method
        self.spatial_modes_ = self._labelled_basis(modes)
        self.singular_values_ = xr.DataArray(s[:n], dims="mode", coords={"mode": np.arange(1, n + 1)})
        self.next_singular_value_ = float(s[n]) if s.size > n else np.nan
        self.temporal_coefficients_ = self._labelled_scores((s[:n, None] * Vt[:n]) * flip[:, None], self.time_)
        self.total_sum_of_squares_ = float(total)
        self.mean_ = None if mean is None else xr.DataArray(self._cell_array(mean, keep), dims="cell",
                                                             coords=self._cell_coords())
        self.weights_ = (xr.DataArray(area_weights(self.cells_["lat"].values), dims="cell", coords=self._cell_coords())
                         if self.area_weighting else None)
        self.n_windows_ = n_windows
        log.info("svd: %s route, %d cells x %d windows, %d modes explain %.1f%% of the total",
                 method, n_cells, n_windows, n, 100 * float((s[:n] ** 2).sum() / total))

    def _decompose(self, X, mean, weights, n_extra, method, fills):
        """``(U, s, Vt, ||Xt||^2)`` of ``Xt = w (X - m)`` (``fills``: per chunk (missing indices, values))."""
        if method == "gram":
            U, s, Vt, total = gram_svd(CellBlocks(X, self.cell_chunk), mean, weights, n_extra, fills,
                                       np.dtype(self.gram_dtype))
        else:
            Xd = self._dask(X, mean, weights, fills)
            if method == "tsqr":
                Ud, sd, Vtd = da.linalg.svd(Xd)
                U, s_all, Vt = dask.compute(Ud[:, :n_extra], sd, Vtd[:n_extra])
                s, total = s_all[:n_extra], float(np.sum(s_all.astype(np.float64) ** 2))
            else:
                Ud, sd, Vtd = da.linalg.svd_compressed(
                    Xd, k=n_extra, n_power_iter=self.power_iterations, iterator="QR",
                    n_oversamples=max(10, n_extra), seed=self.seed, compute=False)
                U, s, Vt, total = dask.compute(Ud, sd, Vtd, (Xd ** 2).sum())
        return (np.asarray(U, dtype=np.float64), np.asarray(s, dtype=np.float64),
                np.asarray(Vt, dtype=np.float64), float(total))

    def _dask(self, X, mean, weights, fills=None) -> da.Array:
        data = X.data if isinstance(X.data, da.Array) else da.from_array(
            X.values, chunks=(self.cell_chunk, -1))
        data = data.rechunk({1: -1}).astype(np.float64)
        if fills is not None:
            data = data.map_blocks(functools.partial(fill_dask_block, fills=fills), dtype=np.float64)
        if mean is not None:
            data = data - da.from_array(mean, chunks=(data.chunks[0],))[:, None]
        if weights is not None:
            data = data * da.from_array(weights, chunks=(data.chunks[0],))[:, None]
        return data

    def _fit_gappy(self, Xk, row_sum, observed, weights, n_extra, method):
        """Iterative EOF imputation (module docstring): ``(U, s, Vt, total, mean or None)``.

        An in-memory matrix is copied once to a filled float64 matrix updated in place (passes
        without copies); a dask matrix is filled chunk by chunk on every pass.
        """
        blocks = CellBlocks(Xk, self.cell_chunk)
        n_windows = Xk.sizes["time"]
        missing = missing_indices(blocks)
        rows = [s.start + idx // n_windows for s, idx in zip(blocks.slices, missing)]
        cols = [idx % n_windows for idx in missing]
        fill = [(row_sum / observed)[r] for r in rows]
        filled = None if blocks.lazy else np.array(Xk.values, dtype=np.float64)

        def mean_of(fill):
            if not self.center:
                return None
            filled_sum = row_sum + np.bincount(np.concatenate(rows), np.concatenate(fill), minlength=row_sum.size)
            return filled_sum / n_windows

        def fills_of(fill):
            """Per-chunk fills for a dask matrix; for the in-memory one, write them into ``filled``."""
            if filled is None:
                return list(zip(missing, fill))
            for r, c, values in zip(rows, cols, fill):
                filled[r, c] = values
            return None

        mean = mean_of(fill)
        fills = fills_of(fill)
        if filled is not None:
            Xk = Xk.copy(data=filled)
            blocks = CellBlocks(Xk, self.cell_chunk)
        U, s, Vt, total = self._decompose(Xk, mean, weights, n_extra, method, fills)
        k = self.n_modes
        self.gap_method_ = "iterative EOF imputation (DINEOF/EM), start at each cell's observed mean"
        change = np.nan
        residual = []  # ||M o (Xt - rank-k model)||_F (observed entries, transformed space) of each update's fit
        for update in range(1, self.gap_max_iter + 1):
            new = refilled(U[:, :k] * s[:k], Vt[:k].T, rows, cols, weights, mean)
            change, diff2_t = fill_change(new, fill, rows, weights)
            # the fit's residual ||Xt - U_k S_k V_k^T||^2 = total - sum s_k^2, less its missing entries' part
            residual.append(float(np.sqrt(max(total - float(s[:k] @ s[:k]) - diff2_t, 0.0))))
            fill = new
            mean = mean_of(fill)
            U, s, Vt, total = subspace_step(blocks, mean, weights, fills_of(fill), Vt)
            self.gap_iterations_ = update
            log.info("svd: imputation update %d, relative RMS change of the missing entries %.3g, residual of the "
                     "observed entries %.6g mm", update, change, residual[-1])
            if change < self.gap_tol:
                break
            if update > STOP_WINDOW and residual[-1 - STOP_WINDOW] - residual[-1] <= self.gap_tol * residual[-1]:
                log.info("svd: imputation stopped: the observed entries' residual fell by at most gap_tol = %g "
                         "(relative) over the last %d updates", self.gap_tol, STOP_WINDOW)
                break
        else:
            self._warn_imputation_unfinished(change)
        return U, s, Vt, total, mean

    def _warn_imputation_unfinished(self, change: float) -> None:
        """ConvergenceWarning (at the user's ``fit`` call) that ``gap_max_iter`` updates ended the imputation."""
        if self.gap_max_iter > 0:
            self._warn_not_converged(
                f"gap_max_iter = {self.gap_max_iter} imputation updates ended before the missing entries' "
                f"relative RMS change ({change:.3g}) fell below gap_tol = {self.gap_tol} or the observed "
                f"entries' residual stopped falling by more than gap_tol over {STOP_WINDOW} updates",
                stacklevel=6)

    # ------------------------------------------------------------- results
    def projection_basis(self):
        """``(U (cell, mode), mean or None, weights or None)``, float64 on the fitted cells."""
        self._require_fitted()
        return (self.spatial_modes_.values, None if self.mean_ is None else self.mean_.values,
                None if self.weights_ is None else self.weights_.values)

    def _training_scores(self) -> xr.DataArray:
        return self.temporal_coefficients_

    def eigenvalues(self) -> xr.DataArray:
        """``s_k^2 / N`` by mode (mm^2, mean square per training window; eofs/xeofs use ``N - 1``)."""
        self._require_fitted()
        return (self.singular_values_ ** 2 / self.n_windows_).rename("eigenvalues")

    def _full_window_coefficients(self, target, method):
        return self.spatial_modes_.values.T @ target  # U^T w (x - m): U is orthonormal

    def _solve_gram(self, G, c, method):
        return lstsq_gram(G, c)

    def transform(self, X: xr.DataArray, label: str = "matrix") -> xr.DataArray:
        """Coefficients ``a = U^T (w (x - m))`` of each window: ``(mode, time)`` mm.

        Windows with missing cells: least squares on the observed rows of U.
        """
        return super().transform(X, None, label)

    # ------------------------------------------------------------ datasets
    def _dataset(self, on_grid) -> xr.Dataset:
        """``svd.nc`` variables and attributes (see :meth:`Decomposition.to_dataset`)."""
        n = self.spatial_modes_.sizes["mode"]
        mode = xr.DataArray(np.arange(1, n + 1, dtype=np.int32), dims="mode",
                            attrs={"long_name": "mode number (1 = largest singular value)"})
        s = self.singular_values_.values
        N = self.n_windows_
        north = north_test(s, self.next_singular_value_, N, self.temporal_coefficients_)
        eig, err = north["eigenvalues"], north["north_error"]
        modes = on_grid(self.spatial_modes_.transpose("mode", "cell"))
        ds = xr.Dataset(
            {
                "spatial_modes": modes.drop_vars("mode").assign_attrs(
                    long_name="SVD spatial mode (left singular vector, unit norm over land cells)",
                    units="1", comment="NaN off land; in the sqrt(cos lat)-weighted space when area_weighting"),
                "singular_values": ("mode", s, {"long_name": "singular value", "units": "mm"}),
                "explained_variance_ratio": ("mode", s ** 2 / self.total_sum_of_squares_, {
                    "long_name": "fraction of the total squared Frobenius norm (of the centred and weighted "
                                 "matrix) explained by the mode", "units": "1"}),
                "eigenvalues": ("mode", eig, {"long_name": "s^2 / N: mean square per training window",
                                              "units": "mm2",
                                              "comment": "eofs and xeofs divide by N - 1 instead of N"}),
                "north_error": ("mode", err, {
                    "long_name": "North et al. (1982) sampling error of the eigenvalue, lambda sqrt(2/N)",
                    "units": "mm2", "comment": f"N = {N} training windows, no autocorrelation correction"}),
                "lag1_autocorrelation": ("mode", north["lag1_autocorrelation"], {
                    "long_name": "lag-1 autocorrelation of the temporal coefficients (windows one step apart)",
                    "units": "1"}),
                "n_effective": ("mode", north["n_effective"], {
                    "long_name": "effective number of independent windows N (1 - r1) / (1 + r1)", "units": "1"}),
                "north_error_effective": ("mode", north["north_error_effective"], {
                    "long_name": "North et al. (1982) sampling error with the effective sample size, "
                                 "lambda sqrt(2/n_effective)", "units": "mm2"}),
                "separated": ("mode", north["separated"].astype(np.int8), {
                    "long_name": "1 when the gaps to both neighbouring eigenvalues exceed north_error_effective "
                                 "(of the mode and of the neighbour)",
                    "flag_values": np.array([0, 1], dtype=np.int8), "flag_meanings": "not_separated separated"}),
                "temporal_coefficients": (("mode", "time"), self.temporal_coefficients_.values, {
                    "long_name": "projection U^T x of each training window (S V^T)", "units": "mm"}),
            },
            coords={"mode": mode, "time": self.time_.values},
            attrs={
                "method": self.method_, "center": int(self.center), "area_weighting": int(self.area_weighting),
                "n_windows": N, "n_zero_cells": self.n_zero_cells_, "total_sum_of_squares": self.total_sum_of_squares_,
                "sign_convention": "sum of loadings positive (dipoles: largest |loading| positive)",
            },
        )
        if self.mean_ is not None:
            ds["mean"] = on_grid(self.mean_).assign_attrs(
                long_name="training mean removed before the SVD", units="mm")
        return ds

    @classmethod
    def _from_attrs(cls, ds: xr.Dataset) -> "SVD":
        a = ds.attrs
        return cls(n_modes=ds.sizes["mode"], method=a.get("method", "auto"), center=bool(a.get("center", 0)),
                   area_weighting=bool(a.get("area_weighting", 0)))

    def _restore(self, ds: xr.Dataset, cells: xr.DataArray) -> None:
        self.method_ = self.method
        self.spatial_modes_ = self._labelled_basis(self._pick(ds["spatial_modes"].transpose("mode", ...), cells))
        self.singular_values_ = ds["singular_values"].reset_coords(drop=True)
        self.next_singular_value_ = np.nan
        self.temporal_coefficients_ = self._labelled_scores(ds["temporal_coefficients"].values, ds["time"])
        self.total_sum_of_squares_ = ds.attrs.get("total_sum_of_squares")
        self.mean_ = (xr.DataArray(self._pick(ds["mean"], cells), dims="cell", coords=self._cell_coords())
                      if "mean" in ds else None)
        self.weights_ = (xr.DataArray(area_weights(cells["lat"].values), dims="cell", coords=self._cell_coords())
                         if self.area_weighting else None)
        self.n_windows_ = ds.sizes["time"]
