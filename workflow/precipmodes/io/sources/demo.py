"""The ``demo`` source: SYNTHETIC precipitation over Japan (synthetic demo data, not observations).

Precipitation over Japan's real land and sea (land from global-land-mask) on the configured grid:
the model and its numerics (patterns, activations, blocks) are in
:mod:`precipmodes.io.sources.demo_model`, the missing data in :mod:`precipmodes.io.sources.demo_gaps`.
This module builds the demo's grid and times from the config, the canonical raw dataset (lazy: a
partition of the totals generates only the blocks holding its steps,
:func:`precipmodes.io.sources.index.read_index` on the demo's index, never the field whole) and the
truth: the true patterns, their seasonal cycles and activations go to ``demo_truth.nc``
(:func:`demo_truth_files`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import dask
import dask.array as dsa
import numpy as np
import pandas as pd
import xarray as xr

from precipmodes.config import parse_instant
from precipmodes.errors import ConfigError
from precipmodes.io.globe import globe_land_fraction
from precipmodes.logs import log, timed
from precipmodes.io.netcdf import write_netcdf
from precipmodes.io.sources.canonical import STANDARD_NAME, UNITS
from precipmodes.io.sources.demo_gaps import OUTAGE_BOX, Gaps, demo_gaps
from precipmodes.io.sources.demo_model import (CUTOFF, NOISE_SIGMA, PATTERNS, block_steps, demo_activations,
                                               demo_block, demo_patterns)

GENERATOR = "precipmodes.sources.demo v2"
TITLE = "precipmodes SYNTHETIC demo precipitation over Japan"
SYNTHETIC = "synthetic demo data, not observations"
SEED_RESOLUTION = (0.0625, 0.05)  # used when domain.resolution is null
LAND_SUBSAMPLES = 6  # global-land-mask points per cell side for the demo's land


def demo_grid(domain: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """Ascending cell centres ``(lat, lon)`` of the demo grid (``domain.resolution``, default the seed's)."""
    res = domain.get("resolution") or SEED_RESOLUTION
    dlon, dlat = (float(res), float(res)) if isinstance(res, (int, float)) else (float(res[0]), float(res[1]))
    axes = []
    for key, (lo, hi), step in (("lat", domain["lat"], dlat), ("lon", domain["lon"], dlon)):
        count = int(round((hi - lo) / step))
        if count < 1 or abs(count * step - (hi - lo)) > 1e-6 * max(1.0, hi - lo):
            raise ConfigError(f"domain.resolution: {step} does not divide domain.{key} {[lo, hi]} into whole "
                              f"cells; choose a resolution that does (e.g. {(hi - lo) / max(1, count):g})")
        axes.append(np.round(lo + (np.arange(count) + 0.5) * step, 10))
    return axes[0], axes[1]


def demo_times(source: Mapping) -> np.ndarray:
    """Step starts (naive UTC datetime64[ns]) from ``source.start`` to ``source.end`` (exclusive)."""
    start, end = parse_instant(source["start"]), parse_instant(source["end"])
    if not start < end:
        raise ConfigError(f"source.start {source['start']} must be before source.end {source['end']}")
    return np.arange(start, end, np.timedelta64(int(source["step_hours"]), "h")).astype("datetime64[ns]")


def demo_land_fraction(domain: Mapping) -> np.ndarray:
    """The land fraction ``(lat, lon)`` float32 of the demo's grid, from global-land-mask (about 2 s and
    0.9 GiB for its 1/120-degree grid)."""
    lat, lon = demo_grid(domain)
    return globe_land_fraction(xr.DataArray(lat, dims="lat"), xr.DataArray(lon, dims="lon"), LAND_SUBSAMPLES).values


def _model(source: Mapping, domain: Mapping, land: np.ndarray | None = None):
    """Grid, times, land fraction (``land`` when given: :func:`demo_land_fraction`), patterns and activations
    of the demo (all small, eager)."""
    lat, lon = demo_grid(domain)
    times = demo_times(source)
    land = demo_land_fraction(domain) if land is None else land
    patterns = demo_patterns(lat, lon, land)
    activity = demo_activations(times, int(source["step_hours"]), int(source["seed"]))
    return lat, lon, times, land, patterns, activity


def _coords(lat: np.ndarray, lon: np.ndarray) -> dict:
    return {
        "lat": ("lat", lat, {"standard_name": "latitude", "long_name": "latitude of cell centre",
                             "units": "degrees_north", "axis": "Y"}),
        "lon": ("lon", lon, {"standard_name": "longitude", "long_name": "longitude of cell centre",
                             "units": "degrees_east", "axis": "X"}),
    }


def _synthetic_attrs(source: Mapping, what: str) -> dict:
    return {
        "source": f"{SYNTHETIC}: {GENERATOR}, seed {int(source['seed'])}",
        "comment": (f"SYNTHETIC demo data, not observations. {what} Built from {len(PATTERNS)} known "
                    f"non-negative patterns ({', '.join(p.name for p in PATTERNS)}) with seasonal cycles, "
                    f"gamma event intensities and log-normal noise over real land and sea "
                    f"(global-land-mask); the true patterns are in demo_truth.nc."),
        "demo_generator": GENERATOR,
        "demo_seed": int(source["seed"]),
    }


def demo_dataset(source: Mapping, domain: Mapping, land: np.ndarray | None = None) -> xr.Dataset:
    """The canonical raw dataset of the demo: ``precip(time, lat, lon)`` float32 mm per step, dask-backed.
    ``land``: the grid's :func:`demo_land_fraction`, when known (the demo's index holds it)."""
    lat, lon, times, land, patterns, activity = _model(source, domain, land)
    gaps = demo_gaps(source, lat, lon, land, times)
    step = np.timedelta64(int(source["step_hours"]), "h")
    blocks = []
    steps = block_steps(lat.size * lon.size)
    for index, first in enumerate(range(0, times.size, steps)):
        part = activity[:, first:first + steps]
        task = dask.delayed(demo_block, pure=True)(part, patterns, int(source["seed"]), index,
                                                   gaps.block(first, part.shape[1]))
        blocks.append(dsa.from_delayed(task, shape=(part.shape[1], lat.size, lon.size), dtype=np.float32))
    precip = xr.DataArray(
        dsa.concatenate(blocks, axis=0), dims=("time", "lat", "lon"),
        attrs={"standard_name": STANDARD_NAME, "long_name": "SYNTHETIC precipitation amount per time step",
               "units": UNITS, "cell_methods": "time: sum", "comment": SYNTHETIC},
    )
    ds = xr.Dataset(
        {"precip": precip, "time_bnds": (("time", "nv"), np.stack([times, times + step], axis=1))},
        coords={"time": ("time", times, {"standard_name": "time", "long_name": "start of the time step (UTC)",
                                         "axis": "T", "bounds": "time_bnds"}), **_coords(lat, lon)},
    )
    ds.attrs = {"title": TITLE, **_synthetic_attrs(source, f"{int(source['step_hours'])}-hourly amounts."),
                "demo_gaps": _gaps_text(gaps, times)}
    log.info("demo: %d steps of %d h, %d x %d cells, %d patterns (seed %d); gaps: %s", times.size,
             int(source["step_hours"]), lat.size, lon.size, len(PATTERNS), int(source["seed"]),
             ds.attrs["demo_gaps"])
    return ds


def _gaps_text(gaps: Gaps, times: np.ndarray) -> str:
    """One line on the demo's missing data (raw.nc attribute ``demo_gaps`` and the log)."""
    stations = (f"{gaps.station_lat.size} station cells with intermittent dropouts "
                f"({100 * gaps.station_missing.mean():.1f}% of their steps missing)" if gaps.station_lat.size
                else "no station dropouts")
    if gaps.outage_steps.any() and gaps.outage_cells.any():
        hidden = times[gaps.outage_steps]
        outage = (f"radar outage over {int(gaps.outage_cells.sum())} cells of lon {OUTAGE_BOX['lon']}, lat "
                  f"{OUTAGE_BOX['lat']} from {np.datetime_as_string(hidden[0], 'm')} to "
                  f"{np.datetime_as_string(hidden[-1], 'm')} UTC (step starts)")
    else:
        outage = "no outage"
    return f"{stations}; {outage}"


def truth_dataset(source: Mapping, domain: Mapping) -> xr.Dataset:
    """The demo's truth: ``patterns(pattern, lat, lon)`` (max 1), ``pattern_name``, ``seasonal_cycle(pattern,
    month)`` (expected mean activity per calendar month, max 1), ``realised_seasonal_cycle`` (the same
    measured from this record's activations), ``activity(pattern, time)`` (mm per step at the pattern's
    maximum, before noise) and the ``land_fraction(lat, lon)`` the generator used."""
    lat, lon, times, land, patterns, activity = _model(source, domain)
    gaps = demo_gaps(source, lat, lon, land, times)
    month = pd.DatetimeIndex(times).month.values
    realised = np.full((len(PATTERNS), 12), np.nan)
    for m in np.unique(month):
        realised[:, m - 1] = activity[:, month == m].mean(axis=1)
    peak = np.nanmax(realised, axis=1, keepdims=True)
    realised = realised / np.where(peak > 0, peak, 1)
    number = np.arange(1, len(PATTERNS) + 1, dtype=np.int32)
    ds = xr.Dataset(
        {
            "patterns": (("pattern", "lat", "lon"), patterns,
                         {"long_name": "true spatial pattern of the SYNTHETIC demo (max 1)", "units": "1"}),
            "pattern_name": ("pattern", np.array([p.name for p in PATTERNS], dtype=object),
                             {"long_name": "name of the pattern"}),
            "pattern_description": ("pattern", np.array([p.description for p in PATTERNS], dtype=object)),
            "seasonal_cycle": (("pattern", "month"), np.array([p.cycle for p in PATTERNS], dtype=np.float32),
                               {"long_name": "expected mean activity per calendar month relative to the "
                                             "most active month (the event rate's seasonal cycle)", "units": "1"}),
            "realised_seasonal_cycle": (("pattern", "month"), realised.astype(np.float32),
                                        {"long_name": "mean activity per calendar month in this record relative "
                                                      "to its most active month (NaN: month not in the record)",
                                         "units": "1"}),
            "activity": (("pattern", "time"), activity,
                         {"long_name": "activation: precipitation at the pattern's maximum before noise",
                          "units": "mm"}),
            "land_fraction": (("lat", "lon"), land.astype(np.float32),
                              {"standard_name": "land_area_fraction", "units": "1"}),
            "gap_station_lat": ("station", lat[gaps.station_lat],
                                {"long_name": "latitude of a cell with station dropouts", "units": "degrees_north"}),
            "gap_station_lon": ("station", lon[gaps.station_lon],
                                {"long_name": "longitude of a cell with station dropouts", "units": "degrees_east"}),
            "gap_station_missing_fraction": ("station", gaps.station_missing.mean(axis=0).astype(np.float32),
                                             {"long_name": "fraction of the steps the station cell misses",
                                              "units": "1"}),
            "gap_outage": (("lat", "lon"), gaps.outage_cells.astype(np.int8),
                           {"long_name": "1 inside the region of the radar outage", "flag_values": np.int8([0, 1]),
                            "flag_meanings": "outside inside"}),
            "gap_outage_steps": ("time", gaps.outage_steps.astype(np.int8),
                                 {"long_name": "1 in the steps of the radar outage", "flag_values": np.int8([0, 1]),
                                  "flag_meanings": "outside inside"}),
        },
        coords={"pattern": ("pattern", number, {"long_name": "pattern number"}),
                "month": ("month", np.arange(1, 13, dtype=np.int32), {"long_name": "calendar month (UTC)"}),
                "time": ("time", times, {"standard_name": "time", "long_name": "start of the time step (UTC)"}),
                **_coords(lat, lon)},
    )
    ds.attrs = {"title": "precipmodes SYNTHETIC demo: true patterns and seasonal cycles",
                **_synthetic_attrs(source, "True patterns of the demo precipitation."),
                "noise_sigma": NOISE_SIGMA, "pattern_cutoff": CUTOFF, "demo_gaps": _gaps_text(gaps, times)}
    return ds


def demo_truth_files(*, source: Mapping, domain: Mapping, output: str | Path, config: Mapping | None = None) -> Path:
    """Rule demo_truth: write :func:`truth_dataset` to ``output`` (NetCDF, atomic)."""
    with timed("demo_truth"):
        return write_netcdf(truth_dataset(source, domain), output, config=config,
                            step=f"demo_truth: true patterns of the SYNTHETIC demo (seed {int(source['seed'])})")
