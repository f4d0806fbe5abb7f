"""A labelled field ``(time, lat, lon)`` (or any dims) as the ``(cell, time)`` matrix the estimators fit, and back.

:func:`stack_field` stacks the dimensions other than the sample dimension into cells and drops the cells without
any data (all NaN: sea, outside the domain); :class:`GridLayout` puts a ``(..., cell)`` result back on the
field's own dimensions, NaN at the dropped cells.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import xarray as xr

from precipmodes.decomposition.matrix import as_cell_time
from precipmodes.errors import InputDataError

log = logging.getLogger("precipmodes")


@dataclass
class GridLayout:
    """How a field's non-sample dimensions were stacked into cells (to put results back)."""

    dims: tuple[str, ...]  # the stacked dimensions, e.g. ("lat", "lon")
    coords: dict  # each stacked dimension's 1-D coordinate (DataArray), where the input had one
    sizes: tuple[int, ...]
    flat: np.ndarray  # int64 (cell,): row-major index of each kept cell in the stacked dims

    def unstack(self, da: xr.DataArray) -> xr.DataArray:
        """``da(..., cell)`` on the field's dims ``(..., *dims)``, NaN where no cell was fitted."""
        other = [d for d in da.dims if d != "cell"]
        values = da.transpose(*other, "cell").values
        full = np.full(values.shape[:-1] + (int(np.prod(self.sizes)),), np.nan,
                       dtype=np.result_type(values.dtype, np.float32))
        full[..., self.flat] = values
        coords = {d: da[d] for d in other if d in da.coords}
        coords.update(self.coords)
        return xr.DataArray(full.reshape(values.shape[:-1] + self.sizes), dims=(*other, *self.dims),
                            coords=coords, name=da.name, attrs=da.attrs)


def stack_field(X: xr.DataArray, dim: str, label: str) -> tuple[xr.DataArray, GridLayout | None]:
    """``(matrix (cell, time), layout)`` of an input: a ``(cell, dim)`` matrix or a field ``(dim, ...)``.

    A field's other dims are stacked into ``cell`` (row-major); its coordinates on those
    dims (e.g. ``lat``, ``lon``, also 2-D ones of a curvilinear grid) become ``(cell,)``
    coordinates; cells that are NaN in every sample are dropped. ``dim`` is renamed ``time``.
    """
    if not isinstance(X, xr.DataArray) or dim not in X.dims:
        raise InputDataError(f"{label}: expected a DataArray with the sample dimension {dim!r}, "
                             f"got dims {getattr(X, 'dims', None)}")
    if "cell" in X.dims:
        return as_cell_time(X.rename({dim: "time"}) if dim != "time" else X, label), None
    dims = tuple(d for d in X.dims if d != dim)
    if not dims:
        raise InputDataError(f"{label}: no dimension besides {dim!r} to stack into cells")
    X = X.transpose(dim, *dims)
    sizes = tuple(X.sizes[d] for d in dims)
    values = np.asarray(X.values).reshape(X.sizes[dim], -1)
    flat = np.flatnonzero(~np.isnan(values).all(axis=0))
    coords = {"cell": np.arange(flat.size, dtype=np.int32), "time": X[dim].values if dim in X.coords
              else np.arange(X.sizes[dim])}
    for name, coord in X.coords.items():
        if name != dim and set(coord.dims) <= set(dims) and coord.dims:
            full = coord.broadcast_like(X.isel({dim: 0}, drop=True)).transpose(*dims).values.reshape(-1)
            coords[name] = ("cell", full[flat])
    matrix = xr.DataArray(np.ascontiguousarray(values[:, flat].T), dims=("cell", "time"), coords=coords,
                          name=X.name, attrs=X.attrs)
    layout = GridLayout(dims, {d: X[d] for d in dims if d in X.coords}, sizes, flat)
    n_empty = int(np.prod(sizes)) - flat.size
    if n_empty:
        log.info("%s: %d of %d grid cells have no data in any sample; left out (NaN on output)",
                 label, n_empty, int(np.prod(sizes)))
    return matrix, layout
