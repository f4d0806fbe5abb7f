"""NMF solver kernels: HALS sweeps, NNDSVD initialisation and the outer HALS loop.

Module functions that take their starting factors (as scikit-learn's
``_fit_coordinate_descent``/``_initialize_nmf``); :class:`precipmodes.decomposition.nmf.NMF` only
orchestrates. Notation: ``X (cell, time) ~= W H``, factors kept as ``W^T (k, cells)``
(one contiguous block per cell chunk) and ``H (k, time)``.

The outer loop (:func:`fit_hals`) makes one pass over X per iteration: for each chunk
``A_c = H X_c^T`` -> HALS sweeps on that chunk's rows of W (they only need ``H H^T``)
-> ``C += W_c^T X_c``, ``D += W_c^T W_c`` (both in float64, also for float32 data: the
error formula below cancels, ``||X - WH||^2`` being ~1e-4 of ``||X||^2``); then HALS
sweeps on H use only ``C = W^T X`` and ``D = W^T W``, and the error
``||X - WH||^2 = ||X||^2 - 2<C, H> + <D, H H^T>`` comes from the same Gram matrices.
Inner sweeps stop when a sweep changes the factor by less than 10% of the first
sweep's change, at most ``1 + 0.5 (1 + time / (k + 1))`` sweeps (W) and
``1 + 0.5 (1 + cells / (k + 1))`` (H), except in the first :data:`H_WARMUP` iterations, where H
gets one sweep (plain HALS, as scikit-learn's coordinate descent). Solving H nearly exactly
(hundreds of cheap sweeps) against the first, still rough W locked the fit into a poorer
stationary point on some matrices: on the seed-grid demo's 21,989 x 578 training matrix the
accelerated fit from the first iteration ended 0.23 % above scikit-learn's error, with the warm-up
0.045 % below it (warm-ups of 5 to 40 iterations gave the same; a one-sweep W as well, or both
capped at 2 sweeps, ended 0.02 % above it; ``benchmarks/bench_nmf_warmup.py`` and
``benchmarks/README.md`` have the matrices it was checked on, and where it does not help).
Stopping rule: the relative error fell by at most ``tol`` (relative) over the last
:data:`STOP_WINDOW` iterations,
``e[i - STOP_WINDOW] - e[i] <= tol e[i]``, or ``max_iter`` iterations (then
:class:`precipmodes.errors.ConvergenceWarning`). A window, not one step: accelerated HALS
gains most in its first iterations and then creeps on a long tail, where one step's
change falls below ``tol`` long before the error has settled (on a 12,700 x 2,200
rain-like matrix the one-step rule stopped after 11 iterations 0.03 % above scikit-learn's
final error, the 20-iteration window after 37 iterations below it; a 10-iteration window
stopped the E-OBS rank-10 fit 0.012 % above it, 20 iterations 0.0008 %).

Missing entries (NaN): expectation-maximisation inside the same loop. At the start of
an iteration each chunk's missing entries are filled with the current model ``W H``;
the W and H sweeps then minimise ``||X_filled - W H||^2``, a majoriser of the masked
objective ``||M o (X - W H)||^2`` (M = 1 where observed) that touches it at the
current factors, so the masked objective never increases. The reported error is the
masked one, ``||M o (X - WH)|| / ||M o X||``.
"""

from __future__ import annotations

import functools
import logging
import os
import time as _time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from precipmodes.linalg.blocks import CellBlocks, _blas_controller, low_rank_at

log = logging.getLogger("precipmodes")

INNER_DELTA = 0.1
STOP_WINDOW = 20  # iterations over which the relative decrease of the error is compared with tol
H_WARMUP = 10  # first iterations whose H update is one plain HALS sweep (module docstring)
GEMV_THREADED_SIZE = 9216  # OpenBLAS runs gemv on one thread below m*n = 2304 * 4 (interface/gemv.c)
SLAB = 1024  # rows per float64 slab when a float32 chunk's Gram products are formed in float64


def hals_sweeps(F: np.ndarray, A: np.ndarray, B: np.ndarray, l1: float, l2: float, max_sweeps: int) -> int:
    """In-place HALS sweeps on ``F (k, m) >= 0`` minimising ``0.5 tr(F^T B F) - <A, F> + l1|F| + 0.5 l2||F||^2``.

    ``A (k, m)`` and ``B (k, k)`` are the Gram products (e.g. ``H X^T`` and ``H H^T`` for
    ``F = W^T``), all three of one dtype (the compiled gemv needs it). Row ``j`` of a sweep is
    ``F_j <- max(0, F_j + (A_j - l1 - B_j F - l2 F_j) / (B_jj + l2))`` with the rows before it
    already updated (Gauss-Seidel over the k components, as scikit-learn's coordinate descent);
    sweeps stop when one changes ``F`` by less than :data:`INNER_DELTA` of the first sweep's change
    (squared norms), or after ``max_sweeps``. Compiled (numba): one call per chunk, not one numpy
    call per row, which dominated small fits (E-OBS 325 x 308 at rank 10: ~1 ms per iteration).
    BLAS runs on one thread inside (threadpoolctl, skipped below :data:`GEMV_THREADED_SIZE`).
    Returns the number of sweeps done.
    """
    kernel = _compiled_sweeps()
    args = (F, A, B, F.dtype.type(l1), F.dtype.type(l2), max_sweeps, INNER_DELTA ** 2)
    if F.size < GEMV_THREADED_SIZE:
        return int(kernel(*args))
    # one BLAS thread for the kernel's gemv calls: with 2 the seed-grid fit took 29.4 s instead of 14.5 s
    with _blas_controller().limit(limits=1, user_api="blas"):
        return int(kernel(*args))


def numba_cache_dir() -> Path:
    """Where numba keeps the compiled kernel between processes: ``$NUMBA_CACHE_DIR`` when set, else the
    user cache folder ``$XDG_CACHE_HOME/precipmodes/numba`` (``~/.cache/precipmodes/numba``), not beside
    this module, which may be read-only (a wheel installed system-wide or in a shared environment)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home) / "precipmodes" / "numba"


@functools.cache
def _compiled_sweeps():
    """The numba kernel of :func:`hals_sweeps`, compiled on first use and cached in :func:`numba_cache_dir`
    (numba falls back to its own locations when that folder cannot be created)."""
    os.environ["NUMBA_CACHE_DIR"] = str(numba_cache_dir())
    import numba

    numba.core.config.reload_config()  # numba reads NUMBA_CACHE_DIR when imported; it may have been already

    @numba.njit(cache=True, nogil=True, fastmath=False)
    def sweeps(F, A, B, l1, l2, max_sweeps, stop_ratio):
        k, m = F.shape
        first = 0.0
        done = 0
        for sweep in range(1, max_sweeps + 1):
            done = sweep
            change = 0.0
            for j in range(k):
                denom = B[j, j] + l2
                if denom <= 0:
                    continue
                step = np.dot(B[j], F)  # BLAS gemv: B_j F
                for i in range(m):
                    new = F[j, i] + (A[j, i] - l1 - l2 * F[j, i] - step[i]) / denom
                    if new < 0:
                        new = 0
                    delta = float(new - F[j, i])
                    change += delta * delta
                    F[j, i] = new
            if sweep == 1:
                first = change
            if change <= stop_ratio * first:
                break
        return done

    return sweeps


def gram64(Wt_c: np.ndarray, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(W_c^T X_c, W_c^T W_c)`` in float64 for ``W_c^T (k, cells_c)`` and ``X_c (cells_c, time)``.

    float64 data: plain products (as before). float32 data: the exact float32 values
    multiplied in float64, slab by slab of :data:`SLAB` rows through one float64 buffer
    (``SLAB x time x 8`` bytes extra).
    """
    if block.dtype == np.float64 and Wt_c.dtype == np.float64:
        return Wt_c @ block, Wt_c @ Wt_c.T
    W64 = Wt_c.astype(np.float64)
    C = np.zeros((Wt_c.shape[0], block.shape[1]))
    buffer = np.empty((min(SLAB, block.shape[0]), block.shape[1]))
    for start in range(0, block.shape[0], SLAB):
        rows = slice(start, start + SLAB)
        slab = buffer[: block[rows].shape[0]]
        np.copyto(slab, block[rows])
        C += W64[:, rows] @ slab
    return C, W64 @ W64.T


def _w_block(block, Wt_c, H, B, l1, l2, sweeps, missing_c, fill_c):
    """One chunk of an iteration: update its W rows, return them with W_c^T X_c and W_c^T W_c.

    ``missing_c`` (flat indices into the chunk) are filled with ``fill_c`` first (EM).
    """
    if missing_c is not None:
        block = block.copy()
        block.flat[missing_c] = fill_c
    A = H @ block.T
    hals_sweeps(Wt_c, A, B, l1, l2, sweeps)
    C, D = gram64(Wt_c, block)
    return Wt_c, C, D


def model_at(Wt_c: np.ndarray, H: np.ndarray, missing_c: np.ndarray) -> np.ndarray:
    """``(W H)`` at the flat indices ``missing_c`` of a chunk, float64 ``(n_missing,)``."""
    rows, cols = np.divmod(missing_c, H.shape[1])
    return low_rank_at(Wt_c.T, H.T, rows, cols)


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


def random_init(shape: tuple[int, int], k: int, mean: float, seed: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's ``init='random'``: ``|N(0, sqrt(mean / k))|`` factors ``(W (m, k), H (k, n))``, seeded."""
    m, n = shape
    rng = np.random.RandomState(seed)
    avg = np.sqrt(mean / k)
    H = np.abs(avg * rng.standard_normal(size=(k, n))).astype(dtype, copy=False)
    W = np.abs(avg * rng.standard_normal(size=(m, k))).astype(dtype, copy=False)
    return W, H


@dataclass
class HalsResult:
    """What :func:`fit_hals` returns: factors, iterations, error history, whether ``tol`` was met."""

    Wt: np.ndarray  # (k, cells)
    H: np.ndarray  # (k, time)
    n_iter: int
    history: list  # [(seconds since start, relative error)] per iteration
    converged: bool


def _w_pass(blocks: CellBlocks, Wt_blocks: list, H: np.ndarray, ard, l1_W: float, l2_W: float, sweeps_W: int,
            missing: list | None, fills: list, fill_in_place: bool) -> tuple[list, np.ndarray, np.ndarray]:
    """One pass over X: the W sweeps of every chunk and the Gram products for H, ``(W^T chunks, C = W^T X
    (k, time), D = W^T W (k, k))`` (float64 sums); missing entries filled with ``fills`` (in place or per chunk)."""
    k, nb = H.shape[0], len(blocks)
    B = H @ H.T
    if ard is not None:
        B[np.diag_indices(k)] += ard.penalties()
    B = B.astype(H.dtype)
    if fill_in_place:
        blocks.assign(missing, fills)
    on_the_fly = missing is not None and not fill_in_place
    parts = blocks.map(_w_block, Wt_blocks, [H] * nb, [B] * nb, [l1_W] * nb, [l2_W] * nb, [sweeps_W] * nb,
                       missing if on_the_fly else [None] * nb, fills if on_the_fly else [None] * nb)
    return [p[0] for p in parts], sum(p[1] for p in parts), sum(p[2] for p in parts)


def _masked_error(err2: float, Wt_blocks: list, H: np.ndarray, missing: list, fills: list) -> tuple[float, list]:
    """``(||M o (X - W H)||^2, the model at the missing entries)`` from the filled matrix's error ``err2``: its
    missing entries' part taken off (``||X_filled||^2 = norm2 + sum of fill^2``)."""
    new = [model_at(Wt_c, H, idx) for Wt_c, idx in zip(Wt_blocks, missing)]
    err2 += sum(float(f @ f) for f in fills)
    err2 -= sum(float((f - g) @ (f - g)) for f, g in zip(fills, new))
    return err2, new


def _ard_rebalanced(ard, D: np.ndarray, H64: np.ndarray, Wt_blocks: list, err2: float,
                    dtype) -> tuple[list, np.ndarray]:
    """``(W^T chunks, H)`` rescaled to equal norms of w_k and h_k (W H unchanged, the penalty 0.5 rho_k (|w_k|^2 +
    |h_k|^2) at its least; HALS alone rebalances the scales over thousands of iterations, which kept lambda_k
    drifting), and ``ard`` updated with them."""
    w2, h2 = np.diag(D).copy(), np.einsum("ij,ij->i", H64, H64)
    alive = (w2 > 0) & (h2 > 0)
    alpha = np.where(alive, (h2 / np.where(alive, w2, 1)) ** 0.25, 1.0)
    Wt_blocks = [Wt_c * alpha[:, None].astype(dtype) for Wt_c in Wt_blocks]
    H = (H64 / alpha[:, None]).astype(dtype)
    ard.update(w2 * alpha ** 2, h2 / alpha ** 2, max(err2, 0.0))
    return Wt_blocks, H


def fit_hals(blocks: CellBlocks, W: np.ndarray, H: np.ndarray, *, norm2: float, max_iter: int, tol: float,
             l1_W: float = 0.0, l2_W: float = 0.0, l1_H: float = 0.0, l2_H: float = 0.0,
             missing: list | None = None, fill_in_place: bool = False, log_every_s: float = 10.0,
             start: float | None = None, h_warmup: int = H_WARMUP, ard=None) -> HalsResult:
    """Accelerated HALS from the starting factors ``W (cells, k)``, ``H (k, time)`` (see the module docstring).

    ``blocks`` walks the matrix ``X (cells, time)``; ``norm2`` is ``||M o X||_F^2`` (float64,
    observed entries only); ``missing`` lists per chunk the flat indices of its missing
    entries (None: no entry is missing, the dense loop); with ``fill_in_place`` ``blocks`` walk a
    private in-memory copy of X whose missing entries are overwritten with the fills (no copy of
    a chunk per pass), else each chunk is copied and filled on every pass. ``l1_*``/``l2_*`` are the
    absolute L1/L2 penalties on W and H. Stops when the relative error fell by at most ``tol``
    times its value over the last :data:`STOP_WINDOW` iterations, or after ``max_iter`` iterations.
    ``h_warmup``: iterations at the start whose H update is one plain sweep (0: accelerated from the first).
    ``ard`` (a :class:`precipmodes.linalg.ard.ArdPrior`): per-component L2 penalties ``ard.penalties()`` on the
    rows of ``W^T`` and ``H`` (added to the diagonals of ``H H^T`` and ``W^T W``), the relevance weights
    updated after each iteration, and the stopping rule on them (``ard.settled``) instead of the error.
    """
    start = _time.perf_counter() if start is None else start
    dtype = H.dtype
    k = H.shape[0]
    m, n = blocks.shape
    nb = len(blocks)
    Wt_blocks = [np.ascontiguousarray(W[s].T) for s in blocks.slices]
    sweeps_W = 1 + int(0.5 * (1 + n / (k + 1)))
    sweeps_H = 1 + int(0.5 * (1 + m / (k + 1)))
    fills = ([model_at(Wt_c, H, idx) for Wt_c, idx in zip(Wt_blocks, missing)] if missing is not None
             else [None] * nb)
    history: list[tuple[float, float]] = []
    last_log = _time.perf_counter()
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        Wt_blocks, C, D = _w_pass(blocks, Wt_blocks, H, ard, l1_W, l2_W, sweeps_W, missing, fills, fill_in_place)
        H64 = H.astype(np.float64)
        D_H = D if ard is None else D + np.diag(ard.penalties())
        hals_sweeps(H64, C, D_H, l1_H, l2_H, 1 if n_iter <= h_warmup else sweeps_H)
        H = H64.astype(dtype)
        H64 = H.astype(np.float64)
        err2 = norm2 - 2 * np.einsum("ij,ij->", C, H64) + np.einsum("ij,ij->", D, H64 @ H64.T)
        if missing is not None:
            err2, fills = _masked_error(err2, Wt_blocks, H, missing, fills)
        error = float(np.sqrt(max(err2, 0.0) / norm2)) if norm2 > 0 else 0.0
        if ard is not None:
            Wt_blocks, H = _ard_rebalanced(ard, D, H64, Wt_blocks, err2, dtype)
        history.append((_time.perf_counter() - start, error))
        now = _time.perf_counter()
        if now - last_log >= log_every_s:
            log.info("nmf: iteration %d, relative error %.6f, elapsed %.1f s", n_iter, error, now - start)
            last_log = now
        if ard is not None:
            if ard.settled(tol):
                converged = True
                break
        elif n_iter > STOP_WINDOW and history[-1 - STOP_WINDOW][1] - error <= tol * error:
            converged = True
            break
    return HalsResult(np.concatenate(Wt_blocks, axis=1), H, n_iter, history, converged)
