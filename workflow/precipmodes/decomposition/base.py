"""The estimator skeleton shared by :class:`~precipmodes.decomposition.svd.SVD` and
:class:`~precipmodes.decomposition.nmf.NMF`.

Input handling (as xeofs' preprocessor): ``fit(X, dim="time")`` takes either the
pipeline's ``(cell, time)`` matrix (coordinates ``lat(cell)``, ``lon(cell)``) or a
labelled field such as ``precip(time, lat, lon)``; the dimensions other than ``dim``
are stacked into cells, cells without any data (all NaN: sea, outside the domain) are
dropped and come back as NaN on output. Then, for both kinds of input:

* the matrix is scanned once (:func:`precipmodes.linalg.blocks.scan`): infinite values,
  cells or windows without any observed value are refused, naming where they sit;
* cells that are zero in every observed window are kept out of the fit and get a
  loading / basis of exactly 0 (what the full problem gives them);
* NaN entries that remain are missing data, handled inside the fit (SVD: iterative
  EOF imputation; NMF: EM inside HALS); ``n_missing_entries_``, ``missing_fraction_``,
  ``gap_method_`` and ``gap_iterations_`` say how many and how.

Fitted results are public attributes ending in ``_`` (labelled ``xarray`` objects
on the fitted cells) and accessors: :meth:`components` (spatial patterns: ``(mode,
lat, lon)`` when fitted on a field, ``(cell, mode)`` on a matrix), :meth:`scores`
(``(mode, time)``), :meth:`transform` / :meth:`inverse_transform`, and
:meth:`to_dataset` / ``from_dataset`` for ``svd.nc`` / ``nmf.nc``.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, Mapping

import numpy as np
import xarray as xr

from precipmodes.decomposition.constraints import Constraint, Interval, check_parameters
from precipmodes.decomposition.layout import stack_field
from precipmodes.decomposition.matrix import as_cell_time, require_rank, require_usable
from precipmodes.decomposition.results import StoredResults
from precipmodes.errors import ConvergenceWarning, InputDataError
from precipmodes.linalg.blocks import CellBlocks, MatrixScan, scan

log = logging.getLogger("precipmodes")


_ABSENT = object()
RANK = Interval(integer=True, low=1)  # the number of modes / components of every estimator


class Decomposition(StoredResults):
    """Shared skeleton of SVD and NMF (see the module docstring). Subclasses set the class constants."""

    mode_dim = "mode"  # name of the mode / component dimension
    rank_parameter = "n_modes"  # the constructor parameter holding the number of modes
    kind = "decomposition"  # name in logs and messages
    nonnegative = False  # projections constrained to coefficients >= 0
    #: parameter -> allowed values, checked by ``fit`` (:mod:`precipmodes.decomposition.constraints`; subclasses)
    _parameter_constraints: dict[str, Constraint] = {}
    #: the config section of the estimator's parameters (``svd``, ``nmf``)
    config_section = ""
    #: parameter -> its key path inside ``config_section`` (:meth:`from_config`); the rank parameter comes
    #: from the experiment's ``n_modes``
    config_keys: dict[str, tuple[str, ...]] = {}

    @classmethod
    def from_config(cls, section: Mapping, rank: int):
        """Estimator from its config section (``config_section``, e.g. the ``svd`` section) and its rank
        (an experiment's ``n_modes``); keys the section leaves out keep the estimator's defaults."""
        values: dict[str, Any] = {}
        for parameter, path in cls.config_keys.items():
            node: Any = section
            for key in path:
                node = node.get(key, _ABSENT) if isinstance(node, Mapping) else _ABSENT
            if node is not _ABSENT:
                values[parameter] = node
        return cls(**{cls.rank_parameter: rank}, **values)

    # ---------------------------------------------------------------- fit skeleton
    def fit(self, X: xr.DataArray, dim: str = "time", label: str = "training matrix",
            source: str = "the split step"):
        """Fit the estimator.

        Parameters
        ----------
        X : DataArray
            ``(cell, time)`` matrix with ``lat(cell)``, ``lon(cell)`` (the pipeline's train.nc), or a field
            ``(dim, ...)`` such as ``precip(time, lat, lon)``; mm; NaN = missing (all-NaN grid points of
            a field are left out).
        dim : str
            The sample dimension (windows); every other dimension of a field is stacked into cells.
        label, source : str
            Name of the matrix and of the file it came from, for error messages.

        Returns
        -------
        self
        """
        self._check_parameters()
        Xc, self.layout_ = stack_field(X, dim, label)
        self.sample_dim_ = dim
        n_cells, n_windows = Xc.shape
        rank = getattr(self, self.rank_parameter)
        require_rank(rank, n_cells, n_windows, label, self.rank_parameter)
        found = scan(CellBlocks(Xc, self.cell_chunk))
        require_usable(Xc, found, label, source)
        self._check_input(Xc, found, label, source)
        keep = found.nonzero_cells
        n_zero = int((~keep).sum())
        if n_zero:
            log.info("%s: %d of %d cells are zero in every training window; kept out of the fit (%s 0)",
                     self.kind, n_zero, n_cells, "loading" if self.kind == "svd" else "basis")
            require_rank(rank, int(keep.sum()), n_windows, f"{label} without its all-zero cells",
                         self.rank_parameter)
        Xk = Xc.isel(cell=np.flatnonzero(keep)) if n_zero else Xc
        self.cells_ = Xc["cell"].copy()
        self.time_ = Xc["time"].copy()
        self.n_zero_cells_ = n_zero
        self.n_missing_entries_ = found.n_missing
        self.missing_fraction_ = found.n_missing / float(n_cells * n_windows)
        self.gap_iterations_ = 0
        self.gap_method_ = "none"
        self.converged_ = True
        self._fit_cells(Xk, found, keep)
        if self.n_missing_entries_:
            log.info("%s: %d of %d entries (%.2f%%) missing, handled by %s (%d iterations)", self.kind,
                     self.n_missing_entries_, n_cells * n_windows, 100 * self.missing_fraction_,
                     self.gap_method_, self.gap_iterations_)
        return self

    def _check_parameters(self) -> None:
        """Raise :class:`~precipmodes.errors.ParameterError` for a parameter outside its constraint
        (subclasses add the checks that involve several parameters)."""
        check_parameters(self, {self.rank_parameter: RANK, **self._parameter_constraints})

    def _check_input(self, X: xr.DataArray, found: MatrixScan, label: str, source: str) -> None:
        """Estimator-specific checks of the scanned input (subclasses)."""

    def _fit_cells(self, Xk: xr.DataArray, found: MatrixScan, keep: np.ndarray) -> None:
        raise NotImplementedError

    def _warn_not_converged(self, what: str, stacklevel: int = 4) -> None:
        """ConvergenceWarning (pointing at the caller of ``fit``) and a log line; ``converged_`` False."""
        self.converged_ = False
        warnings.warn(f"{self.kind}: {what}", ConvergenceWarning, stacklevel=stacklevel)
        log.warning("%s: %s", self.kind, what)

    @staticmethod
    def _cell_array(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """``values`` of the kept cells (leading axis) spread onto all fitted cells (0 on the all-zero ones)."""
        if keep.all():
            return np.asarray(values, dtype=np.float64)
        out = np.zeros((keep.size,) + values.shape[1:])
        out[keep] = values
        return out

    # ---------------------------------------------------------------- results
    def _require_fitted(self) -> None:
        if not hasattr(self, "cells_"):
            raise RuntimeError(f"{type(self).__name__}: call fit() (or from_dataset) first")

    def _cell_coords(self) -> dict:
        return {name: coord for name, coord in self.cells_.coords.items()}

    def _labelled_basis(self, values: np.ndarray) -> xr.DataArray:
        coords = self._cell_coords()
        coords[self.mode_dim] = np.arange(1, values.shape[1] + 1)
        return xr.DataArray(values, dims=("cell", self.mode_dim), coords=coords)

    def _labelled_scores(self, values: np.ndarray, time) -> xr.DataArray:
        return xr.DataArray(values, dims=(self.mode_dim, "time"),
                            coords={self.mode_dim: np.arange(1, values.shape[0] + 1), "time": time})

    def _on_input_layout(self, da: xr.DataArray) -> xr.DataArray:
        """A ``(..., cell)`` result on the input's layout: the field's dims when fitted on a field."""
        if self.layout_ is None:
            return da
        out = self.layout_.unstack(da)
        return out.rename({"time": self.sample_dim_}) if "time" in out.dims and self.sample_dim_ != "time" else out

    def projection_basis(self) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """``(basis (cell, mode), mean (cell,) or None, weights (cell,) or None)``, float64, fitted cells.

        A window ``x`` is modelled as ``mean + basis @ a / weights``.
        """
        raise NotImplementedError

    def components(self) -> xr.DataArray:
        """Spatial patterns of the fit.

        Returns
        -------
        xarray.DataArray
            ``(mode, <field dims>)`` (e.g. ``(mode, lat, lon)``, NaN where no cell was fitted) when
            fitted on a field, else ``(cell, mode)`` with ``lat(cell)``, ``lon(cell)``. SVD: orthonormal
            columns of U, dimensionless (in the weighted space when ``area_weighting``); NMF: the basis,
            maximum 1 per component (dimension ``component``).
        """
        self._require_fitted()
        basis = self._labelled_basis(self.projection_basis()[0])
        if self.layout_ is None:
            return basis
        return self._on_input_layout(basis.transpose(self.mode_dim, "cell"))

    def scores(self) -> xr.DataArray:
        """Coefficients of the training samples.

        Returns
        -------
        xarray.DataArray
            ``(mode, <sample dim>)`` in the data's units (mm): SVD ``S V^T = U^T x``; NMF the
            activations ``H`` (amount at each component's peak cell; dimension ``component``).
        """
        self._require_fitted()
        scores = self._training_scores()
        return scores.rename({"time": self.sample_dim_}) if self.sample_dim_ != "time" else scores

    def _training_scores(self) -> xr.DataArray:
        raise NotImplementedError

    # ---------------------------------------------------------------- projection
    def _matrix(self, X: xr.DataArray, label: str) -> xr.DataArray:
        """``X`` as a ``(cell, time)`` matrix on the fitted cells (a field is stacked like the fit's input)."""
        dim = getattr(self, "sample_dim_", "time")
        if "cell" in X.dims or getattr(self, "layout_", None) is None:
            return as_cell_time(X.rename({dim: "time"}) if dim != "time" and dim in X.dims else X, label)
        layout = self.layout_
        X = X.transpose(dim, *layout.dims)
        values = np.asarray(X.values).reshape(X.sizes[dim], -1)[:, layout.flat].T
        return xr.DataArray(values, dims=("cell", "time"), coords={**self._cell_coords(), "time": X[dim].values})

    def _full_window_coefficients(self, target: np.ndarray, method: str | None) -> np.ndarray:
        """Coefficients of fully observed windows ``target (cell, n)`` (centred and weighted)."""
        basis = self.projection_basis()[0]
        return self._solve_gram(basis.T @ basis, basis.T @ target, method)

    def _solve_gram(self, G: np.ndarray, c: np.ndarray, method: str | None) -> np.ndarray:
        """Coefficients ``(mode, n)`` from the Gram matrix ``G = B^T B`` of the basis rows and ``c = B^T x`` (subclasses)."""
        raise NotImplementedError

    def _gappy_window_coefficients(self, basis: np.ndarray, target: np.ndarray, observed: np.ndarray,
                                   method: str | None) -> np.ndarray:
        """Coefficients ``(mode, n)`` of windows ``target (cell, n)`` with missing cells, each from its observed rows.

        Through Gram matrices: ``B_o^T x_o = B^T x`` with the missing entries set to 0 (one product for
        all windows) and ``B_o^T B_o`` formed from the smaller side, the observed rows or
        ``B^T B - B_m^T B_m`` -- a k x k problem per window instead of a cells x k one (the per-window
        least squares on ``B_o`` took most of the evaluate rule at the seed's grid).
        """
        gram = basis.T @ basis
        products = basis.T @ np.where(observed, target, 0.0)
        out = np.empty((basis.shape[1], target.shape[1]))
        for i in range(target.shape[1]):
            obs = observed[:, i]
            if 2 * np.count_nonzero(obs) <= obs.size:
                rows = basis[obs]
                G = rows.T @ rows
            else:
                rows = basis[~obs]
                G = gram - rows.T @ rows
            out[:, i] = self._solve_gram(G, products[:, i:i + 1], method)[:, 0]
        return out

    def transform(self, X: xr.DataArray, method: str | None = None, label: str = "matrix") -> xr.DataArray:
        """Project new windows on the fitted modes.

        Fully observed windows use the estimator's projection; a window with missing cells
        is solved on its observed cells only (SVD: least squares, NMF: NNLS or pinv on the
        observed rows of the basis).

        Parameters
        ----------
        X : xarray.DataArray
            Windows on the fitted cells: a ``(cell, time)`` matrix or a field laid out like the
            fit's input; mm, NaN = missing.
        method : str, optional
            NMF only: ``nnls`` (exact, >= 0) or ``pinv`` (the seed's).
        label : str
            Name of ``X`` in error messages.

        Returns
        -------
        xarray.DataArray
            ``(mode, time)`` coefficients in mm; NaN for a window without any observed cell.
        """
        self._require_fitted()
        X = self._matrix(X, label)
        basis, mean, weights = self.projection_basis()
        values = np.asarray(X.values, dtype=np.float64)
        if values.shape[0] != basis.shape[0]:
            raise InputDataError(f"{label}: {values.shape[0]} cells, the model was fitted on {basis.shape[0]}")
        target = values
        if mean is not None:
            target = target - mean[:, None]
        if weights is not None:
            target = target * weights[:, None]
        observed = ~np.isnan(values)
        full = observed.all(axis=0)
        coeffs = np.full((basis.shape[1], values.shape[1]), np.nan)
        if full.all():
            coeffs = self._full_window_coefficients(target, method)
        else:
            if full.any():
                coeffs[:, full] = self._full_window_coefficients(target[:, full], method)
            gappy = np.flatnonzero(~full & observed.any(axis=0))
            if gappy.size:
                coeffs[:, gappy] = self._gappy_window_coefficients(basis, target[:, gappy], observed[:, gappy],
                                                                   method)
        return self._labelled_scores(coeffs, X["time"])

    def inverse_transform(self, coeffs: xr.DataArray) -> xr.DataArray:
        """Reconstruct windows from coefficients: ``mean + basis a / weights``.

        Parameters
        ----------
        coeffs : xarray.DataArray
            ``(mode, ...)`` coefficients (mm), e.g. from :meth:`transform` or :meth:`scores`; only the
            first ``coeffs.sizes[mode]`` modes are used (a rank-k reconstruction).

        Returns
        -------
        xarray.DataArray
            ``(cell, ...)`` in mm on the fitted cells, or on the field's dims when fitted on a field.
        """
        self._require_fitted()
        basis, mean, weights = self.projection_basis()
        a = coeffs.transpose(self.mode_dim, ...)
        values = basis[:, : a.shape[0]] @ a.values
        if weights is not None:
            values = values / weights.reshape((-1,) + (1,) * (values.ndim - 1))
        if mean is not None:
            values = values + mean.reshape((-1,) + (1,) * (values.ndim - 1))
        other = [d for d in a.dims if d != self.mode_dim]
        out = xr.DataArray(values, dims=("cell", *other),
                           coords={**self._cell_coords(), **{d: a[d] for d in other if d in a.coords}})
        return self._on_input_layout(out.transpose(*other, "cell")) if self.layout_ is not None else out


class SingularSpectrum:
    """The spectrum accessors of the SVD-type estimators (:class:`~precipmodes.SVD`,
    :class:`~precipmodes.HilbertSVD`): fitted ``singular_values_`` and ``total_sum_of_squares_``."""

    def singular_values(self) -> xr.DataArray:
        """Singular values ``(mode,)``, mm."""
        self._require_fitted()
        return self.singular_values_

    def explained_variance_ratio(self) -> xr.DataArray:
        """``s_k^2 / ||X||_F^2`` by mode: the share of the fitted matrix's total sum of squares (all modes)."""
        self._require_fitted()
        return (self.singular_values_ ** 2 / self.total_sum_of_squares_).rename("explained_variance_ratio")
