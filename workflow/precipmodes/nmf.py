"""Non-negative matrix factorisation of the land-cell x window matrix.

``X (cell, time) ~= W H`` with ``W (cell, component) >= 0`` the spatial basis and
``H (component, time) >= 0`` the activations. Two solvers (``nmf.solver``):

* ``hals`` (ours): accelerated hierarchical alternating least squares (Gillis &
  Glineur 2012) on Gram matrices. One pass over X per iteration, chunked over cells:
  for each chunk ``A_c = X_c H^T`` -> several HALS sweeps on that chunk's rows of W
  (they only need ``H H^T``) -> ``C += W_c^T X_c``, ``D += W_c^T W_c``; then HALS sweeps
  on H use only ``C = W^T X`` and ``D = W^T W``. The error
  ``||X - WH||^2 = ||X||^2 - 2<C, H> + <D, H H^T>`` comes free from the same Gram
  matrices (float64). Inner sweeps stop when a sweep changes the factor by less than
  10% of the first sweep's change, at most ``1 + 0.5 (1 + time / (k + 1))`` sweeps.
  Stops when the relative error changes by less than ``tol`` between iterations.
* ``sklearn``: ``sklearn.decomposition.NMF(solver='cd')`` on the in-memory matrix,
  for parity with the seed (``NMF(n_components=25, init='nndsvd', max_iter=5000)``).

Init ``nndsvd``/``nndsvda`` (Boutsidis & Gallopoulos 2008, as scikit-learn, from our
exact SVD of X) or ``random`` (scikit-learn's recipe, seeded). Regularisation follows
scikit-learn's objective for X (n_samples = cells, n_features = windows):
``0.5||X - WH||^2 + alpha_W * windows * (l1_ratio |W|_1 + 0.5 (1 - l1_ratio) ||W||^2)
+ alpha_H * cells * (l1_ratio |H|_1 + 0.5 (1 - l1_ratio) ||H||^2)``.

Results: ``basis`` normalised to max 1 per component with the scale moved into the
activations (so ``activations`` are mm at the component's peak cell), components
ordered by total activation (sum over training windows), descending; relative
reconstruction error ``||X - WH||_F / ||X||_F``. All-zero training cells are kept out
of the fit and get basis 0 (exactly what the full problem gives them). Input with NaN
or negative values is refused, naming the cells, windows and upstream file.
"""

from __future__ import annotations

import functools
import logging
import time as _time
from dataclasses import dataclass, field

import numpy as np
import xarray as xr
from threadpoolctl import ThreadpoolController

from .errors import ConfigError, InputDataError
from .grid import unstack_cells
from .matrix import (CellBlocks, as_cell_time, describe_cells, describe_windows, require_finite,
                     require_rank, scan)
from .svd import SVD

log = logging.getLogger("precipmodes")

SOLVERS = ("hals", "sklearn")
INITS = ("nndsvd", "nndsvda", "random")
INNER_DELTA = 0.1


@functools.lru_cache(maxsize=1)
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


def hals_sweeps(F: np.ndarray, A: np.ndarray, B: np.ndarray, l1: float, l2: float, max_sweeps: int) -> int:
    """In-place HALS sweeps on ``F (k, m) >= 0`` minimising ``0.5 tr(F^T B F) - <A, F> + l1|F| + 0.5 l2||F||^2``.

    ``A (k, m)`` and ``B (k, k)`` are the Gram products (e.g. ``H X^T`` and ``H H^T`` for
    ``F = W^T``). Returns the number of sweeps done.
    """
    with _blas_controller().limit(limits=1, user_api="blas"):  # tiny GEMVs: threads only add overhead
        return _sweeps(F, A, B, l1, l2, max_sweeps)


def _sweeps(F, A, B, l1, l2, max_sweeps):
    k = F.shape[0]
    first = None
    for sweep in range(1, max_sweeps + 1):
        change = 0.0
        for j in range(k):
            denom = B[j, j] + l2
            if denom <= 0:
                continue
            grad = A[j] - l1 - B[j] @ F
            if l2:
                grad = grad - l2 * F[j]
            step = grad / denom
            new = np.maximum(F[j] + step, 0)
            delta = new - F[j]
            change += float(np.dot(delta, delta))
            F[j] = new
        if first is None:
            first = change
        if change <= (INNER_DELTA ** 2) * first:
            break
    return sweep


def _w_block(block, Wt_c, H, B, l1, l2, sweeps):
    """One chunk of an iteration: update its W rows, return them with W_c^T X_c and W_c^T W_c."""
    A = H @ block.T
    hals_sweeps(Wt_c, A, B, l1, l2, sweeps)
    return Wt_c, Wt_c @ block, (Wt_c @ Wt_c.T).astype(np.float64)


def nndsvd(U: np.ndarray, s: np.ndarray, Vt: np.ndarray, variant: str, mean: float,
           dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """NNDSVD(a) factors ``(W (m, k), H (k, n))`` from the leading SVD ``U s Vt`` (as scikit-learn)."""
    m, k = U.shape
    W = np.zeros((m, k))
    H = np.zeros((k, Vt.shape[1]))
    W[:, 0] = np.sqrt(s[0]) * np.abs(U[:, 0])
    H[0] = np.sqrt(s[0]) * np.abs(Vt[0])
    for j in range(1, k):
        x, y = U[:, j], Vt[j]
        xp, yp = np.maximum(x, 0), np.maximum(y, 0)
        xn, yn = np.abs(np.minimum(x, 0)), np.abs(np.minimum(y, 0))
        xpn, ypn, xnn, ynn = (np.linalg.norm(v) for v in (xp, yp, xn, yn))
        mp, mn = xpn * ypn, xnn * ynn
        if mp > mn:
            u, v, sigma = xp / xpn, yp / ypn, mp
        else:
            u, v, sigma = xn / xnn, yn / ynn, mn
        lbd = np.sqrt(s[j] * sigma)
        W[:, j] = lbd * u
        H[j] = lbd * v
    W[W < 1e-6] = 0
    H[H < 1e-6] = 0
    if variant == "nndsvda":
        W[W == 0] = mean
        H[H == 0] = mean
    return W.astype(dtype), H.astype(dtype)


@dataclass
class NMF:
    """NMF estimator on ``(cell, time)`` DataArrays. See the module docstring."""

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
    fitted: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_config(cls, nmf_config: dict, n_components: int) -> "NMF":
        """Estimator from the ``nmf`` config section and an experiment's ``n_modes``."""
        keys = ("solver", "init", "max_iter", "tol", "seed", "alpha_W", "alpha_H", "l1_ratio", "cell_chunk")
        return cls(n_components=n_components, **{k: nmf_config[k] for k in keys if k in nmf_config})

    # ------------------------------------------------------------------ fit
    def fit(self, X: xr.DataArray, label: str = "training matrix", source: str = "the split step") -> "NMF":
        """Fit on ``X(cell, time)`` (mm, non-negative). ``label``/``source`` name the matrix in errors."""
        if self.solver not in SOLVERS:
            raise ConfigError(f"nmf.solver: {self.solver!r} is not one of {', '.join(SOLVERS)}")
        if self.init not in INITS:
            raise ConfigError(f"nmf.init: {self.init!r} is not one of {', '.join(INITS)}")
        X = as_cell_time(X, label)
        n_cells, n_windows = X.shape
        k = self.n_components
        require_rank(k, n_cells, n_windows, label, "n_modes")
        found = scan(CellBlocks(X, self.cell_chunk))
        require_finite(X, found, label, source)
        if found.negative_cells.any():
            raise InputDataError(
                f"{label}: negative values in {describe_cells(X, found.negative_cells)} and "
                f"{describe_windows(X, found.negative_windows)}; they came from {source}: NMF needs "
                "precipitation amounts >= 0 - check the raw data's units/scale_factor and rerun from raw")
        keep = found.nonzero_cells
        n_zero = int((~keep).sum())
        if n_zero:
            log.info("nmf: %d of %d cells are zero in every training window; kept out of the fit (basis 0)",
                     n_zero, n_cells)
            require_rank(k, int(keep.sum()), n_windows, f"{label} without its all-zero cells", "n_modes")
        Xk = X.isel(cell=np.flatnonzero(keep)) if n_zero else X
        dtype = np.float32 if X.dtype == np.float32 else np.float64
        start = _time.perf_counter()
        if self.solver == "sklearn":
            Wt, H, n_iter, history = self._fit_sklearn(Xk, dtype)
        else:
            Wt, H, n_iter, history = self._fit_hals(Xk, dtype, found.sum_squares, found.row_sum.sum(), start)
        elapsed = _time.perf_counter() - start
        Wt, H = Wt.astype(np.float64), H.astype(np.float64)
        objective = 0.5 * history[-1][1] ** 2 * found.sum_squares + self._penalty(Wt, H)
        Wt, H = self._normalise(Wt, H)
        W_full = np.zeros((n_cells, k))
        W_full[keep] = Wt.T
        self.fitted = dict(
            W=W_full, H=H, error=history[-1][1], objective=objective, n_iter=n_iter, history=history,
            elapsed=elapsed, n_zero_cells=n_zero, cells=X["cell"], lat=X["lat"], lon=X["lon"], time=X["time"])
        log.info("nmf: %s solver, %d iterations, relative error %.6f, %.1f s",
                 self.solver, n_iter, self.fitted["error"], elapsed)
        return self

    def _initial(self, Xk: xr.DataArray, dtype, mean: float) -> tuple[np.ndarray, np.ndarray]:
        k = self.n_components
        m, n = Xk.shape
        if self.init == "random":
            rng = np.random.RandomState(self.seed)
            avg = np.sqrt(mean / k)
            H = np.abs(avg * rng.standard_normal(size=(k, n))).astype(dtype, copy=False)
            W = np.abs(avg * rng.standard_normal(size=(m, k))).astype(dtype, copy=False)
            return W, H
        svd = SVD(n_modes=k, method="auto", cell_chunk=self.cell_chunk).fit(Xk)
        f = svd.fitted
        Vt = f["coeffs"] / f["s"][:, None]
        return nndsvd(f["U"], f["s"], Vt, self.init, mean, dtype)

    def _fit_hals(self, Xk, dtype, norm2, total, start):
        k = self.n_components
        m, n = Xk.shape
        W, H = self._initial(Xk, dtype, total / (m * n))
        blocks = CellBlocks(Xk, self.cell_chunk)
        Wt_blocks = [np.ascontiguousarray(W[s].T) for s in blocks.slices]
        l1_W = self.alpha_W * n * self.l1_ratio
        l2_W = self.alpha_W * n * (1 - self.l1_ratio)
        l1_H = self.alpha_H * m * self.l1_ratio
        l2_H = self.alpha_H * m * (1 - self.l1_ratio)
        sweeps_W = 1 + int(0.5 * (1 + n / (k + 1)))
        sweeps_H = 1 + int(0.5 * (1 + m / (k + 1)))
        history: list[tuple[float, float]] = []
        last_log = _time.perf_counter()
        previous = np.inf
        n_iter = 0
        for n_iter in range(1, self.max_iter + 1):
            B = (H @ H.T).astype(dtype)
            parts = blocks.map(_w_block, Wt_blocks, [H] * len(blocks), [B] * len(blocks),
                               [l1_W] * len(blocks), [l2_W] * len(blocks), [sweeps_W] * len(blocks))
            Wt_blocks = [p[0] for p in parts]
            C = sum(p[1].astype(np.float64) for p in parts)
            D = sum(p[2] for p in parts)
            H64 = H.astype(np.float64)
            hals_sweeps(H64, C, D, l1_H, l2_H, sweeps_H)
            H = H64.astype(dtype)
            H64 = H.astype(np.float64)
            err2 = norm2 - 2 * np.einsum("ij,ij->", C, H64) + np.einsum("ij,ij->", D, H64 @ H64.T)
            error = float(np.sqrt(max(err2, 0.0) / norm2)) if norm2 > 0 else 0.0
            history.append((_time.perf_counter() - start, error))
            now = _time.perf_counter()
            if now - last_log >= self.log_every_s:
                log.info("nmf: iteration %d, relative error %.6f, elapsed %.1f s", n_iter, error, now - start)
                last_log = now
            if np.isfinite(previous) and abs(previous - error) <= self.tol * previous:
                break
            previous = error
        return np.concatenate(Wt_blocks, axis=1), H, n_iter, history

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
    def _require_fitted(self):
        if not self.fitted:
            raise RuntimeError("NMF: call fit() (or from_dataset) first")
        return self.fitted

    @property
    def components(self) -> xr.DataArray:
        """Basis ``(cell, component)``, max 1 per component."""
        f = self._require_fitted()
        return xr.DataArray(f["W"], dims=("cell", "component"), coords=dict(
            cell=f["cells"], lat=f["lat"], lon=f["lon"], component=np.arange(1, f["W"].shape[1] + 1)))

    def transform(self, X: xr.DataArray, method: str = "nnls", label: str = "matrix") -> xr.DataArray:
        """Activations of each window ``(component, time)``: ``nnls`` (exact, >= 0) or ``pinv`` (the seed's)."""
        from .projection import nnls_gram

        f = self._require_fitted()
        X = as_cell_time(X, label)
        W = f["W"]
        values = np.asarray(X.values, dtype=np.float64)
        if method == "nnls":
            H = nnls_gram(W.T @ W, W.T @ values)
        elif method == "pinv":
            H = np.linalg.pinv(W) @ values
        else:
            raise ConfigError(f"evaluation.nmf_projection: {method!r} is not one of nnls, pinv")
        return xr.DataArray(H, dims=("component", "time"),
                            coords=dict(component=np.arange(1, H.shape[0] + 1), time=X["time"]))

    def inverse_transform(self, H: xr.DataArray) -> xr.DataArray:
        """Reconstruction ``W h`` on the training cells: ``(cell, ...)`` mm."""
        f = self._require_fitted()
        h = H.transpose("component", ...).values
        other = [d for d in H.dims if d != "component"]
        return xr.DataArray(f["W"] @ h, dims=("cell", *other),
                            coords={"cell": f["cells"], "lat": f["lat"], "lon": f["lon"],
                                    **{d: H[d] for d in other if d in H.coords}})

    # ------------------------------------------------------------ datasets
    def to_dataset(self, lat: xr.DataArray, lon: xr.DataArray) -> xr.Dataset:
        """``nmf.nc`` content on the grid ``(lat, lon)`` (1-D axes, e.g. of the land mask)."""
        f = self._require_fitted()
        k = f["W"].shape[1]
        component = xr.DataArray(np.arange(1, k + 1, dtype=np.int32), dims="component", attrs={
            "long_name": "NMF component number (1 = largest total activation)"})
        basis = unstack_cells(self.components, lat, lon).transpose("component", "lat", "lon")
        history = np.array([e for _, e in f["history"]], dtype=np.float64)
        ds = xr.Dataset(
            {
                "basis": basis.assign_attrs(long_name="NMF spatial basis, max 1 per component", units="1",
                                            comment="NaN off land"),
                "activations": (("component", "time"), f["H"], {
                    "long_name": "NMF activation (amount at the component's peak cell)", "units": "mm"}),
                "reconstruction_error": ((), f["error"], {
                    "long_name": "relative reconstruction error ||X - WH||_F / ||X||_F of the training matrix",
                    "units": "1"}),
                "error_history": ("iteration", history, {
                    "long_name": "relative reconstruction error after each iteration", "units": "1"}),
            },
            coords={"component": component, "time": f["time"],
                    "iteration": np.arange(1, history.size + 1, dtype=np.int32)},
            attrs={"solver": self.solver, "init": self.init, "n_iter": int(f["n_iter"]), "seed": int(self.seed),
                   "tol": float(self.tol), "max_iter": int(self.max_iter), "alpha_W": float(self.alpha_W),
                   "alpha_H": float(self.alpha_H), "l1_ratio": float(self.l1_ratio),
                   "n_zero_cells": int(f["n_zero_cells"]), "fit_seconds": float(f["elapsed"]),
                   "component_order": "total activation over the training windows, descending"},
        )
        return ds

    @classmethod
    def from_dataset(cls, ds: xr.Dataset, cells: xr.DataArray) -> "NMF":
        """Estimator from ``nmf.nc`` for the cells of ``cells`` (a ``(cell, ...)`` array with lat/lon)."""
        a = ds.attrs
        model = cls(n_components=ds.sizes["component"], solver=a.get("solver", "hals"), init=a.get("init", "nndsvd"),
                    seed=int(a.get("seed", 0)))
        pick = dict(lat=xr.DataArray(cells["lat"].values, dims="cell"),
                    lon=xr.DataArray(cells["lon"].values, dims="cell"))
        W = ds["basis"].sel(pick, method="nearest").transpose("cell", "component").values
        model.fitted = dict(W=np.nan_to_num(W.astype(np.float64)), H=ds["activations"].values,
                            error=float(ds["reconstruction_error"]), n_iter=a.get("n_iter", 0), history=[],
                            elapsed=np.nan, n_zero_cells=a.get("n_zero_cells", 0), cells=cells["cell"],
                            lat=cells["lat"], lon=cells["lon"], time=ds["time"])
        return model
