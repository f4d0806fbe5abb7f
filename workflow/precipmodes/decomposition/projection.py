"""Gap filling with fitted modes (the seed's NMF inpainting; DINEOF-like for SVD).

A window with missing cells is projected using only its observed cells -- least squares on the observed
rows of the SVD modes, or non-negative least squares on the observed rows of the NMF basis -- and the
reconstruction ``basis @ coefficients`` fills the missing cells. The solvers are :mod:`precipmodes.linalg.nnls`.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from precipmodes.decomposition.matrix import as_cell_time


def fill_gaps(model, X: xr.DataArray) -> xr.DataArray:
    """Reconstruct every window of ``X`` from its observed (non-NaN) cells only (gap filling).

    Parameters
    ----------
    model : precipmodes.SVD or precipmodes.NMF
        Fitted on the same cells. SVD windows are solved by least squares on the observed rows
        (respecting centring and weighting), NMF windows by NNLS (``model.transform``).
    X : xarray.DataArray
        ``(cell, time)`` windows in mm, NaN where missing.

    Returns
    -------
    xarray.DataArray
        ``(cell, time)`` float64 mm: the full reconstruction, observed cells included (as
        reconstructed); NaN for a window with no observed cell.
    """
    X = as_cell_time(X, "gap-filling input")
    coeffs = model.transform(X, label="gap-filling input")
    return X.copy(data=model.inverse_transform(coeffs).transpose("cell", "time").values.astype(np.float64))
