"""Array kernels of the chunked SVD: the per-chunk Gram and projection products, the Gram eigenvectors, the sign
convention.

Every kernel takes one chunk ``block (cells_c, time)`` of the land-cell x window matrix (numpy, any float
dtype) with the chunk's training mean ``mean (cells_c,)`` and weights ``weights (cells_c,)`` (None: not
centred / not weighted) and works on ``Xt_c = w (X_c - m)``, its missing entries (flat indices
``missing_c``) set to ``fill_c`` first. :class:`precipmodes.decomposition.svd.SVD` maps them over
:class:`precipmodes.linalg.blocks.CellBlocks`.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.linalg
import scipy.sparse.linalg

log = logging.getLogger("precipmodes")


def _transformed(block: np.ndarray, mean: np.ndarray | None, weights: np.ndarray | None,
                 missing_c: np.ndarray | None = None, fill_c: np.ndarray | None = None,
                 dtype=np.float64) -> np.ndarray:
    """``w (x - m)`` of a chunk in ``dtype``, its missing entries (flat indices) set to ``fill_c`` first.

    A chunk already in ``dtype`` with nothing to fill, remove or weight is returned as it is (no copy).
    """
    if block.dtype == dtype and missing_c is None and mean is None and weights is None:
        return block
    out = block.astype(dtype)
    if missing_c is not None:
        out.flat[missing_c] = fill_c
    if mean is not None:
        out -= mean[:, None]
    if weights is not None:
        out *= weights[:, None]
    return out


def _gram_block(block, mean, weights, missing_c, fill_c, dtype):
    """``Xt_c^T Xt_c (time, time)`` of a chunk, the product formed in ``dtype``, returned in float64."""
    b = _transformed(block, mean, weights, missing_c, fill_c, dtype)
    return (b.T @ b).astype(np.float64, copy=False)


def _project_block(block, mean, weights, missing_c, fill_c, V):
    return _transformed(block, mean, weights, missing_c, fill_c) @ V


def _project_block_and_square(block, mean, weights, missing_c, fill_c, V):
    """``(Xt_c V, ||Xt_c||^2)`` of a chunk in float64 (the total of a fit with a float32 Gram matrix)."""
    b = _transformed(block, mean, weights, missing_c, fill_c)
    return b @ V, float(np.einsum("ij,ij->", b, b))


def _project_back_block(block, mean, weights, missing_c, fill_c, Q_c):
    b = _transformed(block, mean, weights, missing_c, fill_c)
    return b.T @ Q_c, float(np.einsum("ij,ij->", b, b))


def _filled_project_block(F_c, mean, weights, V):
    """``w (F_c - m) V`` of an already filled float64 chunk without copying it (mean and weights on the product)."""
    Y = F_c @ V
    if mean is not None:
        Y -= mean[:, None] * V.sum(axis=0)[None, :]
    if weights is not None:
        Y *= weights[:, None]
    return Y


def _filled_project_back_block(F_c, mean, weights, Q_c):
    """``(Xt_c^T Q_c, ||Xt_c||^2)`` with ``Xt_c = w (F_c - m)``, from the filled chunk without copying it."""
    Qw = Q_c * weights[:, None] if weights is not None else Q_c
    Z = F_c.T @ Qw
    squares = np.einsum("ij,ij->i", F_c, F_c)
    if mean is not None:
        Z -= (mean @ Qw)[None, :]
        squares = squares - 2 * mean * F_c.sum(axis=1) + F_c.shape[1] * mean ** 2
    if weights is not None:
        squares = squares * weights ** 2
    return Z, float(squares.sum())


def fill_dask_block(block, fills, block_info=None):
    missing_c, fill_c = fills[block_info[0]["chunk-location"][0]]
    out = block.astype(np.float64)
    out.flat[missing_c] = fill_c
    return out


LANCZOS_MAX_FRACTION = 0.1  # Lanczos (eigsh) for the Gram eigenvectors while n_extra <= this x windows, else eigh


def leading_eigenvectors(G: np.ndarray, p: int) -> np.ndarray:
    """The ``p`` leading eigenvectors ``V (T, p)`` of the symmetric ``G (T, T)``, eigenvalues descending.

    Few of many (``p <= LANCZOS_MAX_FRACTION T``): implicitly restarted Lanczos (ARPACK
    ``eigsh``, start vector all ones, so deterministic) -- a few hundred ``G v`` products,
    ~10x faster than the full tridiagonalisation of ``eigh`` at 2,200 windows; else ``eigh``.
    (also when Lanczos does not converge). Either way the Rayleigh-Ritz step that follows makes
    the singular values exact.
    ``G`` may be overwritten.
    """
    T = G.shape[0]
    evals = None
    if p <= LANCZOS_MAX_FRACTION * T:
        try:
            evals, V = scipy.sparse.linalg.eigsh(G, k=p, which="LA", v0=np.ones(T))
        except scipy.sparse.linalg.ArpackNoConvergence:
            log.info("svd: Lanczos did not converge on the %d x %d Gram matrix; full eigh instead", T, T)
    if evals is None:
        evals, V = scipy.linalg.eigh(G, subset_by_index=[T - p, T - 1], overwrite_a=True)
    return V[:, np.argsort(-evals, kind="stable")]


def sign_convention(U: np.ndarray) -> np.ndarray:
    """+1/-1 per column of ``U (cell, mode)``: sum of loadings positive (dipoles: largest |loading|)."""
    total = U.sum(axis=0)
    scale = np.abs(U).sum(axis=0)
    peak = U[np.abs(U).argmax(axis=0), np.arange(U.shape[1])]
    ref = np.where(np.abs(total) > 1e-6 * scale, total, peak)
    return np.where(ref < 0, -1.0, 1.0)


def per_chunk(blocks, mean, weights, fills):
    """The per-chunk arguments of the kernels: rows of ``mean`` and ``weights`` (cell,), missing indices and
    their fill values of ``fills`` (per chunk; None: nothing to fill)."""
    nb = len(blocks)
    return (blocks.split(mean) if mean is not None else [None] * nb,
            blocks.split(weights) if weights is not None else [None] * nb,
            [f[0] for f in fills] if fills is not None else [None] * nb,
            [f[1] for f in fills] if fills is not None else [None] * nb)


def gram_svd(blocks, mean, weights, n_extra: int, fills, gram_dtype: np.dtype):
    """``(U (cell, p), s (p,), Vt (p, time), ||Xt||^2)`` of ``Xt = w (X - m)`` over ``blocks`` by the method of
    snapshots: the Gram matrix formed in ``gram_dtype`` (float64 sums), its ``p = n_extra`` leading eigenvectors,
    then an exact float64 Rayleigh-Ritz step (two passes over X)."""
    args = per_chunk(blocks, mean, weights, fills)
    G = sum(blocks.map(_gram_block, *args, [gram_dtype] * len(blocks)))
    # ||Xt||^2 is the trace of a float64 Gram matrix; a float32 one carries float32 rounding, so then
    # the total comes from the float64 projection pass
    total = float(np.trace(G)) if gram_dtype == np.float64 else None
    V = leading_eigenvectors(G, n_extra)  # overwrites G
    if total is None:
        parts = blocks.map(_project_block_and_square, *args, [V] * len(blocks))
        Y = np.concatenate([p[0] for p in parts])
        total = float(sum(p[1] for p in parts))
    else:
        Y = np.concatenate(blocks.map(_project_block, *args, [V] * len(blocks)))
    Q, R = np.linalg.qr(Y)  # Rayleigh-Ritz on span(V), in float64: exact SVD of X V
    Ur, s, Wt = np.linalg.svd(R)
    return Q @ Ur, s, (V @ Wt.T).T, total


def subspace_step(blocks, mean, weights, fills, Vt):
    """One warm-started subspace iteration from the right vectors ``Vt (p, time)``: ``(U, s, Vt, total)``.

    ``fills`` per chunk (missing indices, values) are applied to each chunk on the fly; None:
    ``blocks`` walk an already filled float64 matrix, used without copies.
    """
    nb = len(blocks)
    if fills is None:
        args = (blocks.split(mean) if mean is not None else [None] * nb,
                blocks.split(weights) if weights is not None else [None] * nb)
        project, project_back = _filled_project_block, _filled_project_back_block
    else:
        args = per_chunk(blocks, mean, weights, fills)
        project, project_back = _project_block, _project_back_block
    Y = np.concatenate(blocks.map(project, *args, [Vt.T] * nb))
    Q, _ = np.linalg.qr(Y)
    parts = blocks.map(project_back, *args, blocks.split(Q))
    Z = sum(p[0] for p in parts)  # Xt^T Q (time, p)
    Ub, s, Vt = np.linalg.svd(Z.T, full_matrices=False)
    return Q @ Ub, s, Vt, float(sum(p[1] for p in parts))
