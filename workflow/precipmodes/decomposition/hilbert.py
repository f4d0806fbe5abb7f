"""Hilbert (complex) SVD: travelling patterns from the analytic signal of each cell's series.

``HilbertSVD(n_modes=2).fit(precip, dim="time")`` on a ``(cell, time)`` matrix or a
``(time, lat, lon)`` field (skeleton in :mod:`precipmodes.decomposition.base`). Method notes and
references: ``docs/methods/hilbert_ard.md``. In short:

* ``Xt = w (X - m)`` as in :class:`precipmodes.decomposition.svd.SVD` (``m`` the cell's training mean when
  ``center``, ``w = sqrt(cos lat)`` when ``area_weighting``);
* each cell's series is replaced by its analytic signal ``Xt + i H[Xt]`` along time
  (:func:`analytic_signal`), contiguous run by run (:func:`contiguous_runs`), with
  xeofs' exponential padding (``padding="exp"``) or none; the imaginary part's mean of each
  run is removed (padding shifts it; the real part stays ``Xt``);
* the complex matrix ``Z`` is decomposed exactly, ``Z ~= U S V^H`` (:func:`complex_svd`).

Each mode's phase is fixed so that its largest-amplitude loading is real and positive.
As in xeofs (which decomposes the ``(time, cell)`` matrix ``Z^T = A S B^H``), ``components()``
is ``B = conj(U)`` (complex, unit norm, dimensionless, in the weighted space) and ``scores()``
is ``S V^H`` (complex, mm), so ``Z ~= conj(B) S V^H``. ``components_phase()`` is ``arg(B)``
(radians): a mode's crest reaches a cell with a larger phase later, so for a travelling pattern
the phase increases along the direction of travel; ``scores_phase()`` ``arg(S V^H)`` advances with
time. The real data are modelled as ``m + Re(U S V^H) / w``.

Windows must be consecutive for a Hilbert transform. The training windows are split into
contiguous runs where the step to the next window exceeds the smallest step between windows
(the window length when the record holds back-to-back windows: a season per year, or windows
dropped by the split's rules, start a new run); each run is transformed on its own. Windows in
runs of fewer than :data:`MIN_RUN_WINDOWS` windows are left out of the fit (logged; their scores
are NaN, their ``run`` 0 in hilbert.nc); when no run is that long, or fewer windows than
``n_modes`` are left, the fit is refused (:class:`~precipmodes.errors.RankError`).

Missing entries (NaN): the same iterative imputation as :class:`~precipmodes.decomposition.svd.SVD`
(EM): start from each cell's observed mean, transform and decompose the filled matrix,
refill the missing entries with the rank ``n_modes`` model ``m + Re(U S V^H) / w``, repeat
until their relative RMS change is below ``gap_tol`` or ``gap_max_iter`` updates. The matrix
and its analytic signal are held in memory (complex128: 16 bytes per entry).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.signal
import xarray as xr

from precipmodes.decomposition.base import Decomposition, SingularSpectrum
from precipmodes.decomposition.constraints import Boolean, Interval, Options
from precipmodes.decomposition.matrix import area_weights
from precipmodes.errors import InputDataError, RankError
from precipmodes.linalg.blocks import MatrixScan

log = logging.getLogger("precipmodes")

PADDINGS = ("exp", "none")
MIN_RUN_WINDOWS = 3  # a transform of fewer windows has no frequency between 0 and Nyquist (no phase)


def contiguous_runs(time) -> list[slice]:
    """Slices of consecutive windows: a new run starts where the step exceeds the smallest step.

    ``time`` is the windows' (sorted) coordinate, datetime64 or numeric.
    """
    values = np.asarray(time)
    if values.size < 2:
        return [slice(0, values.size)]
    steps = np.diff(values)
    if np.issubdtype(steps.dtype, np.timedelta64):
        steps = steps / np.timedelta64(1, "s")
    steps = steps.astype(np.float64)
    if not (steps > 0).all():
        raise InputDataError("hilbert: the windows' time coordinate is not strictly increasing; "
                             "sort the windows by time")
    breaks = np.flatnonzero(steps > steps.min() * (1 + 1e-9)) + 1
    edges = np.concatenate([[0], breaks, [values.size]])
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def pad_exponential(y: np.ndarray, decay_factor: float) -> np.ndarray:
    """``y (cell, n)`` padded by ``n`` values on each side (xeofs' ``_pad_exp``): ``(cell, 3 n)``.

    The padding decays exponentially (``exp(-x / (n decay_factor))``) from the series' first
    and last residual about its least-squares line to that line, extended.
    """
    n = y.shape[1]
    x = np.arange(n)
    x_ext = np.arange(-n, 2 * n)
    slope, intercept = np.polynomial.polynomial.polyfit(x, y.T, deg=1)[::-1]
    line = intercept[:, None] + slope[:, None] * x
    line_ext = intercept[:, None] + slope[:, None] * x_ext
    residual = y - line
    decay = np.exp(-x / n / decay_factor)
    return np.concatenate([residual[:, :1] * decay[::-1], residual, residual[:, -1:] * decay], axis=1) + line_ext


def analytic_signal(Xt: np.ndarray, runs: list[slice], padding: str, decay_factor: float) -> np.ndarray:
    """Complex ``Xt + i H[Xt]`` along axis 1, run by run, each run's imaginary mean removed."""
    Z = np.empty(Xt.shape, dtype=np.complex128)
    for run in runs:
        y = Xt[:, run]
        n = y.shape[1]
        if padding == "exp":
            z = scipy.signal.hilbert(pad_exponential(y, decay_factor), axis=1)[:, n:2 * n]
        else:
            z = scipy.signal.hilbert(y, axis=1)
        z.imag -= z.imag.mean(axis=1, keepdims=True)
        Z[:, run] = z
    return Z


def complex_svd(Z: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """``(U (m, p), s (p,), Vh (p, n), ||Z||_F^2)`` of the ``p`` leading singular triplets of complex ``Z``.

    Leading eigenvectors of the Hermitian Gram matrix of the shorter side, then a Rayleigh-Ritz
    step (QR + SVD of the projection), which makes the singular vectors orthonormal to rounding.
    """
    m, n = Z.shape
    total = float(np.vdot(Z, Z).real)
    if n <= m:
        G = Z.conj().T @ Z
        _, V = scipy.linalg.eigh(G, subset_by_index=[n - p, n - 1], overwrite_a=True)
        Q, R = np.linalg.qr(Z @ V[:, ::-1])
        Ur, s, Wh = np.linalg.svd(R)
        return Q @ Ur, s, Wh @ V[:, ::-1].conj().T, total
    G = Z @ Z.conj().T
    _, U = scipy.linalg.eigh(G, subset_by_index=[m - p, m - 1], overwrite_a=True)
    Q, R = np.linalg.qr(Z.conj().T @ U[:, ::-1])  # Z^H U = Q R
    Vr, s, Wh = np.linalg.svd(R)  # Z^H U = Q Vr s Wh  ->  U^H Z = Wh^H s Vr^H Q^H
    return U[:, ::-1] @ Wh.conj().T, s, (Q @ Vr).conj().T, total


@dataclass
class HilbertSVD(SingularSpectrum, Decomposition):
    """Hilbert (complex) SVD of a ``(cell, time)`` matrix or a field. See the module docstring.

    Parameters
    ----------
    n_modes : int
        Number of complex modes.
    padding : {"exp", "none"}
        Exponential padding of each run before the transform (against edge effects), as xeofs.
    decay_factor : float
        Decay of the exponential padding, as a fraction of the run's length.
    center : bool
        Remove each cell's training mean first (anomalies; the usual choice for a Hilbert SVD).
    area_weighting : bool
        Weight cells by ``sqrt(cos lat)``.
    gap_max_iter, gap_tol
        Imputation of missing entries: most updates, and the relative RMS change that stops it.
    cell_chunk : int
        Cells per chunk of the input scan.

    Fitted attributes
    -----------------
    components_ : DataArray (cell, mode), complex
        ``B = conj(U)``, unit norm, dimensionless (weighted space), largest-amplitude loading real, > 0.
    scores_ : DataArray (mode, time), complex
        ``U^H Z = S V^H``, mm.
    singular_values_ : DataArray (mode,)
        mm. ``total_sum_of_squares_`` ``||Z||_F^2`` (mm^2), ``mean_``, ``weights_`` as :class:`SVD`.
    runs_ : list of slice
        The contiguous runs of windows transformed separately.
    """

    n_modes: int = 2
    padding: str = "exp"
    decay_factor: float = 0.2
    center: bool = True
    area_weighting: bool = False
    gap_max_iter: int = 100
    gap_tol: float = 1e-4
    cell_chunk: int = 20000

    mode_dim = "mode"
    rank_parameter = "n_modes"
    kind = "hilbert"
    config_section = "svd"  # svd.hilbert, and the SVD's center/area_weighting/gaps/cell_chunk
    config_keys = {"padding": ("hilbert", "padding"), "decay_factor": ("hilbert", "decay_factor"),
                   "center": ("hilbert", "center"), "area_weighting": ("area_weighting",),
                   "gap_max_iter": ("gaps", "max_iter"), "gap_tol": ("gaps", "tol"), "cell_chunk": ("cell_chunk",)}
    _parameter_constraints = {
        "padding": Options(PADDINGS), "decay_factor": Interval(integer=False, low=0, low_open=True),
        "center": Boolean(), "area_weighting": Boolean(), "gap_max_iter": Interval(integer=True, low=0),
        "gap_tol": Interval(integer=False, low=0), "cell_chunk": Interval(integer=True, low=1)}

    def _check_input(self, X: xr.DataArray, found: MatrixScan, label: str, source: str) -> None:
        time = X["time"].values
        runs = contiguous_runs(time)
        long = [r for r in runs if r.stop - r.start >= MIN_RUN_WINDOWS]
        if not long:
            longest = max(r.stop - r.start for r in runs)
            raise RankError(
                "training_windows",
                f"{label}: a Hilbert transform needs a run of at least {MIN_RUN_WINDOWS} consecutive windows; "
                f"the {time.size} training windows ({time[0]}..{time[-1]}) form {len(runs)} contiguous run(s), "
                f"the longest of {longest} window(s). Widen the training period (or its months), or use shorter "
                "windows, so that consecutive windows follow each other")
        n_used = sum(r.stop - r.start for r in long)
        if n_used < time.size:
            log.info("hilbert: %d of %d training windows lie in runs of fewer than %d consecutive windows; left out "
                     "of the fit", time.size - n_used, time.size, MIN_RUN_WINDOWS)
        if self.n_modes > n_used:
            raise RankError(
                "n_modes", f"{label}: n_modes = {self.n_modes} is larger than the {n_used} training windows in runs "
                           f"of at least {MIN_RUN_WINDOWS} consecutive windows; lower n_modes or widen the "
                           "training period")
        self.runs_ = long

    # ------------------------------------------------------------------ fit
    def _transform(self, X: np.ndarray, mean: np.ndarray | None, weights: np.ndarray | None,
                   runs: list[slice]) -> np.ndarray:
        Xt = X - mean[:, None] if mean is not None else X.copy()
        if weights is not None:
            Xt *= weights[:, None]
        return analytic_signal(Xt, runs, self.padding, self.decay_factor)

    def _fit_cells(self, Xk: xr.DataArray, found: MatrixScan, keep: np.ndarray) -> None:
        used = np.concatenate([np.arange(r.start, r.stop) for r in self.runs_])  # windows in the runs
        X = np.array(Xk.values[:, used], dtype=np.float64)
        starts = np.cumsum([0] + [r.stop - r.start for r in self.runs_])
        local_runs = [slice(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:])]
        m, n_windows = X.shape
        weights = area_weights(Xk["lat"].values) if self.area_weighting else None
        p = min(self.n_modes + 1, m, n_windows)
        missing = np.isnan(X)
        observed = (~missing).sum(axis=1)
        if missing.any():
            rows, cols = np.nonzero(missing)
            fill = (np.nansum(X, axis=1) / np.maximum(observed, 1))[rows]
        mean = None

        def decompose(fill):
            nonlocal mean
            if missing.any():
                X[rows, cols] = fill
            mean = X.mean(axis=1) if self.center else None
            return complex_svd(self._transform(X, mean, weights, local_runs), p)

        U, s, Vh, total = decompose(fill if missing.any() else None)
        if missing.any():
            self.gap_method_ = ("iterative imputation (EM): missing entries refilled with the rank-n_modes "
                                "model m + Re(U S V^H) / w, start at each cell's observed mean")
            k = self.n_modes
            change = np.nan
            for update in range(1, self.gap_max_iter + 1):
                model = np.einsum("ij,j,ji->i", U[rows, :k], s[:k], Vh[:k, cols]).real
                if weights is not None:
                    model /= weights[rows]
                if mean is not None:
                    model += mean[rows]
                change = float(np.linalg.norm(model - fill) / max(np.linalg.norm(model), 1e-300))
                fill = model
                U, s, Vh, total = decompose(fill)
                self.gap_iterations_ = update
                if change < self.gap_tol:
                    break
            else:
                if self.gap_max_iter > 0:
                    self._warn_not_converged(
                        f"gap_max_iter = {self.gap_max_iter} imputation updates ended before the missing entries' "
                        f"relative RMS change ({change:.3g}) fell below gap_tol = {self.gap_tol}", stacklevel=5)
        self._keep_modes(U, s, Vh, total, mean, keep, used, n_windows)

    def _keep_modes(self, U: np.ndarray, s: np.ndarray, Vh: np.ndarray, total: float, mean: np.ndarray | None,
                    keep: np.ndarray, used: np.ndarray, n_windows: int) -> None:
        """The fitted attributes from the complex SVD ``U S V^H`` of the windows ``used`` (each mode turned so its
        peak loading is real and positive; NaN scores at the windows left out)."""
        n_cells = keep.size
        n = self.n_modes
        peak = U[np.abs(U[:, :n]).argmax(axis=0), np.arange(n)]
        rotation = np.abs(peak) / np.where(peak == 0, 1, peak)  # makes each mode's peak loading real, > 0
        modes = np.zeros((n_cells, n), dtype=np.complex128)
        modes[keep] = U[:, :n] * rotation
        self.components_ = self._labelled_basis(modes.conj())
        scores = np.full((n, self.time_.size), np.nan, dtype=np.complex128)  # NaN: windows left out
        scores[:, used] = s[:n, None] * Vh[:n] / rotation[:, None]
        self.scores_ = self._labelled_scores(scores, self.time_)
        self.singular_values_ = xr.DataArray(s[:n], dims="mode", coords={"mode": np.arange(1, n + 1)})
        self.total_sum_of_squares_ = float(total)
        self.mean_ = None if mean is None else xr.DataArray(self._cell_array(mean, keep), dims="cell",
                                                             coords=self._cell_coords())
        self.weights_ = (xr.DataArray(area_weights(self.cells_["lat"].values), dims="cell",
                                      coords=self._cell_coords()) if self.area_weighting else None)
        self.n_windows_ = n_windows
        log.info("hilbert: %d cells x %d windows in %d contiguous run(s), %d complex modes explain %.1f%% of the "
                 "total", n_cells, n_windows, len(self.runs_), n, 100 * float((s[:n] ** 2).sum() / total))

    # ------------------------------------------------------------- results
    def projection_basis(self):
        """``(U = conj(B) (cell, mode) complex, mean or None, weights or None)`` on the fitted cells:
        ``Z = U scores`` (so :meth:`inverse_transform` gives the analytic signal, its real part the data)."""
        self._require_fitted()
        return (self.components_.values.conj(), None if self.mean_ is None else self.mean_.values,
                None if self.weights_ is None else self.weights_.values)

    def _training_scores(self) -> xr.DataArray:
        return self.scores_

    def transform(self, X, label: str = "matrix"):
        """Not available: the analytic signal of new windows depends on the windows around them."""
        raise NotImplementedError("HilbertSVD has no transform of new windows (their analytic signal needs "
                                  "the series around them); use scores() of the fitted windows")

    def components(self) -> xr.DataArray:
        """Complex patterns ``B = conj(U)`` (xeofs' convention), layout as :meth:`Decomposition.components`."""
        return super().components().conj()

    def components_amplitude(self) -> xr.DataArray:
        """``|U|`` of each mode: where the pattern is strong (dimensionless, layout of :meth:`components`)."""
        return abs(self.components()).rename("components_amplitude")

    def components_phase(self) -> xr.DataArray:
        """``arg(B)`` (radians, -pi..pi): the mode's crest arrives later where it is larger."""
        return xr.apply_ufunc(np.angle, self.components()).rename("components_phase")

    def scores_amplitude(self) -> xr.DataArray:
        """``|S V^H|`` of each mode and window, mm."""
        return abs(self.scores()).rename("scores_amplitude")

    def scores_phase(self) -> xr.DataArray:
        """``arg(S V^H)`` (radians): advances with time as the pattern travels."""
        return xr.apply_ufunc(np.angle, self.scores()).rename("scores_phase")

    # ------------------------------------------------------------ datasets
    def _dataset(self, on_grid) -> xr.Dataset:
        """``hilbert.nc``: amplitude and phase maps, complex scores as real and imaginary parts."""
        n = self.components_.sizes["mode"]
        mode = xr.DataArray(np.arange(1, n + 1, dtype=np.int32), dims="mode",
                            attrs={"long_name": "complex mode number (1 = largest singular value)"})
        patterns = on_grid(self.components_.transpose("mode", "cell"))
        run = np.zeros(self.time_.size, dtype=np.int32)
        for i, r in enumerate(self.runs_):
            run[r] = i + 1
        s = self.singular_values_.values
        ds = xr.Dataset(
            {
                "amplitude": abs(patterns).drop_vars("mode").assign_attrs(
                    long_name="amplitude |B| of the complex Hilbert mode (unit norm over the fitted cells)",
                    units="1", comment="NaN where no cell was fitted; in the sqrt(cos lat)-weighted space when "
                                       "area_weighting"),
                "phase": xr.apply_ufunc(np.angle, patterns).drop_vars("mode").assign_attrs(
                    long_name="phase arg(B) of the complex Hilbert mode: the mode's crest reaches a cell with a "
                              "larger phase later", units="rad",
                    comment="largest-amplitude cell at phase 0; xeofs' components_phase convention"),
                "scores_real": (("mode", "time"), self.scores_.values.real, {
                    "long_name": "real part of the complex score S V^H of each training window", "units": "mm"}),
                "scores_imag": (("mode", "time"), self.scores_.values.imag, {
                    "long_name": "imaginary part of the complex score S V^H of each training window",
                    "units": "mm"}),
                "singular_values": ("mode", s, {"long_name": "singular value of the analytic signal",
                                                "units": "mm"}),
                "explained_variance_ratio": ("mode", s ** 2 / self.total_sum_of_squares_, {
                    "long_name": "fraction of the analytic signal's squared Frobenius norm explained by the mode",
                    "units": "1"}),
                "run": ("time", run, {
                    "long_name": "contiguous run of consecutive windows the window's Hilbert transform was "
                                 "taken in (0: in a run too short, left out of the fit)", "units": "1"}),
            },
            coords={"mode": mode, "time": self.time_.values},
            attrs={"padding": self.padding, "decay_factor": float(self.decay_factor), "center": int(self.center),
                   "area_weighting": int(self.area_weighting), "n_windows": int(self.n_windows_),
                   "n_runs": len(self.runs_), "n_zero_cells": int(self.n_zero_cells_),
                   "total_sum_of_squares": float(self.total_sum_of_squares_),
                   "model": "Z = analytic signal of w (X - m) per contiguous run = conj(B) S V^H; "
                            "data = m + Re(conj(B) scores) / w"},
        )
        if self.mean_ is not None:
            ds["mean"] = on_grid(self.mean_).assign_attrs(long_name="training mean removed before the transform",
                                                          units="mm")
        return ds

    @classmethod
    def _from_attrs(cls, ds: xr.Dataset) -> "HilbertSVD":
        a = ds.attrs
        return cls(n_modes=ds.sizes["mode"], padding=a.get("padding", "exp"),
                   decay_factor=float(a.get("decay_factor", 0.2)), center=bool(a.get("center", 1)),
                   area_weighting=bool(a.get("area_weighting", 0)))

    def _restore(self, ds: xr.Dataset, cells: xr.DataArray) -> None:
        amplitude = self._pick(ds["amplitude"].transpose("mode", ...), cells)
        phase = self._pick(ds["phase"].transpose("mode", ...), cells)
        self.components_ = self._labelled_basis(amplitude * np.exp(1j * phase))
        self.scores_ = self._labelled_scores(ds["scores_real"].values + 1j * ds["scores_imag"].values, ds["time"])
        self.singular_values_ = ds["singular_values"].reset_coords(drop=True)
        self.total_sum_of_squares_ = float(ds.attrs["total_sum_of_squares"])
        self.mean_ = (xr.DataArray(self._pick(ds["mean"], cells), dims="cell", coords=self._cell_coords())
                      if "mean" in ds else None)
        self.weights_ = (xr.DataArray(area_weights(cells["lat"].values), dims="cell", coords=self._cell_coords())
                         if self.area_weighting else None)
        run = ds["run"].values
        self.runs_ = [slice(int(i[0]), int(i[-1]) + 1)
                      for i in (np.flatnonzero(run == r) for r in np.unique(run[run > 0]))]
        self.n_windows_ = int((run > 0).sum())
