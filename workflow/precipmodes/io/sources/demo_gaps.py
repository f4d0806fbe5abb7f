"""The demo's missing data, as in real products (``source.demo.gaps``, :func:`demo_gaps`; on by default in
the config schema, off with ``station_fraction: 0`` and ``outage: false``):

* *station gaps*: ``station_fraction`` of the land cells (land fraction >= 0.5) miss whole
  UTC days now and then: each such cell misses a fraction of its days drawn uniformly in
  ``[0, STATION_MAX_MISSING]``, in runs of 1-3 days;
* *radar outage*: with ``outage``, every cell of :data:`OUTAGE_BOX` (Kyushu) is missing for
  :data:`OUTAGE_DAYS` UTC days starting on the day 30 % into the record.

Missing entries are NaN (:meth:`Gaps.apply`); the precipitation itself
(:mod:`precipmodes.io.sources.demo_model`: activations, noise) is the same with and without gaps, as the
gaps come from their own random stream. Numpy only, no files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

STATION_MAX_MISSING = 0.15  # a station cell misses a fraction of its days drawn uniformly in [0, this]
OUTAGE_BOX = {"lon": (129.5, 132.2), "lat": (31.0, 34.0)}  # Kyushu: the region of the radar outage
OUTAGE_DAYS = 5
OUTAGE_AT = 0.3  # the outage starts on the day this fraction into the record
GAPS_STREAM = 0x67617073  # "gaps": the gaps' random stream, apart from the blocks' [seed, block]


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

