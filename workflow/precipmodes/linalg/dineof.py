"""One update of iterative EOF imputation (DINEOF, EM; Beckers & Rixen 2003) on the missing entries of a matrix.

The missing entries are given per chunk of cells: ``rows[i]``, ``cols[i]`` (int, the entries' row and column in
the whole ``(cell, time)`` matrix) and their current values ``fill[i]`` (float64 mm). The loop itself is
:meth:`precipmodes.decomposition.svd.SVD._fit_gappy`.
"""

from __future__ import annotations

import numpy as np

from precipmodes.linalg.blocks import low_rank_at


def refilled(US: np.ndarray, V: np.ndarray, rows: list[np.ndarray], cols: list[np.ndarray],
             weights: np.ndarray | None, mean: np.ndarray | None) -> list[np.ndarray]:
    """The rank-k model ``m + (U_k S_k V_k^T) / w`` at the missing entries, per chunk (float64 mm).

    ``US (cell, k)``: ``U_k S_k``; ``V (time, k)``; ``weights``, ``mean``: ``(cell,)`` or None.
    """
    new = []
    for r, c in zip(rows, cols):
        values = low_rank_at(US, V, r, c)
        if weights is not None:
            values = values / weights[r]
        if mean is not None:
            values = values + mean[r]
        new.append(values)
    return new


def fill_change(new: list[np.ndarray], fill: list[np.ndarray], rows: list[np.ndarray],
                weights: np.ndarray | None) -> tuple[float, float]:
    """``(relative RMS change ||new - fill|| / ||new||, squared change in the weighted space w (new - fill))``
    of the missing entries from one update to the next (the change itself when ``new`` is all zero)."""
    diff2 = sum(float((a - b) @ (a - b)) for a, b in zip(new, fill))
    norm2 = sum(float(a @ a) for a in new)
    change = float(np.sqrt(diff2 / norm2)) if norm2 > 0 else float(np.sqrt(diff2))
    diff2_t = diff2 if weights is None else sum(
        float((weights[r] * (a - b)) @ (weights[r] * (a - b))) for r, a, b in zip(rows, new, fill))
    return change, diff2_t
