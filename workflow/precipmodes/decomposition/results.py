"""What a fitted estimator keeps in its NetCDF (``svd.nc``, ``nmf.nc``, ``hilbert.nc``) and how it comes back.

:class:`StoredResults` is the part of :class:`~precipmodes.decomposition.base.Decomposition` that writes a fitted
estimator to a dataset on the grid (:meth:`~StoredResults.to_dataset`: its variables, its parameters as JSON, how
missing entries were treated) and rebuilds one from such a dataset for given cells
(:meth:`~StoredResults.from_dataset`). The subclasses say which variables (``_dataset``, ``_restore``).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import xarray as xr

from precipmodes.grid import unstack_cells


class StoredResults:
    """Datasets of a fitted estimator (a mixin of :class:`~precipmodes.decomposition.base.Decomposition`)."""

    def _on_grid(self, da: xr.DataArray, lat: xr.DataArray | None, lon: xr.DataArray | None) -> xr.DataArray:
        """A ``(..., cell)`` result on the grid ``(lat, lon)``, or on the fitted field's dims when not given."""
        if lat is not None and lon is not None:
            return unstack_cells(da, lat, lon)
        if self.layout_ is None:
            raise ValueError(f"{type(self).__name__}.to_dataset: pass lat and lon (fitted on a (cell, time) matrix)")
        return self.layout_.unstack(da)

    def to_dataset(self, lat: xr.DataArray | None = None, lon: xr.DataArray | None = None) -> xr.Dataset:
        """``svd.nc`` / ``nmf.nc`` content on the grid ``(lat, lon)`` (1-D axes, e.g. of the land mask;
        default: the fitted field's own grid). Variables from :meth:`_dataset`, plus :meth:`gap_attrs`."""
        self._require_fitted()
        ds = self._dataset(lambda da: self._on_grid(da, lat, lon))
        ds.attrs.update(self.gap_attrs())
        ds.attrs["parameters"] = json.dumps(self.get_params(), sort_keys=True, default=lambda v: v.item())
        return ds

    def get_params(self) -> dict[str, Any]:
        """Every constructor parameter and its value (``to_dataset`` records them in the ``parameters``
        attribute as JSON, ``from_dataset`` restores them)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def _dataset(self, on_grid) -> xr.Dataset:
        """The estimator's variables; ``on_grid`` puts a ``(..., cell)`` array on the output grid (subclasses)."""
        raise NotImplementedError

    @classmethod
    def from_dataset(cls, ds: xr.Dataset, cells: xr.DataArray):
        """Estimator from its dataset (:meth:`to_dataset`) for the cells of ``cells`` (``(cell, ...)`` with lat/lon),
        with every parameter the dataset records (a file without the ``parameters`` attribute, written by an
        earlier version: those its other attributes hold)."""
        recorded = ds.attrs.get("parameters")
        if recorded:
            names = {f.name for f in dataclasses.fields(cls)}
            model = cls(**{k: v for k, v in json.loads(recorded).items() if k in names})
        else:
            model = cls._from_attrs(ds)
        model._set_cells(cells, ds["time"])
        model._restore(ds, cells)
        model._restore_gap_attrs(ds.attrs)
        return model

    @classmethod
    def _from_attrs(cls, ds: xr.Dataset):
        """A new estimator with the parameters that the attributes of an earlier version's ``ds`` hold (subclasses)."""
        raise NotImplementedError

    def _restore(self, ds: xr.Dataset, cells: xr.DataArray) -> None:
        """Fitted attributes from ``ds`` at the cells of ``cells`` (subclasses)."""
        raise NotImplementedError

    def gap_attrs(self) -> dict:
        """NetCDF attributes saying how many entries were missing and how the fit treated them."""
        return {"n_missing_entries": int(self.n_missing_entries_), "missing_fraction": float(self.missing_fraction_),
                "gap_method": self.gap_method_, "gap_iterations": int(self.gap_iterations_),
                "converged": int(self.converged_)}

    def _restore_gap_attrs(self, attrs: dict) -> None:
        self.n_missing_entries_ = int(attrs.get("n_missing_entries", 0))
        self.missing_fraction_ = float(attrs.get("missing_fraction", 0.0))
        self.gap_method_ = attrs.get("gap_method", "none")
        self.gap_iterations_ = int(attrs.get("gap_iterations", 0))
        self.converged_ = bool(attrs.get("converged", 1))
        self.n_zero_cells_ = int(attrs.get("n_zero_cells", 0))

    def _set_cells(self, cells: xr.DataArray, time) -> None:
        """Fitted-cell coordinates from a ``(cell, ...)`` array with lat/lon (``from_dataset``)."""
        self.cells_ = xr.DataArray(cells["cell"].values, dims="cell", coords={
            "cell": cells["cell"].values, "lat": ("cell", cells["lat"].values), "lon": ("cell", cells["lon"].values)})
        self.time_ = time
        self.layout_ = None
        self.sample_dim_ = "time"

    @staticmethod
    def _pick(ds_var: xr.DataArray, cells: xr.DataArray) -> np.ndarray:
        """Values of a gridded ``(..., lat, lon)`` variable at each cell of ``cells`` (NaN -> 0), float64."""
        pick = dict(lat=xr.DataArray(cells["lat"].values, dims="cell"),
                    lon=xr.DataArray(cells["lon"].values, dims="cell"))
        # whole grid first: pointwise indexing of a file-backed variable reads cell by cell (8 s for
        # 23,000 cells x 25 modes at the seed's grid, instead of 0.1 s)
        picked = ds_var.load().sel(pick, method="nearest")
        if picked.ndim > 1:
            picked = picked.transpose("cell", ...)
        return np.nan_to_num(picked.values.astype(np.float64))
