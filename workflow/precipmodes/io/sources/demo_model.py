"""The demo's precipitation model: patterns, activations and the field block by block (numpy only, no files).

SYNTHETIC precipitation (synthetic demo data, not observations), built from known non-negative spatial
patterns ``P_k`` (see :data:`PATTERNS`), each with its own seasonal cycle::

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
  reported), so a little drizzle at a pattern's edge rounds to 0;
* missing entries (:mod:`precipmodes.io.sources.demo_gaps`) are NaN.

72-hour totals are therefore sums of the same patterns with gamma activations
plus noise, which NMF can recover.

The activations ``a`` (small) are drawn eagerly from ``numpy.random.default_rng(seed)``;
the field is generated in blocks of :func:`block_steps` steps (:func:`demo_block`), each
block's noise from ``default_rng([seed, block index])``, so the result is deterministic and
any block can be generated alone (:func:`precipmodes.io.sources.demo.demo_dataset` makes them dask tasks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.ndimage import uniform_filter

from precipmodes.errors import ConfigError
from precipmodes.io.encoding import RUN_CHUNK
from precipmodes.io.sources.demo_gaps import Gaps

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
LOCAL_UTC_OFFSET_H = 9  # JST, for the diurnal cycle of afternoon convection


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


def block_steps(cells: int) -> int:
    """Time steps per generated block of ``cells`` cells: :data:`BLOCK_BYTES` of float32 in whole
    multiples of ``precipmodes.io.encoding.RUN_CHUNK`` steps, at least one (64 steps at the seed's 320 x 320 grid,
    1,280 at 80 x 80)."""
    return RUN_CHUNK * max(1, BLOCK_BYTES // (RUN_CHUNK * cells * 4))


def demo_block(activity: np.ndarray, patterns: np.ndarray, seed: int, index: int, gaps: Gaps) -> np.ndarray:
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
