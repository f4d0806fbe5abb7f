"""Projection of windows on fitted modes: exact NNLS from Gram matrices, and gap filling.

Gap filling (the seed's NMF inpainting; DINEOF-like for SVD): a window with missing
cells is projected using only its observed cells -- least squares on the observed
rows of the SVD modes, or non-negative least squares on the observed rows of the NMF
basis -- and the reconstruction ``basis @ coefficients`` fills the missing cells.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize


def nnls_gram(D: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Exact NNLS ``argmin_{h>=0} ||W h - x||`` for every column, from ``D = W^T W`` and ``C = W^T X``.

    ``D (k, k)``, ``C (k, n)`` -> ``H (k, n)``. With ``D = Q L Q^T`` the problem equals
    ``min ||R h - y||`` with ``R = L^1/2 Q^T`` and ``y = L^-1/2 Q^T c`` (k x k), so each
    window costs a k x k NNLS instead of a cells x k one.
    """
    evals, Q = np.linalg.eigh(np.asarray(D, dtype=np.float64))
    keep = evals > max(evals.max(), 0) * 1e-12
    root = np.sqrt(evals[keep])
    R = root[:, None] * Q[:, keep].T
    Y = (Q[:, keep].T @ np.asarray(C, dtype=np.float64)) / root[:, None]
    H = np.empty((D.shape[0], C.shape[1]))
    for t in range(C.shape[1]):
        H[:, t] = scipy.optimize.nnls(R, Y[:, t], maxiter=50 * D.shape[0])[0]
    return H


def lstsq_gram(D: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Minimum-norm least squares ``argmin ||W a - x||`` for every column, from ``D = W^T W`` and ``C = W^T X``.

    ``D (k, k)``, ``C (k, n)`` -> ``A (k, n) = pinv(D) C``, directions with an eigenvalue of ``D`` below
    ``1e-12`` of the largest left out (singular values of ``W`` below ``1e-6`` of the largest).
    """
    evals, Q = np.linalg.eigh(np.asarray(D, dtype=np.float64))
    keep = evals > max(evals.max(), 0) * 1e-12
    Qk = Q[:, keep]
    return Qk @ ((Qk.T @ np.asarray(C, dtype=np.float64)) / evals[keep][:, None])
