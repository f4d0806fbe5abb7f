"""Turn any opened precipitation array into the canonical raw dataset.

:func:`standardise` is the one function every real source (``files``, ``http``,
``seed_binary``) goes through. It

* converts units to mm per time step (:func:`parse_units`: m, cm, mm, kg m-2 as
  amounts; any of them per s, h or day as rates, in the usual spellings such as
  ``mm/day``, ``mm d-1``, ``mm/hr``, ``kg m**-2 s**-1``, ``kg m^-2``);
* labels every step by its START and writes ``time_bnds`` = [start, end).
  Time bounds in the file win. Without them the step length comes from
  ``source.<kind>.step_hours``, else the ``cell_methods`` interval (``time: sum
  (interval: 1 hr)``), else the most common spacing of the time stamps (so the
  gaps between E-OBS winters do not matter). Stamps marking the END of the
  accumulation (ERA5, GRIB ``valid_time``, Stage IV) are shifted back by one step
  (``time_label: end``); daily files stamped 00:00 are taken as [00:00, 24:00) of
  that day (``time_label: start``);
* maps longitudes 0..360 to -180..180 (past 180 for a domain across the 180°
  meridian, :func:`~precipmodes.grid.normalise_domain_lon`) and re-sorts them, sorts latitude
  ascending, subsets the configured domain (cell centres inside
  ``domain.lon`` x ``domain.lat``, inclusive);
* maps curvilinear grids (2-D lat/lon) onto a regular grid by nearest
  neighbour when ``source.<kind>.regrid: nearest`` (:func:`regrid_nearest`), or refuses
  them with a message saying how to regrid;
* checks the values (:mod:`precipmodes.io.sources.values`) in one streaming dask pass:
  negative amounts down to -:data:`~precipmodes.io.sources.values.NEGATIVE_TOLERANCE_MM` mm
  (packing noise, e.g. ERA5's -1e-7 m) are clipped to 0, anything more negative, +-inf and
  NaN-only data are errors, amounts above ``source.max_mm_per_hour`` an error or set missing;
* casts to float32 and sets CF attributes, staying lazy (dask) throughout.
"""

from __future__ import annotations

import re
from typing import Mapping

import numpy as np
import pandas as pd
import xarray as xr

from precipmodes.errors import InputDataError
from precipmodes.grid import normalise_domain_lon
from precipmodes.io.sources.values import judge_values, scan_values, step_limit
from precipmodes.logs import log

STANDARD_NAME = "lwe_thickness_of_precipitation_amount"  # CF name of raw.nc's precip (amount per step)
UNITS = "mm"
UNITS_HELP = ("m, cm, mm, kg m-2 (amounts) or any of them per s, h or day (rates), e.g. "
              "'mm/day', 'mm d-1', 'mm/hr', 'kg m-2 s-1', 'kg m**-2 s**-1'")
_LENGTH_MM = {"m": 1000.0, "metre": 1000.0, "meter": 1000.0, "cm": 10.0, "mm": 1.0,
              "millimetre": 1.0, "millimeter": 1.0}
_TIME_S = {"s": 1.0, "sec": 1.0, "second": 1.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hr": 3600.0,
           "hour": 3600.0, "d": 86400.0, "day": 86400.0}
_INTERVAL = re.compile(r"time:\s*sum\s*\(\s*interval:\s*([\d.]+)\s*([a-z]+)", re.IGNORECASE)


def parse_units(units: str | None, origin: str = "data", key: str = "source.files") -> tuple[float, float | None]:
    """Parse precipitation units into ``(mm per unit amount, seconds of the rate's time unit)``.

    Amounts (``m``, ``mm``, ``kg m-2``) give ``(factor, None)``; rates give the
    seconds of their time unit, e.g. ``"mm/day" -> (1.0, 86400.0)``,
    ``"kg m-2 s-1" -> (1.0, 1.0)`` (1 kg m-2 of water is 1 mm).
    """
    if not units or not str(units).strip():
        raise InputDataError(f"{origin}: the precipitation variable has no units attribute; "
                             f"set {key}.units to one of: {UNITS_HELP}")
    text = str(units).strip().lower().replace("**", "").replace("^", "")
    text = re.sub(r"\s*/\s*", " / ", text)
    exponents: dict[str, int] = {}
    divide = False
    for token in text.split():
        if token == "/":
            divide = True
            continue
        match = re.fullmatch(r"([a-z]+?)s?(-?\d+)?", token)
        if not match:
            exponents = {}
            break
        base, power = match.group(1), int(match.group(2) or 1)
        exponents[base] = exponents.get(base, 0) + (-power if divide else power)
        divide = False
    times = [k for k in exponents if k in _TIME_S]
    rate_seconds = _TIME_S[times[0]] if len(times) == 1 and exponents[times[0]] == -1 else None
    amount = {k: v for k, v in exponents.items() if k not in _TIME_S}
    factor = None
    if len(times) == (0 if rate_seconds is None else 1):
        if amount == {"kg": 1, "m": -2}:
            factor = 1.0
        elif len(amount) == 1:
            (base, power), = amount.items()
            factor = _LENGTH_MM.get(base) if power == 1 else None
    if factor is None:
        raise InputDataError(f"{origin}: unknown precipitation units {units!r}; set {key}.units to one of: "
                             f"{UNITS_HELP}")
    return factor, rate_seconds


def to_datetime64(values, origin: str = "data") -> np.ndarray:
    """Time stamps (datetime64 or cftime) -> naive ``datetime64[ns]``."""
    values = np.asarray(values)
    if np.issubdtype(values.dtype, np.datetime64):
        return values.astype("datetime64[ns]")
    try:
        return np.array([np.datetime64(pd.Timestamp(v.isoformat()), "ns") for v in values.ravel()]
                        ).reshape(values.shape)
    except (AttributeError, ValueError) as exc:
        raise InputDataError(f"{origin}: time stamps {values.ravel()[:3]} cannot be read as dates on the "
                             "standard calendar; convert the file first, e.g. `cdo setcalendar,standard`") from exc


def _step_from_cell_methods(cell_methods: str | None) -> np.timedelta64 | None:
    match = _INTERVAL.search(cell_methods or "")
    if not match:
        return None
    unit = match.group(2).rstrip("s")
    seconds = _TIME_S.get(unit)
    return None if seconds is None else np.timedelta64(int(float(match.group(1)) * seconds), "s")


def time_bounds(time: np.ndarray, *, bounds: np.ndarray | None = None, time_label: str = "start",
                step_hours: float | None = None, cell_methods: str | None = None,
                origin: str = "data", key: str = "source.files") -> np.ndarray:
    """``[start, end)`` of every step as ``(time, 2)`` naive datetime64[ns].

    ``bounds`` (from the file) win; otherwise the step is ``step_hours``, the
    ``cell_methods`` interval or the most common spacing, and labels are shifted
    back by one step when ``time_label == "end"``.
    """
    time = to_datetime64(time, origin)
    if time.size == 0:
        raise InputDataError(f"{origin}: no time steps")
    diffs = np.diff(time)
    if np.any(diffs == np.timedelta64(0, "ns")):
        dup = time[1:][diffs == np.timedelta64(0, "ns")][0]
        raise InputDataError(f"{origin}: duplicate time stamp {str(dup)[:19]}; remove overlapping files "
                             f"from {key}.paths")
    if np.any(diffs < np.timedelta64(0, "ns")):
        where = int(np.argmax(diffs < np.timedelta64(0, "ns")))
        raise InputDataError(f"{origin}: time is not monotonic ({str(time[where])[:19]} is followed by "
                             f"{str(time[where + 1])[:19]}); sort the data by time first")
    if bounds is not None:
        out = to_datetime64(bounds, origin)
        if out.shape != (time.size, 2) or np.any(out[:, 1] <= out[:, 0]):
            raise InputDataError(f"{origin}: time bounds are not (time, 2) with start < end")
        return out
    if step_hours is not None:
        step = np.timedelta64(int(round(float(step_hours) * 3600)), "s")
        how = f"{key}.step_hours"
    elif (step := _step_from_cell_methods(cell_methods)) is not None:
        how = f"cell_methods {cell_methods!r}"
    elif time.size > 1:
        values, counts = np.unique(diffs, return_counts=True)
        step, how = values[np.argmax(counts)], "the most common spacing of the time stamps"
    else:
        raise InputDataError(f"{origin}: cannot tell how long the single time step is (no time bounds, no "
                             f"'time: sum (interval: ...)' cell_methods); set {key}.step_hours")
    step = step.astype("timedelta64[ns]")
    start = time - step if time_label == "end" else time
    log.info("%s: time step %s from %s; stamps mark the %s of each step", origin,
             pd.Timedelta(step), how, time_label)
    return np.stack([start, start + step], axis=1)


def _outside(origin: str, domain: Mapping, lat: np.ndarray, lon: np.ndarray) -> InputDataError:
    return InputDataError(
        f"{origin}: domain outside the data: domain.lon={list(domain['lon'])}, domain.lat={list(domain['lat'])} "
        f"but the data cover lon {np.nanmin(lon):.4g}..{np.nanmax(lon):.4g}, lat {np.nanmin(lat):.4g}.."
        f"{np.nanmax(lat):.4g}; change domain.lon/domain.lat in the config or use data that cover the domain")


def _regular(da: xr.DataArray, domain: Mapping, lon_convention: str, lat_order: str,
             origin: str, key: str = "source.files") -> xr.DataArray:
    """Sort and subset ``da(time, lat, lon)`` on 1-D coordinates to the domain, lon increasing from the
    domain's west edge (:func:`~precipmodes.grid.normalise_domain_lon`: -180..180, or past 180 for a domain
    across the 180° meridian)."""
    lat, lon = da["lat"].values.astype(float), da["lon"].values.astype(float)
    if lat_order != "auto" and lat.size > 1:
        actual = "ascending" if lat[-1] > lat[0] else "descending"
        if actual != lat_order:
            raise InputDataError(f"{origin}: {key}.lat_order is {lat_order!r} but the latitudes are {actual} "
                                 f"({lat[0]} .. {lat[-1]}); set {key}.lat_order: auto")
    if lon_convention == "-180..180" and lon.max() > 180:
        raise InputDataError(f"{origin}: {key}.lon_convention is '-180..180' but longitudes reach "
                             f"{lon.max()}; set {key}.lon_convention: auto or '0..360'")
    if lon_convention == "0..360" and lon.min() < 0:
        raise InputDataError(f"{origin}: {key}.lon_convention is '0..360' but longitudes go down to "
                             f"{lon.min()}; set {key}.lon_convention: auto or '-180..180'")
    west, east = normalise_domain_lon(*domain["lon"])
    south, north = domain["lat"]
    eps = 1e-6
    framed = lon - 360.0 * np.floor((lon - west + eps) / 360.0)  # into [west, west + 360): the domain is one run
    index = {}
    for name, values, low, high in (("lat", lat, south, north), ("lon", framed, west, east)):
        order = np.argsort(values, kind="stable")
        order = order[(values[order] >= low - eps) & (values[order] <= high + eps)]
        if order.size == 0:
            raise _outside(origin, domain, lat, lon)
        contiguous = order.size == 1 or np.all(np.diff(order) == 1)
        index[name] = slice(order[0], order[-1] + 1) if contiguous else order  # a slice avoids copying
    return da.assign_coords(lat=lat, lon=framed).isel(index)


def _unit_xyz(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    lat, lon = np.radians(lat), np.radians(lon)
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)


def regrid_nearest(da: xr.DataArray, domain: Mapping, resolution: tuple[float, float] | None,
                   origin: str = "data", key: str = "source.files") -> xr.DataArray:
    """Map ``da(time, y, x)`` with 2-D ``lat``/``lon`` coordinates onto a regular grid by nearest neighbour.

    The target grid has cell centres ``west + (i + 0.5) * dlon`` and ``south + (j + 0.5) * dlat``
    over ``domain``. A target cell gets the value of the nearest source point (cKDTree on the
    unit sphere) only if it lies within 1.05 half-diagonals of that source cell (local spacing
    from the neighbouring points), so cells outside the source footprint are NaN. Coarser
    targets sub-sample (no averaging): use ``cdo remapcon`` for conservative remapping.
    """
    import dask.array as dsa  # here, not at the top: the Snakefile imports this module for every run
    from scipy.spatial import cKDTree

    if resolution is None:
        raise InputDataError(f"{origin}: {key}.regrid is 'nearest' but domain.resolution is not set; "
                             "set domain.resolution (degrees, e.g. 0.05 or [dlon, dlat]) for the target grid")
    ydim, xdim = da["lat"].dims
    if da.sizes[ydim] < 2 or da.sizes[xdim] < 2:
        raise InputDataError(f"{origin}: curvilinear grid of {da.sizes[ydim]} x {da.sizes[xdim]} points is "
                             "too small to regrid")
    lat2d, lon2d = da["lat"].values.astype(float), da["lon"].values.astype(float)
    west, east = normalise_domain_lon(*domain["lon"])
    south, north = domain["lat"]
    dlon, dlat = resolution
    tlon = west + (np.arange(max(1, int(round((east - west) / dlon)))) + 0.5) * dlon
    tlat = south + (np.arange(max(1, int(round((north - south) / dlat)))) + 0.5) * dlat
    xyz = _unit_xyz(lat2d, lon2d)
    half_diag = 0.5 * np.hypot(np.linalg.norm(np.gradient(xyz, axis=0), axis=-1),
                               np.linalg.norm(np.gradient(xyz, axis=1), axis=-1))
    valid = np.isfinite(xyz).all(axis=-1) & np.isfinite(half_diag)
    flat_index = np.flatnonzero(valid.ravel())
    tree = cKDTree(xyz.reshape(-1, 3)[flat_index])
    glat, glon = np.meshgrid(tlat, tlon, indexing="ij")
    distance, nearest = tree.query(_unit_xyz(glat, glon).reshape(-1, 3))
    source_index = flat_index[nearest]
    inside = distance <= 1.05 * half_diag.ravel()[source_index]
    if not inside.any():
        raise _outside(origin, domain, lat2d, lon2d)
    log.info("%s: curvilinear %d x %d grid -> regular %d x %d (%.4g x %.4g deg) by nearest neighbour, "
             "%d target cells inside the source footprint", origin, da.sizes[ydim], da.sizes[xdim],
             tlat.size, tlon.size, dlat, dlon, int(inside.sum()))
    data = da.transpose("time", ydim, xdim).data
    if not isinstance(data, dsa.Array):
        data = dsa.from_array(data, chunks=(min(744, data.shape[0]), -1, -1))
    data = data.rechunk({1: -1, 2: -1}).reshape(data.shape[0], -1)
    picked = data[:, np.where(inside, source_index, 0)]
    picked = dsa.where(inside[None, :], picked, np.nan).rechunk({1: -1})
    picked = picked.reshape(data.shape[0], tlat.size, tlon.size)
    return xr.DataArray(picked, dims=("time", "lat", "lon"),
                        coords={"time": da["time"].values, "lat": tlat, "lon": tlon}, attrs=da.attrs)


def _on_regular_grid(precip: xr.DataArray, domain: Mapping, regrid: str, resolution: tuple[float, float] | None,
                     lon_convention: str, lat_order: str, origin: str, key: str) -> xr.DataArray:
    """``precip`` cut to ``domain`` on a regular ``(time, lat, lon)`` grid: a curvilinear one mapped by nearest
    neighbour when ``regrid`` is ``nearest`` (else InputDataError), a regular one put in order."""
    if precip["lat"].ndim == 2:
        if regrid != "nearest":
            raise InputDataError(
                f"{origin}: the precipitation is on a curvilinear grid (2-D lat/lon over dims "
                f"{precip['lat'].dims}); precipmodes needs a regular lat/lon grid. Regrid it first, e.g. "
                "`cdo remapbil,r720x360 in.nc out.nc` (or `cdo remapcon,<gridfile>`, or xESMF), or set "
                f"{key}.regrid: nearest together with domain.resolution to map it by nearest neighbour")
        return regrid_nearest(precip, domain, resolution, origin, key)
    return _regular(precip.transpose("time", "lat", "lon"), domain, lon_convention, lat_order, origin, key)


def standardise(precip: xr.DataArray, domain: Mapping, *, units: str | None = None,
                time_label: str = "start", step_hours: float | None = None,
                bounds: np.ndarray | None = None, lon_convention: str = "auto", lat_order: str = "auto",
                regrid: str = "refuse", resolution: tuple[float, float] | None = None,
                origin: str = "data", attrs: Mapping | None = None, key: str = "source.files",
                plausibility: Mapping | None = None, step_files: np.ndarray | None = None,
                select: slice | None = None, check_values: bool = True) -> xr.Dataset:
    """Canonical raw dataset ``precip(time, lat, lon)`` float32 mm per step (see ``sources``).

    ``precip`` has dims ``(time, lat, lon)`` with 1-D coordinates, or ``(time, y, x)``
    with 2-D ``lat``/``lon`` coordinates (curvilinear; ``regrid`` decides). ``units``
    defaults to ``precip.attrs['units']``; ``bounds`` are the file's time bounds
    ``(time, 2)``; ``origin`` names the file(s) and ``key`` the config section of the source's
    options (``source.files``, ``source.http``) in error messages; ``attrs`` become global attributes.
    ``plausibility`` (:func:`precipmodes.io.sources.plausibility`: ``max_mm_per_hour``, ``implausible``)
    bounds each step's amount (:func:`_scan`); ``step_files`` names the file of each time step, for
    messages that point at the file a bad value came from. +inf/-inf are always refused.
    Lazy (dask) data stays lazy apart from one checking pass (a second one, over the bad values
    only, locates them when there are some).

    ``select``: the steps to keep (a slice of the time axis), taken after the time bounds of all steps
    are checked, before any value is read. ``check_values=False`` skips the checking pass (for an index,
    :mod:`precipmodes.io.sources.index`, which checks the values when a partition reads them).
    """
    units = units or precip.attrs.get("units")
    factor, rate_seconds = parse_units(units, origin, key)
    tb = time_bounds(precip["time"].values, bounds=bounds, time_label=time_label, step_hours=step_hours,
                     cell_methods=precip.attrs.get("cell_methods"), origin=origin, key=key)
    precip = precip.assign_coords(time=tb[:, 0])
    if select is not None:
        precip, tb = precip.isel(time=select), tb[select]
        step_files = None if step_files is None else step_files[select]
    precip = _on_regular_grid(precip, domain, regrid, resolution, lon_convention, lat_order, origin, key)
    seconds = (tb[:, 1] - tb[:, 0]) / np.timedelta64(1, "s")
    scale = factor * (seconds / rate_seconds if rate_seconds else np.ones_like(seconds))
    amount = precip.astype(np.float32)
    if np.any(scale != 1):
        amount = amount * xr.DataArray(scale.astype(np.float32), dims="time", coords={"time": precip["time"]})
    limit = step_limit(plausibility, seconds)
    files = step_files if step_files is not None else np.full(amount.sizes["time"], origin, dtype=object)
    stats = scan_values(amount, limit, origin) if check_values else None
    amount, n_missing = judge_values(amount, stats, limit, plausibility, files, origin, key)
    amount.attrs = {"standard_name": STANDARD_NAME, "long_name": "precipitation amount per time step",
                 "units": "mm", "cell_methods": "time: sum",
                 "source_units": str(units), "source_variable": str(precip.name),
                 **({} if plausibility is None else {
                     "max_mm_per_hour": float(plausibility["max_mm_per_hour"]),
                     "n_implausible_set_missing": int(n_missing)})}
    ds = xr.Dataset({"precip": amount})
    ds["time_bnds"] = xr.DataArray(tb, dims=("time", "nv"), coords={"time": ds["time"]})
    ds["time"].attrs = {"standard_name": "time", "long_name": "start of the accumulation step (UTC)",
                        "bounds": "time_bnds"}
    ds["lat"].attrs = {"standard_name": "latitude", "units": "degrees_north", "axis": "Y"}
    ds["lon"].attrs = {"standard_name": "longitude", "units": "degrees_east", "axis": "X"}
    ds.attrs.update(attrs or {})
    return ds


