"""Non-negative matrix factorisation of the land-cell x window matrix.

``X (cell, time) ~= W H`` with ``W (cell, component) >= 0`` the spatial basis and
``H (component, time) >= 0`` the activations. Two solvers (``nmf.solver``):

* ``hals`` (ours): accelerated hierarchical alternating least squares (Gillis &
  Glineur 2012) on Gram matrices, one pass over X per iteration (kernels and stopping
  rule in :mod:`precipmodes.linalg.hals`). Stops when the relative error fell by at most ``tol``
  (relative) over the last 20 iterations; a ConvergenceWarning when ``max_iter`` ends the fit.
  Missing entries (NaN) are handled by EM inside the same loop (refilled with the
  current ``W H`` every iteration); the masked objective never increases.
* ``sklearn``: ``sklearn.decomposition.NMF(solver='cd')`` on the in-memory matrix,
  for parity with the seed (``NMF(n_components=25, init='nndsvd', max_iter=5000)``).

Init ``nndsvd``/``nndsvda`` (Boutsidis & Gallopoulos 2008, as scikit-learn, from our
exact SVD of X; with missing entries, of the gap-aware SVD's imputed X) or
``random`` (scikit-learn's recipe, seeded). Regularisation follows scikit-learn's
objective for X (n_samples = cells, n_features = windows):
``0.5||X - WH||^2 + alpha_W * windows * (l1_ratio |W|_1 + 0.5 (1 - l1_ratio) ||W||^2)
+ alpha_H * cells * (l1_ratio |H|_1 + 0.5 (1 - l1_ratio) ||H||^2)``.

Results: ``basis`` normalised to max 1 per component with the scale moved into the
activations (so ``activations`` are mm at the component's peak cell), components
ordered by total activation (sum over training windows), descending; relative
reconstruction error ``||X - WH||_F / ||X||_F``. All-zero training cells are kept out
of the fit and get basis 0 (exactly what the full problem gives them). Negative or
infinite values are refused, naming the cells, windows and upstream file; NaN entries
are missing data (``hals`` only). With missing entries the error is over the observed
entries, ``||M o (X - WH)||_F / ||M o X||_F``.

ARD (``ard=True``, config ``nmf.ard``; ``hals`` only): ``n_components`` is the most
components ``k_max``; relevance weights per component are updated with the factors
(:mod:`precipmodes.linalg.ard`, Tan & Févotte 2013, Euclidean cost), the fit stops when they
settle (changed by at most ``tol``, relative, over 20 iterations), and components whose
relevance fell below ``ard_threshold`` are pruned: ``n_components_`` are kept,
``relevance_`` lists all ``k_max`` in descending order. Method notes: ``docs/methods/hilbert_ard.md``.

``NMF(n_components=25).fit(precip, dim="time")`` also takes a field ``(time, lat, lon)``;
``components()`` is the basis, ``scores()`` the activations (see :mod:`precipmodes.decomposition.base`).
"""

from __future__ import annotations

import logging
import time as _time
from dataclasses import dataclass

import numpy as np
import xarray as xr

from precipmodes.decomposition.base import Decomposition
from precipmodes.decomposition.constraints import Boolean, Interval, Options
from precipmodes.decomposition.matrix import describe_cells, describe_windows
from precipmodes.decomposition.svd import SVD
from precipmodes.errors import InputDataError, ParameterError
from precipmodes.linalg.ard import PRUNE_THRESHOLD, ArdPrior
from precipmodes.linalg.blocks import CellBlocks, MatrixScan, missing_indices
from precipmodes.linalg.hals import H_WARMUP, fit_hals, nndsvd, random_init
from precipmodes.linalg.nnls import lstsq_gram, nnls_gram

log = logging.getLogger("precipmodes")

SOLVERS = ("hals", "sklearn")
INITS = ("nndsvd", "nndsvda", "random")
PROJECTIONS = ("nnls", "pinv")


@dataclass
class NMF(Decomposition):
    """NMF estimator on ``(cell, time)`` matrices or fields. See the module docstring.

    Parameters
    ----------
    n_components : int
        Number of components.
    solver : {"hals", "sklearn"}
    init : {"nndsvd", "nndsvda", "random"}
    max_iter : int
        Iteration limit (a ConvergenceWarning when it ends the fit).
    tol : float
        ``hals``: stop when the relative error fell by at most ``tol`` (relative) over the last
        :data:`precipmodes.linalg.hals.STOP_WINDOW` (20) iterations; ``sklearn``: scikit-learn's rule.
    seed : int
        Seed of ``init="random"`` (and of scikit-learn).
    alpha_W, alpha_H, l1_ratio : float
        scikit-learn's regularisation (module docstring).
    cell_chunk : int
        Cells per chunk of a pass over X.
    log_every_s : float
        Seconds between progress lines in the log.
    h_warmup : int
        ``hals``: iterations at the start whose H update is one plain HALS sweep
        (:data:`precipmodes.linalg.hals.H_WARMUP`, 10; 0: accelerated sweeps from the first iteration).
    ard : bool
        Automatic relevance determination: ``n_components`` is the most, the data switch off
        the ones they do not need (module docstring).
    ard_threshold : float
        ARD: components whose relevance ``lambda_k / (b / c) - 1`` is below this are pruned.

    Fitted attributes
    -----------------
    basis_ : DataArray (cell, component)
        W >= 0, max 1 per component (dimensionless), 0 on all-zero cells.
    activations_ : DataArray (component, time)
        H >= 0, mm at the component's peak cell.
    reconstruction_error_ : float
        Relative error ``||X - WH||_F / ||X||_F`` (observed entries only when some are missing).
    objective_ : float
        scikit-learn's objective (0.5 squared error + penalties), mm^2.
    n_iter_ : int
    error_history_ : DataArray (iteration,)
        Relative error after each iteration (one value for ``sklearn``); ``error_history_seconds_``
        the seconds since the fit started at each (NaN for ``sklearn``).
    fit_seconds_ : float
    n_components_ : int
        Components kept (``n_components`` without ARD).
    relevance_ : DataArray (candidate,) or None
        ARD: relevance of each of the ``n_components`` candidates, descending (0: switched off).
        Plus ``n_zero_cells_``, ``converged_`` and the gap attributes of :mod:`precipmodes.decomposition.base`.
    """

    n_components: int = 25
    solver: str = "hals"
    init: str = "nndsvd"
    max_iter: int = 5000
    tol: float = 1e-4
    seed: int = 0
    alpha_W: float = 0.0
    alpha_H: float = 0.0
    l1_ratio: float = 0.0
    cell_chunk: int = 20000
    log_every_s: float = 10.0
    h_warmup: int = H_WARMUP
    ard: bool = False
    ard_threshold: float = PRUNE_THRESHOLD

    mode_dim = "component"
    rank_parameter = "n_components"
    kind = "nmf"
    nonnegative = True
    config_section = "nmf"
    config_keys = {key: (key,) for key in ("solver", "init", "max_iter", "tol", "seed", "alpha_W", "alpha_H",
                                           "l1_ratio", "cell_chunk", "ard", "ard_threshold")}
    _parameter_constraints = {
        "solver": Options(SOLVERS), "init": Options(INITS), "max_iter": Interval(integer=True, low=1),
        "tol": Interval(integer=False, low=0), "seed": Interval(integer=True, low=0),
        "alpha_W": Interval(integer=False, low=0), "alpha_H": Interval(integer=False, low=0),
        "l1_ratio": Interval(integer=False, low=0, high=1), "cell_chunk": Interval(integer=True, low=1),
        "log_every_s": Interval(integer=False, low=0), "h_warmup": Interval(integer=True, low=0),
        "ard": Boolean(), "ard_threshold": Interval(integer=False, low=0, low_open=True)}

    def _check_parameters(self) -> None:
        super()._check_parameters()
        if self.ard:
            if self.solver != "hals":
                raise ParameterError("ard", f"NMF ard needs the solver 'hals' (solver is {self.solver!r})")
            if self.n_components < 2:
                raise ParameterError("n_components", f"NMF ard: n_components = {self.n_components} is the most "
                                                     "components ARD may keep; give it at least 2 (e.g. 20) and "
                                                     "let the data switch the unneeded ones off")

    def _check_input(self, X: xr.DataArray, found: MatrixScan, label: str, source: str) -> None:
        if found.negative_cells.any():
            raise InputDataError(
                f"{label}: negative values in {describe_cells(X, found.negative_cells)} and "
                f"{describe_windows(X, found.negative_windows)}; they came from {source}: NMF needs "
                "precipitation amounts >= 0 - check the raw data's units/scale_factor and rerun from raw")
        if found.n_missing and self.solver == "sklearn":
            raise ParameterError("solver", f"{label}: {found.n_missing} entries are missing (NaN) and the NMF "
                                           "solver 'sklearn' cannot fit around them; use solver 'hals'")

    # ------------------------------------------------------------------ fit
    def _fit_cells(self, Xk: xr.DataArray, found: MatrixScan, keep: np.ndarray) -> None:
        dtype = np.float32 if Xk.dtype == np.float32 else np.float64
        start = _time.perf_counter()
        if self.solver == "sklearn":
            Wt, H, n_iter, history = self._fit_sklearn(Xk, dtype)
            converged = n_iter < self.max_iter
        else:
            blocks = CellBlocks(Xk, self.cell_chunk)
            missing = None
            n_observed = Xk.shape[0] * Xk.shape[1]
            if self.n_missing_entries_:
                missing = missing_indices(blocks)
                n_observed = int(found.observed_cells[keep].sum())
                self.gap_method_ = "EM inside HALS: missing entries refilled with W H every iteration"
            W0, H0 = self._initial(Xk, dtype, found.row_sum.sum() / n_observed)
            in_place = missing is not None and not blocks.lazy
            if in_place:  # a private copy whose missing entries the EM loop overwrites
                blocks = CellBlocks(Xk.copy(data=np.array(Xk.values)), self.cell_chunk)
            m, n = Xk.shape
            ard = None
            if self.ard:
                ard = ArdPrior.start(W0, H0, self._residual2(blocks, W0, H0), m, n, n_observed,
                                     found.row_sum.sum() / n_observed)
            r = self.l1_ratio
            result = fit_hals(blocks, W0, H0, norm2=found.sum_squares, max_iter=self.max_iter, tol=self.tol,
                              l1_W=self.alpha_W * n * r, l2_W=self.alpha_W * n * (1 - r),
                              l1_H=self.alpha_H * m * r, l2_H=self.alpha_H * m * (1 - r),
                              missing=missing, fill_in_place=in_place, log_every_s=self.log_every_s, start=start,
                              h_warmup=self.h_warmup, ard=ard)
            Wt, H, n_iter, history, converged = result.Wt, result.H, result.n_iter, result.history, result.converged
            if missing is not None:
                self.gap_iterations_ = n_iter
        elapsed = _time.perf_counter() - start
        Wt, H = Wt.astype(np.float64), H.astype(np.float64)
        error = history[-1][1]
        self.objective_ = 0.5 * error ** 2 * found.sum_squares + self._penalty(Wt, H)
        self.relevance_ = None
        if self.ard:
            Wt, H = self._prune(Wt, H, ard.relevance())
        Wt, H = self._normalise(Wt, H)
        self.n_components_ = H.shape[0]
        self.basis_ = self._labelled_basis(self._cell_array(Wt.T, keep))
        self.activations_ = self._labelled_scores(H, self.time_)
        self.reconstruction_error_ = error
        self.n_iter_ = int(n_iter)
        self.error_history_ = xr.DataArray(np.array([e for _, e in history], dtype=np.float64), dims="iteration",
                                           coords={"iteration": np.arange(1, len(history) + 1)})
        self.error_history_seconds_ = np.array([t for t, _ in history], dtype=np.float64)
        self.fit_seconds_ = elapsed
        log.info("nmf: %s solver, %d iterations, relative error %.6f, %.1f s",
                 self.solver, n_iter, error, elapsed)
        if not converged:
            what = "the ARD relevance weights changed" if self.ard else "the relative error fell"
            self._warn_not_converged(f"max_iter = {self.max_iter} iterations ended the fit before {what} by at "
                                     f"most tol = {self.tol} over 20 iterations (error {error:.6g})")

    @staticmethod
    def _residual2(blocks: CellBlocks, W: np.ndarray, H: np.ndarray) -> float:
        """``||M o (X - W H)||^2`` (observed entries) of starting factors, one pass over X, float64."""
        def part(block, W_c):
            R = block - W_c.astype(np.float64) @ H.astype(np.float64)
            return float(np.nansum(R * R))

        return sum(blocks.map(part, [W[s] for s in blocks.slices]))

    def _prune(self, Wt: np.ndarray, H: np.ndarray, relevance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ARD: the factors of the components whose relevance reaches ``ard_threshold``; sets ``relevance_``."""
        kept = relevance >= self.ard_threshold
        self.relevance_ = xr.DataArray(np.sort(relevance)[::-1], dims="candidate",
                                       coords={"candidate": np.arange(1, relevance.size + 1)})
        if not kept.any():
            raise ParameterError(
                "ard_threshold",
                f"NMF ard: all {relevance.size} components were pruned (largest relevance {relevance.max():.3g} "
                f"< ard_threshold = {self.ard_threshold}): the data hold no component above the noise at this "
                "threshold; lower ard_threshold, or switch ard off and set the number of components")
        log.info("nmf: ARD kept %d of %d components (relevance >= %g)", int(kept.sum()), kept.size,
                 self.ard_threshold)
        return Wt[kept], H[kept]

    def _initial(self, Xk: xr.DataArray, dtype, mean: float) -> tuple[np.ndarray, np.ndarray]:
        k = self.n_components
        if self.init == "random":
            return random_init(Xk.shape, k, mean, self.seed, dtype)
        # NNDSVD from the exact SVD; with missing entries, of the gap-aware SVD (iterative EOF imputation
        # to its default tolerance). From the cell-mean filled matrix the EM loop needed 110 iterations
        # instead of 59 on benchmarks/bench_gaps.py; after only one imputation update it needed 65, but
        # on the demo it reached a lower error with a basis further from the true patterns (0.89)
        svd = SVD(n_modes=k, method="auto", cell_chunk=self.cell_chunk).fit(Xk)
        s = svd.singular_values_.values
        Vt = svd.temporal_coefficients_.values / s[:, None]
        return nndsvd(svd.spatial_modes_.values, s, Vt, self.init, mean, dtype)

    def _fit_sklearn(self, Xk, dtype):
        from sklearn.decomposition import NMF as SkNMF

        model = SkNMF(n_components=self.n_components, init=self.init, solver="cd", max_iter=self.max_iter,
                      tol=self.tol, random_state=self.seed, alpha_W=self.alpha_W, alpha_H=self.alpha_H,
                      l1_ratio=self.l1_ratio)
        values = np.asarray(Xk.values, dtype=dtype)
        W = model.fit_transform(values)
        H = model.components_
        norm = np.linalg.norm(values.astype(np.float64))
        error = float(np.linalg.norm(values - W @ H) / norm) if norm > 0 else 0.0
        return W.T, H, int(model.n_iter_), [(np.nan, error)]

    def _penalty(self, Wt: np.ndarray, H: np.ndarray) -> float:
        """scikit-learn's regularisation terms of the objective for factors ``W^T (k, cells)``, ``H (k, time)``."""
        n_cells, n_windows = Wt.shape[1], H.shape[1]
        r = self.l1_ratio
        return float(self.alpha_W * n_windows * (r * Wt.sum() + 0.5 * (1 - r) * (Wt ** 2).sum())
                     + self.alpha_H * n_cells * (r * H.sum() + 0.5 * (1 - r) * (H ** 2).sum()))

    @staticmethod
    def _normalise(Wt: np.ndarray, H: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Basis rows to max 1 (scale into H), then order by total activation, descending."""
        peak = Wt.max(axis=1)
        scale = np.where(peak > 0, peak, 1.0)
        Wt = Wt / scale[:, None]
        H = H * scale[:, None]
        order = np.argsort(-H.sum(axis=1), kind="stable")
        return Wt[order], H[order]

    # ------------------------------------------------------------- results
    def projection_basis(self):
        """``(W (cell, component), None, None)``, float64 on the fitted cells."""
        self._require_fitted()
        return self.basis_.values, None, None

    def _training_scores(self) -> xr.DataArray:
        return self.activations_

    def _solve_gram(self, G, c, method):
        return nnls_gram(G, c) if method == "nnls" else lstsq_gram(G, c)

    def transform(self, X: xr.DataArray, method: str = "nnls", label: str = "matrix") -> xr.DataArray:
        """Activations of each window ``(component, time)``: ``nnls`` (exact, >= 0) or ``pinv`` (the seed's
        unconstrained ``pinv(W) x``, here from the Gram matrix ``W^T W``: :func:`precipmodes.linalg.nnls.lstsq_gram`).

        Windows with missing cells are solved on the observed rows of the basis.
        """
        if method not in PROJECTIONS:
            raise ParameterError("method", f"NMF projection method {method!r} is not one of "
                                           f"{', '.join(PROJECTIONS)}")
        return super().transform(X, method, label)

    # ------------------------------------------------------------ datasets
    def _dataset(self, on_grid) -> xr.Dataset:
        """``nmf.nc`` variables and attributes (see :meth:`Decomposition.to_dataset`)."""
        k = self.basis_.sizes["component"]
        component = xr.DataArray(np.arange(1, k + 1, dtype=np.int32), dims="component", attrs={
            "long_name": "NMF component number (1 = largest total activation)"})
        basis = on_grid(self.basis_.transpose("component", "cell"))
        history = self.error_history_.values
        error_long_name = ("relative reconstruction error ||X - WH||_F / ||X||_F of the training matrix"
                           + (" (observed entries only)" if self.n_missing_entries_ else ""))
        ds = xr.Dataset(
            {
                "basis": basis.drop_vars("component").assign_attrs(
                    long_name="NMF spatial basis, max 1 per component", units="1", comment="NaN off land"),
                "activations": (("component", "time"), self.activations_.values, {
                    "long_name": "NMF activation (amount at the component's peak cell)", "units": "mm"}),
                "reconstruction_error": ((), self.reconstruction_error_, {
                    "long_name": error_long_name, "units": "1"}),
                "error_history": ("iteration", history, {
                    "long_name": "relative reconstruction error after each iteration", "units": "1"}),
            },
            coords={"component": component, "time": self.time_.values,
                    "iteration": np.arange(1, history.size + 1, dtype=np.int32)},
            attrs={"solver": self.solver, "init": self.init, "n_iter": int(self.n_iter_), "seed": int(self.seed),
                   "tol": float(self.tol), "max_iter": int(self.max_iter), "h_warmup": int(self.h_warmup),
                   "alpha_W": float(self.alpha_W), "alpha_H": float(self.alpha_H), "l1_ratio": float(self.l1_ratio),
                   "n_zero_cells": int(self.n_zero_cells_), "fit_seconds": float(self.fit_seconds_),
                   "component_order": "total activation over the training windows, descending",
                   "ard": int(self.ard), "n_components": int(self.n_components_)},
        )
        if self.relevance_ is not None:
            ds["relevance"] = ("candidate", self.relevance_.values, {
                "long_name": "ARD relevance lambda_k / (b / c) - 1 of each candidate component, descending "
                             "(0: switched off)", "units": "1",
                "comment": f"components with relevance below ard_threshold were pruned; {self.n_components} "
                           "candidates (nmf.ard, docs/methods/hilbert_ard.md)"})
            ds = ds.assign_coords(candidate=("candidate", np.arange(1, self.relevance_.size + 1, dtype=np.int32),
                                             {"long_name": "ARD candidate component, by relevance"}))
            ds.attrs.update(ard_threshold=float(self.ard_threshold), n_components_max=int(self.n_components))
        return ds

    @classmethod
    def _from_attrs(cls, ds: xr.Dataset) -> "NMF":
        a = ds.attrs
        return cls(n_components=int(a.get("n_components_max", ds.sizes["component"])), solver=a.get("solver", "hals"),
                   init=a.get("init", "nndsvd"), seed=int(a.get("seed", 0)), ard=bool(a.get("ard", 0)),
                   ard_threshold=float(a.get("ard_threshold", PRUNE_THRESHOLD)))

    def _restore(self, ds: xr.Dataset, cells: xr.DataArray) -> None:
        self.basis_ = self._labelled_basis(self._pick(ds["basis"].transpose("component", ...), cells))
        self.activations_ = self._labelled_scores(ds["activations"].values, ds["time"])
        self.reconstruction_error_ = float(ds["reconstruction_error"])
        self.n_iter_ = int(ds.attrs.get("n_iter", 0))
        self.error_history_ = ds["error_history"] if "error_history" in ds else xr.DataArray([], dims="iteration")
        self.fit_seconds_ = float(ds.attrs.get("fit_seconds", np.nan))
        self.n_components_ = ds.sizes["component"]
        self.relevance_ = ds["relevance"].reset_coords(drop=True) if "relevance" in ds else None
