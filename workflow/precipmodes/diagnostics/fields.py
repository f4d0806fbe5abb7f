"""The fields a climate scientist draws beside the modes: moments of the training totals, modes as
regression and correlation maps, the local share of the first k modes, per-cell skill, spectra and the
mean seasonal cycle of the coefficients.

Everything takes the workflow's own layouts - ``precip(cell, time)`` matrices (train.nc/test.nc, cells
with ``lat``/``lon`` coordinates), svd.nc, nmf.nc and evaluation.nc - and returns labelled DataArrays;
the figures are :mod:`precipmodes.plots`. Missing entries (NaN) are left out of every sum.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from precipmodes.decomposition.matrix import area_weights
from precipmodes.diagnostics.summary import is_centred


def at_cells(field: xr.DataArray, cells: xr.DataArray) -> xr.DataArray:
    """``field(..., lat, lon)`` at the cells of ``cells`` (a matrix with ``lat``/``lon`` on ``cell``)."""
    picked = field.sel(lat=xr.DataArray(cells["lat"].values, dims="cell"),
                       lon=xr.DataArray(cells["lon"].values, dims="cell"))
    return picked.drop_vars(["lat", "lon"]).assign_coords(cell=cells["cell"], lat=cells["lat"], lon=cells["lon"])


def training_moments(train: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """Mean and standard deviation over time of each cell's totals (mm), missing windows left out."""
    values = np.asarray(train.transpose("cell", "time").values, dtype=np.float64)
    coords = {"cell": train["cell"], "lat": train["lat"], "lon": train["lon"]}
    mean = xr.DataArray(np.nanmean(values, axis=1), dims="cell", coords=coords, attrs={"units": "mm"})
    std = xr.DataArray(np.nanstd(values, axis=1), dims="cell", coords=coords, attrs={"units": "mm"})
    return mean, std


def regression_maps(train: xr.DataArray, coefficients: xr.DataArray, dim: str) -> tuple[xr.DataArray, xr.DataArray]:
    """Each mode (component) as maps of the training totals regressed on, and correlated with, its
    coefficients ``coefficients(dim, time)``: ``regression(dim, cell)`` in mm per standard deviation of the
    coefficient (the change of the cell's total when the mode's coefficient rises by one standard deviation)
    and ``correlation(dim, cell)`` (1). Over the windows where the cell is observed."""
    x = np.asarray(train.transpose("cell", "time").values, dtype=np.float64)
    a = np.asarray(coefficients.transpose(dim, "time").sel(time=train["time"]).values, dtype=np.float64)
    observed = np.isfinite(x)
    n = observed.sum(axis=1)[None, :]  # (1, cell)
    x0 = np.where(observed, x, 0.0)
    # per cell: sums over its observed windows
    sum_a = a @ observed.T  # (dim, cell)
    sum_aa = (a ** 2) @ observed.T
    sum_x = x0.sum(axis=1)[None, :]
    sum_xx = (x0 ** 2).sum(axis=1)[None, :]
    sum_ax = a @ x0.T
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = sum_ax / n - (sum_a / n) * (sum_x / n)
        var_a = sum_aa / n - (sum_a / n) ** 2
        var_x = sum_xx / n - (sum_x / n) ** 2
        regression = cov / np.sqrt(var_a)
        correlation = cov / np.sqrt(var_a * var_x)
    coords = {dim: coefficients[dim], "cell": train["cell"], "lat": train["lat"], "lon": train["lon"]}
    return (xr.DataArray(regression, dims=(dim, "cell"), coords=coords, attrs={"units": "mm"}),
            xr.DataArray(np.clip(correlation, -1, 1), dims=(dim, "cell"), coords=coords, attrs={"units": "1"}))


def local_share(train: xr.DataArray, svd: xr.Dataset) -> xr.DataArray:
    """``share(k, cell)``: the part of each cell's sum of squares that the first k SVD modes reproduce,
    1 - sum_t (x - x_k)^2 / sum_t x^2 (uncentred SVD), or of its variance, with x - mean, when ``svd.center``;
    x_k is the rank-k reconstruction from the modes and training coefficients of svd.nc (weights undone)."""
    x = np.asarray(train.transpose("cell", "time").values, dtype=np.float64)
    modes = at_cells(svd["spatial_modes"], train).transpose("mode", "cell").values
    a = svd["temporal_coefficients"].transpose("mode", "time").sel(time=train["time"]).values
    weights = area_weights(train["lat"].values) if int(svd.attrs.get("area_weighting", 0)) else np.ones(x.shape[0])
    mean = at_cells(svd["mean"], train).values if is_centred(svd) and "mean" in svd else np.zeros(x.shape[0])
    target = (x - mean[:, None]) * weights[:, None]  # what the SVD decomposed
    observed = np.isfinite(target)
    total = np.where(observed, target ** 2, 0.0).sum(axis=1)
    fitted = np.zeros_like(target)
    shares = []
    for k in range(modes.shape[0]):
        fitted += np.outer(modes[k], a[k])
        residual = np.where(observed, (target - fitted) ** 2, 0.0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            shares.append(np.where(total > 0, 1.0 - residual / total, np.nan))
    return xr.DataArray(np.array(shares), dims=("mode", "cell"),
                        coords={"mode": svd["mode"].values, "cell": train["cell"], "lat": train["lat"],
                                "lon": train["lon"]}, attrs={"units": "1"})


def cell_skill(observed: xr.DataArray, reconstruction: xr.DataArray, reference: xr.DataArray) -> xr.DataArray:
    """Skill of a reconstruction at each grid cell against a reference (climatology) over the test windows:
    1 - sum_t (o - r)^2 / sum_t (o - c)^2 (1 perfect, 0 as good as the reference, < 0 worse); NaN where the
    cell is never observed or the reference is exact. Inputs ``(time, lat, lon)`` on the same windows."""
    o = observed.transpose("time", "lat", "lon")
    error = ((o - reconstruction.transpose("time", "lat", "lon")) ** 2).sum("time", skipna=True, min_count=1)
    base = ((o - reference.transpose("time", "lat", "lon")) ** 2).sum("time", skipna=True, min_count=1)
    return (1.0 - error / base.where(base > 0)).assign_attrs(units="1")


def power_spectrum(series: xr.DataArray, dim: str, step: np.timedelta64) -> xr.DataArray:
    """Periodogram of each ``series(dim, time)`` on a regular axis of windows ``step`` apart (NaN = a
    dropped window, set to the series' mean), as ``power(dim, period)`` with the period in days, normalised
    so that each spectrum sums to 1 (the share of the series' variance at each period)."""
    values = np.asarray(series.transpose(dim, "time").values, dtype=np.float64)
    anomalies = values - np.nanmean(values, axis=1, keepdims=True)
    anomalies = np.where(np.isfinite(anomalies), anomalies, 0.0)
    power = np.abs(np.fft.rfft(anomalies, axis=1))[:, 1:] ** 2
    step_days = step / np.timedelta64(1, "D")
    frequency = np.fft.rfftfreq(values.shape[1], d=step_days)[1:]  # cycles per day
    with np.errstate(invalid="ignore", divide="ignore"):
        power = power / power.sum(axis=1, keepdims=True)
    return xr.DataArray(power, dims=(dim, "period"), coords={dim: series[dim].values, "period": 1.0 / frequency},
                        attrs={"units": "1"})


def seasonal_cycle(series: xr.DataArray, dim: str) -> tuple[xr.DataArray, xr.DataArray]:
    """Mean and standard error of each ``series(dim, time)`` per calendar month of the window start
    (``(dim, month)``; months without windows are NaN)."""
    series = series.dropna("time", how="all")
    grouped = series.groupby("time.month")
    mean = grouped.mean("time").reindex(month=np.arange(1, 13))
    count = grouped.count("time").reindex(month=np.arange(1, 13))
    error = (grouped.std("time") / np.sqrt(count.where(count > 0))).reindex(month=np.arange(1, 13))
    units = series.attrs.get("units", "mm")
    return (mean.transpose(dim, "month").assign_attrs(units=units),
            error.transpose(dim, "month").assign_attrs(units=units))
