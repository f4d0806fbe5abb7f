"""Opening the split matrices (train.nc, test.nc) as ``(cell, time)`` DataArrays."""

from __future__ import annotations

import xarray as xr

from precipmodes.decomposition.matrix import as_cell_time
from precipmodes.errors import InputDataError
from precipmodes.io.netcdf import open_netcdf


def open_matrix(path, cell_chunk: int = 20000, max_in_memory_mb: float | None = None) -> tuple[xr.Dataset, xr.DataArray]:
    """``(dataset, precip(cell, time))`` of a split file (train.nc/test.nc).

    The matrix is loaded into memory when it is at most ``max_in_memory_mb`` (None: always),
    else left as dask chunks of ``cell_chunk`` cells (read again on every pass).
    """
    ds = open_netcdf(path, chunks={"cell": cell_chunk})
    if "precip" not in ds:
        raise InputDataError(f"{path}: variable 'precip' (cell, time) not found (has {sorted(ds.data_vars)}); "
                             "rerun the split rule")
    X = as_cell_time(ds["precip"], f"{path} variable precip")
    if max_in_memory_mb is None or X.nbytes <= max_in_memory_mb * 1e6:
        X = X.load()
    return ds, X
