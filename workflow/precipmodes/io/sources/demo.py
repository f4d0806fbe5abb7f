"""The ``demo`` source: SYNTHETIC precipitation over Japan (synthetic demo data, not observations).

Precipitation over Japan's real land and sea (land from global-land-mask) on
the configured grid, built from known non-negative spatial patterns ``P_k``
(see :data:`PATTERNS`), each with its own seasonal cycle::

    precip(t, y, x) = sum_k a_k(t) * P_k(y, x) * eps(t, y, x)        [mm per step]

* ``P_k`` >= 0, max 1 on the grid, exactly 0 away from the pattern (so most
  of the domain is dry in most steps);
* ``a_k(t)`` (mm per step at the pattern's maximum) is a sum of events: an
  event starts in a step with probability ``events_per_day * step/24 *
  cycle_k(month) * diurnal_k(hour)``, lasts a geometric number of steps (mean
  ``duration_h``), has a gamma-distributed amplitude (mean ``mm_per_h``) and a
  gamma factor (mean 1) per step; most steps of most patterns are dry;
* ``eps`` is small multiplicative log-normal noise (mean 1, ``NOISE_SIGMA``);
* the result is rounded to whole multiples of ``PRECISION_MM`` (0.1 mm, as observations are
  reported), so a little drizzle at a pattern's edge rounds to 0.

Missing data as in real products (``source.demo.gaps``, :func:`demo_gaps`; on by default in the
config schema, off with ``station_fraction: 0`` and ``outage: false``):

* *station gaps*: ``station_fraction`` of the land cells (land fraction >= 0.5) miss whole
  UTC days now and then: each such cell misses a fraction of its days drawn uniformly in
  ``[0, STATION_MAX_MISSING]``, in runs of 1-3 days;
* *radar outage*: with ``outage``, every cell of :data:`OUTAGE_BOX` (Kyushu) is missing for
  :data:`OUTAGE_DAYS` UTC days starting on the day 30 % into the record.

Missing entries are NaN; the precipitation
itself (activations, noise) is the same with and without gaps, as the gaps come from their own
random stream.

72-hour totals are therefore sums of the same patterns with gamma activations
plus noise, which NMF can recover; the true patterns, their seasonal cycles
and activations go to ``demo_truth.nc`` (:func:`demo_truth_files`).

The activations ``a`` (small) are drawn eagerly from ``numpy.random.default_rng(seed)``;
the field is generated lazily in blocks of :func:`block_steps` steps, each
block's noise from ``default_rng([seed, block index])``, so the result is
deterministic and a partition of the totals generates only the blocks holding its steps
(:func:`precipmodes.io.sources.index.read_index` on the demo's index), never the field whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import dask
import dask.array as dsa
import numpy as np
import pandas as pd
import xarray as xr
from scipy.ndimage import uniform_filter

from precipmodes.config import parse_instant
from precipmodes.errors import ConfigError
from precipmodes.io.globe import globe_land_fraction
from precipmodes.logs import log, timed
from precipmodes.io.netcdf import write_netcdf
from precipmodes.io.encoding import RUN_CHUNK
from precipmodes.io.sources.canonical import STANDARD_NAME, UNITS

GENERATOR = "precipmodes.sources.demo v2"
TITLE = "precipmodes SYNTHETIC demo precipitation over Japan"
SYNTHETIC = "synthetic demo data, not observations"
SEED_RESOLUTION = (0.0625, 0.05)  # used when domain.resolution is null
# Generated blocks of about 32 MiB, in whole NetCDF time chunks (RUN_CHUNK steps; at least one): below glibc's
# largest mmap threshold, so a freed block's memory is reused by the next instead of being returned and
# faulted in afresh (first touch cost ~1 s per 420 MB on the project's VMs; the seed's grid generated
# 1.8x faster in blocks of 64 steps than of 1,024).
BLOCK_BYTES = 32 * 2**20
NOISE_SIGMA = 0.35  # sigma of the log-normal multiplicative noise
# The demo reports precipitation in whole multiples of 0.1 mm, the WMO reporting resolution, as gauge
# analyses and E-OBS do.
PRECISION_MM = 0.1
CUTOFF = 0.05  # pattern values below this (relative to the maximum) are set to 0
LAND_SUBSAMPLES = 6  # global-land-mask points per cell side for the demo's land
LOCAL_UTC_OFFSET_H = 9  # JST, for the diurnal cycle of afternoon convection
STATION_MAX_MISSING = 0.15  # a station cell misses a fraction of its days drawn uniformly in [0, this]
OUTAGE_BOX = {"lon": (129.5, 132.2), "lat": (31.0, 34.0)}  # Kyushu: the region of the radar outage
OUTAGE_DAYS = 5
OUTAGE_AT = 0.3  # the outage starts on the day this fraction into the record
GAPS_STREAM = 0x67617073  # "gaps": the gaps' random stream, apart from the blocks' [seed, block]


@dataclass(frozen=True)
class Pattern:
    """One synthetic precipitation pattern and its event statistics."""

    name: str
    description: str
    cycle: tuple[float, ...]  # relative event rate per calendar month (Jan..Dec), max 1
    events_per_day: float  # event starts per day at cycle 1
    duration_h: float  # mean event duration (hours)
    mm_per_h: float  # mean intensity at the pattern's maximum (mm/h)
    afternoon: bool = False  # events start in the local afternoon only


_DESCRIPTIONS = {
    "baiu_early": "Baiu/Meiyu front, early stage: SW-NE band over southern Kyushu, Shikoku and Kii",
    "baiu_late": "Baiu/Meiyu front after its northward migration: northern Kyushu, Chugoku to Tohoku",
    "typhoon_pacific": "typhoon swaths along the Pacific side from Kyushu to Kanto and Tohoku",
    "winter_monsoon": "Sea-of-Japan-side winter monsoon: San'in, Hokuriku, Tohoku west coast, Hokkaido",
    "summer_convection": "convective summer afternoons inland (Japan's interior and the continent)",
    "frontal_spring_autumn": "spring and autumn frontal systems along the whole archipelago",
    "hokkaido_late_summer": "late-summer lows and fronts over Hokkaido",
    "continental_lows": "lows along the continental coast: Korea, Primorye and the Sea of Japan's west",
}
# Event statistics, one pattern a row, as the fields of Pattern after its description: relative event
# rate per calendar month (Jan..Dec), event starts per day, mean duration (h), mean intensity (mm/h),
# afternoon only.
_EVENTS = (
    ("baiu_early", (0, 0, 0, 0, 0.15, 1.0, 0.35, 0, 0, 0, 0, 0), 0.45, 30, 1.6, False),
    ("baiu_late", (0, 0, 0, 0, 0, 0.3, 1.0, 0.15, 0, 0, 0, 0), 0.45, 30, 1.6, False),
    ("typhoon_pacific", (0, 0, 0, 0, 0, 0.1, 0.35, 0.8, 1.0, 0.6, 0.1, 0), 0.12, 24, 4.0, False),
    ("winter_monsoon", (1.0, 0.85, 0.4, 0.05, 0, 0, 0, 0, 0, 0.05, 0.45, 0.9), 0.5, 42, 0.8, False),
    ("summer_convection", (0, 0, 0, 0.05, 0.2, 0.45, 0.9, 1.0, 0.45, 0.05, 0, 0), 0.5, 5, 1.8, True),
    ("frontal_spring_autumn", (0.25, 0.35, 0.8, 1.0, 0.7, 0.2, 0, 0, 0.35, 0.85, 0.6, 0.3), 0.3, 36, 1.0, False),
    ("hokkaido_late_summer", (0.05, 0.05, 0.1, 0.2, 0.25, 0.35, 0.55, 0.9, 1.0, 0.6, 0.3, 0.1), 0.25, 24, 1.0, False),
    ("continental_lows", (0.45, 0.5, 0.75, 1.0, 0.8, 0.45, 0.3, 0.3, 0.5, 0.8, 0.7, 0.5), 0.25, 30, 0.8, False),
)
PATTERNS = tuple(Pattern(name, _DESCRIPTIONS[name], *events) for name, *events in _EVENTS)

# Polylines (lon, lat) of the band-shaped patterns and their Gaussian half-widths (degrees).
_BANDS = {
    "baiu_early": ([(127, 30.3), (131, 31.6), (135, 33.0), (140, 34.4), (148, 36.0)], 0.75),
    "baiu_late": ([(127, 33.0), (131, 34.0), (135, 35.3), (139, 37.0), (143, 38.8), (148, 40.2)], 0.75),
    "typhoon_pacific": ([(129, 30.0), (131.5, 31.8), (134, 33.1), (136.5, 33.7), (139, 34.8), (141, 35.9),
                         (142.3, 38.5), (144, 42.6)], 0.85),
    "winter_monsoon": ([(131.5, 35.0), (134.5, 35.7), (136.3, 36.3), (137.8, 37.1), (139.5, 38.5), (140.1, 40.0),
                        (140.2, 41.3), (141.2, 42.8), (141.8, 44.0), (142.0, 45.6)], 0.55),
    "frontal_spring_autumn": ([(127, 30.5), (134, 33.0), (140, 35.8), (143, 39.5), (148, 45.0)], 2.0),
    "continental_lows": ([(126.5, 34.5), (129.3, 36.5), (130.5, 40.0), (132.5, 42.8), (136.0, 44.5),
                          (139.0, 46.5)], 1.0),
}


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


def _polyline_distance(lon: np.ndarray, lat: np.ndarray, points: list[tuple[float, float]]) -> np.ndarray:
    """Distance (degrees, lon scaled by cos 38N) from each grid point to a polyline."""
    scale = np.cos(np.deg2rad(38.0))
    px, py = lon * scale, lat
    best = np.full(lon.shape, np.inf)
    for (x0, y0), (x1, y1) in zip(points[:-1], points[1:]):
        ax, ay, bx, by = x0 * scale, y0, x1 * scale, y1
        t = np.clip(((px - ax) * (bx - ax) + (py - ay) * (by - ay)) / ((bx - ax) ** 2 + (by - ay) ** 2), 0, 1)
        best = np.minimum(best, np.hypot(px - ax - t * (bx - ax), py - ay - t * (by - ay)))
    return best


def demo_patterns(lat: np.ndarray, lon: np.ndarray, land: np.ndarray) -> np.ndarray:
    """True patterns ``(pattern, lat, lon)``: non-negative, max 1, 0 below :data:`CUTOFF`.

    ``land(lat, lon)`` is the land fraction in [0, 1]; it enhances precipitation over
    land (orography) and defines the inland area of summer convection.
    """
    lon2, lat2 = np.meshgrid(lon, lat)
    cells = max(1, int(round(0.6 / max(np.diff(lon).mean() if lon.size > 1 else 0.6, 1e-6))))
    inland = uniform_filter(land.astype(float), size=2 * (cells // 2) + 1, mode="nearest")
    shapes = []
    orography = {"typhoon_pacific": 0.5 + 0.5 * land, "winter_monsoon": 0.3 + 0.7 * inland}
    for pattern in PATTERNS:
        if pattern.name in _BANDS:  # Gaussian band around a polyline, heavier over land for some
            points, width = _BANDS[pattern.name]
            shape = np.exp(-(_polyline_distance(lon2, lat2, points) / width) ** 2)
            shape = shape * orography.get(pattern.name, 1.0)
        elif pattern.name == "summer_convection":  # land away from the coast, a little more in the south
            shape = np.clip((inland - 0.55) / 0.45, 0, 1) * land * np.clip(1.2 - (lat2 - 31) / 20, 0, 1)
        else:  # hokkaido_late_summer: a blob over Hokkaido
            shape = np.exp(-(np.hypot((lon2 - 142.9) * 0.72, lat2 - 43.4) / 1.5) ** 2) * (0.4 + 0.6 * land)
        if shape.max() <= 0:
            raise ConfigError(f"domain: the demo pattern {pattern.name!r} lies outside domain.lon/domain.lat; "
                              f"the demo needs a domain over Japan (e.g. lon [128, 148], lat [30, 46])")
        shape = shape / shape.max()
        shapes.append(np.where(shape >= CUTOFF, shape, 0.0))
    return np.stack(shapes).astype(np.float32)


def _diurnal(times: np.ndarray, step_hours: int) -> np.ndarray:
    """Afternoon factor per step (daily mean 1 over the step's hours of day; peak 15 local)."""
    def raw(hour_utc):
        local = (hour_utc + LOCAL_UTC_OFFSET_H + step_hours / 2) % 24
        return np.maximum(np.cos(2 * np.pi * (local - 15) / 24), 0) ** 2
    hours = pd.DatetimeIndex(times).hour.values + pd.DatetimeIndex(times).minute.values / 60
    daily = raw(np.arange(hours[0] % step_hours, 24, step_hours)).mean()
    return raw(hours) / daily if daily > 0 else np.ones(times.size)


def demo_activations(times: np.ndarray, step_hours: int, seed: int) -> np.ndarray:
    """Activations ``(pattern, time)`` in mm per step at each pattern's maximum (float32)."""
    rng = np.random.default_rng(seed)
    month = pd.DatetimeIndex(times).month.values - 1
    afternoon = _diurnal(times, step_hours)
    activity = np.zeros((len(PATTERNS), times.size), dtype=np.float64)
    for k, pattern in enumerate(PATTERNS):
        rate = pattern.events_per_day * step_hours / 24 * np.asarray(pattern.cycle)[month]
        if pattern.afternoon:
            rate = rate * afternoon
        starts = np.nonzero(rng.random(times.size) < np.minimum(rate, 1.0))[0]
        steps = rng.geometric(min(1.0, step_hours / pattern.duration_h), size=starts.size)
        amplitude = rng.gamma(1.5, pattern.mm_per_h * step_hours / 1.5, size=starts.size)
        within = rng.gamma(3.0, 1 / 3.0, size=int(steps.sum()))
        offset = np.arange(steps.sum()) - np.repeat(np.cumsum(steps) - steps, steps)
        where = np.repeat(starts, steps) + offset
        inside = where < times.size
        np.add.at(activity[k], where[inside], (np.repeat(amplitude, steps) * within)[inside])
    return activity.astype(np.float32)


@dataclass(frozen=True)
class Gaps:
    """Where the demo's data are missing.

    ``station_lat``/``station_lon``: grid indices of the station cells ``(station,)``;
    ``station_missing``: ``(time, station)`` True where a station cell is missing;
    ``outage_cells``: ``(lat, lon)`` True inside the outage region; ``outage_steps``: ``(time,)``.
    """

    station_lat: np.ndarray
    station_lon: np.ndarray
    station_missing: np.ndarray
    outage_cells: np.ndarray
    outage_steps: np.ndarray

    def block(self, first: int, steps: int) -> "Gaps":
        """The gaps of steps ``first .. first + steps`` (for one generated block)."""
        rows = slice(first, first + steps)
        return Gaps(self.station_lat, self.station_lon, self.station_missing[rows], self.outage_cells,
                    self.outage_steps[rows])

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Set the missing entries of ``values(step, lat, lon)`` (this block's steps) to NaN, in place."""
        step, station = np.nonzero(self.station_missing)
        values[step, self.station_lat[station], self.station_lon[station]] = np.nan
        out = np.flatnonzero(self.outage_steps)
        if out.size and self.outage_cells.any():
            hidden = values[out]
            hidden[:, self.outage_cells] = np.nan
            values[out] = hidden
        return values


def demo_gaps(source: Mapping, lat: np.ndarray, lon: np.ndarray, land: np.ndarray, times: np.ndarray) -> Gaps:
    """The missing data of the demo from ``source.demo.gaps`` (``station_fraction``, ``outage``).

    ``land(lat, lon)``: the generator's land fraction; ``times``: step starts (naive UTC).
    Deterministic from ``source.seed`` (its own stream, so the precipitation does not change).
    """
    settings = source["gaps"]
    fraction = float(settings["station_fraction"])
    rng = np.random.default_rng([int(source["seed"]), GAPS_STREAM, 0])
    calendar = times.astype("datetime64[D]")
    day = (calendar - calendar[0]).astype(np.int64)  # UTC calendar day of each step, 0 = the first
    n_days = int(day[-1]) + 1
    cells = np.flatnonzero(land.ravel() >= 0.5)
    n_stations = min(cells.size, int(round(fraction * cells.size))) if fraction > 0 else 0
    if fraction > 0 and n_stations == 0 and cells.size:
        n_stations = 1
    stations = np.sort(rng.choice(cells, size=n_stations, replace=False))
    missing_days = np.zeros((n_stations, n_days), dtype=bool)
    for row, share in enumerate(rng.uniform(0.0, STATION_MAX_MISSING, size=n_stations)):
        runs = rng.binomial(n_days, share / 2)  # runs of 1-3 days, 2 on average
        starts, lengths = rng.integers(0, n_days, runs), rng.integers(1, 4, runs)
        for start, length in zip(starts, lengths):
            missing_days[row, start:start + length] = True
    lon2, lat2 = np.meshgrid(lon, lat)
    box = ((lon2 >= OUTAGE_BOX["lon"][0]) & (lon2 <= OUTAGE_BOX["lon"][1])
           & (lat2 >= OUTAGE_BOX["lat"][0]) & (lat2 <= OUTAGE_BOX["lat"][1]))
    first = int(OUTAGE_AT * n_days)
    outage_steps = (day >= first) & (day < first + OUTAGE_DAYS) if settings["outage"] else np.zeros(day.size, bool)
    return Gaps(station_lat=(stations // lon.size).astype(np.int64), station_lon=(stations % lon.size).astype(np.int64),
                station_missing=missing_days[:, day].T.copy(), outage_cells=box, outage_steps=outage_steps)


def block_steps(cells: int) -> int:
    """Time steps per generated block of ``cells`` cells: :data:`BLOCK_BYTES` of float32 in whole
    multiples of ``precipmodes.io.encoding.RUN_CHUNK`` steps, at least one (64 steps at the seed's 320 x 320 grid,
    1,280 at 80 x 80)."""
    return RUN_CHUNK * max(1, BLOCK_BYTES // (RUN_CHUNK * cells * 4))


def _block(activity: np.ndarray, patterns: np.ndarray, seed: int, index: int, gaps: Gaps) -> np.ndarray:
    """Precipitation ``(step, lat, lon)`` float32 of one block: activations x patterns x noise, in whole
    multiples of :data:`PRECISION_MM`, NaN at gaps.

    Step by step over the cells where a pattern active in the step is non-zero (the union of their
    supports, ~15 % of the entries at the seed's grid); every other entry stays exactly 0 and costs
    nothing but its share of the zeroed block.
    """
    rng = np.random.default_rng([seed, index])
    nlat, nlon = patterns.shape[1:]
    flat = patterns.reshape(len(patterns), -1)
    supports = flat > 0
    wet_cells: dict[bytes, np.ndarray] = {}  # active patterns -> the union of their supports, ascending
    values = np.zeros((activity.shape[1], flat.shape[1]), np.float32)
    sigma, step = np.float32(NOISE_SIGMA), np.float32(PRECISION_MM)
    for t in range(activity.shape[1]):
        active = np.flatnonzero(activity[:, t])
        if not active.size:
            continue
        key = active.tobytes()
        if key not in wet_cells:
            wet_cells[key] = np.flatnonzero(supports[active].any(axis=0))
        wet = wet_cells[key]
        noise = rng.standard_normal(wet.size, dtype=np.float32)
        noise *= sigma
        noise -= sigma * sigma / 2
        np.exp(noise, out=noise)
        noise *= (activity[active, t] @ flat[active])[wet]
        np.rint(noise / step, out=noise)  # whole multiples of the reporting precision ...
        noise *= step  # ... as n * float32(0.1), what unpacking E-OBS's int16 tenths gives, bit for bit
        values[t, wet] = noise
    return gaps.apply(values.reshape(-1, nlat, nlon))


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
        task = dask.delayed(_block, pure=True)(part, patterns, int(source["seed"]), index,
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
