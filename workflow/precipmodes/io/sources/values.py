"""The checks of precipitation values: each step's amounts finite, not negative, not all missing and at most
``source.max_mm_per_hour``; each window total at most ``source.max_window_mm``.

A source's steps are checked in one of two ways. :func:`~precipmodes.io.sources.canonical.standardise` scans
them in a streaming dask pass of their own (:func:`scan_values`) before anything else reads them (raw.nc of
the demo or seed_binary, ``precipmodes init``, the tests). The partitions of a source read in place (through
its index, :mod:`precipmodes.io.sources.index`) instead take the same numbers from the blocks they read to sum
(:func:`block_stats`, :func:`clean_block`) and judge them once the sums are computed: one read of the input
instead of two. Either way :func:`judge_values` decides, with the same messages: +-inf, more negative than
:data:`NEGATIVE_TOLERANCE_MM` or all missing is an error; smaller negative noise (e.g. ERA5's -1e-7 m) is
clipped to 0; above the bound is an error or, with ``source.implausible: missing``, set missing (NaN),
counted and located by file and cell.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import xarray as xr

from precipmodes.errors import InputDataError
from precipmodes.logs import log

#: mm per step; negative amounts down to this are packing noise, clipped to 0
NEGATIVE_TOLERANCE_MM = 0.01
#: statistics of a block of steps (:func:`block_stats`): lowest finite value, number of +-inf, number above bound
N_STATS = 3


def block_stats(block: np.ndarray, limit: np.ndarray | None) -> np.ndarray:
    """``[lowest finite value (NaN if none), number of +-inf, number above limit]`` of ``block(step, lat,
    lon)`` (mm per step), float64 ``(3,)``; ``limit``: the bound of each of its steps (mm) or None.

    Two passes over a block without infinities (the minimum, and each step's maximum, both skipping NaN);
    the values above the limit are counted only in a block whose maximum exceeds it."""
    lowest = np.fmin.reduce(block, axis=None) if block.size else np.nan  # NaN only where all are NaN
    highest = np.fmax.reduce(block.reshape(block.shape[0], -1), axis=1) if block.size else np.zeros(0)
    if np.isinf(lowest) or np.isinf(highest).any():
        return _block_stats_with_infinities(block, limit)
    above = 0
    if limit is not None:
        limit = np.asarray(limit)
        with np.errstate(invalid="ignore"):
            if (highest > limit).any():
                above = np.count_nonzero(block > limit[:, None, None])
    return np.array([lowest, 0, above], dtype=np.float64)


def _block_stats_with_infinities(block: np.ndarray, limit: np.ndarray | None) -> np.ndarray:
    """:func:`block_stats` of a block holding +-inf (the infinities counted apart from the finite values)."""
    finite = np.isfinite(block)
    lowest = block[finite].min() if finite.any() else np.nan
    above = 0
    if limit is not None:
        with np.errstate(invalid="ignore"):
            above = np.count_nonzero(finite & (block > np.asarray(limit)[:, None, None]))
    return np.array([lowest, np.count_nonzero(np.isinf(block)), above], dtype=np.float64)


def combine_stats(stats: np.ndarray) -> tuple[float, int, int]:
    """:func:`block_stats` of several blocks ``(n, 3)`` as ``(lowest, n_inf, n_above)`` of them all."""
    stats = np.asarray(stats, dtype=np.float64).reshape(-1, N_STATS)
    lowest = np.nanmin(stats[:, 0]) if np.isfinite(stats[:, 0]).any() else np.nan
    return float(lowest), int(stats[:, 1].sum()), int(stats[:, 2].sum())


def clean_block(block: np.ndarray, stats: np.ndarray, limit: np.ndarray | None, implausible: str) -> np.ndarray:
    """``block`` as :func:`judge_values` leaves the values that pass: negative noise clipped to 0 and, with
    ``implausible == "missing"``, values above ``limit`` set missing (NaN). Values that fail (+-inf, too
    negative, above the bound with ``error``) are left for the judgement to refuse. In place when it can."""
    if stats[0] < 0:
        np.maximum(block, 0, out=block, where=~np.isnan(block))
    if stats[2] and implausible == "missing":
        with np.errstate(invalid="ignore"):
            block[block > np.asarray(limit)[:, None, None]] = np.nan
    return block


def _block_stats(block: np.ndarray, limit: np.ndarray | None, block_info=None) -> np.ndarray:
    """:func:`block_stats` of one dask block, shaped (1, 1, 1, 3) for :func:`scan_values`."""
    if limit is not None:
        t0, t1 = block_info[0]["array-location"][0]
        limit = limit[t0:t1]
    return block_stats(block, limit).reshape(1, 1, 1, N_STATS)


def scan_values(amount: xr.DataArray, limit: np.ndarray | None, origin: str) -> tuple[float, int, int]:
    """``(lowest finite value, number of +-inf, number above limit[time])`` of ``amount(time, lat, lon)``
    in one streaming pass. One task per input chunk reads it (dask then reads only the domain's part of
    each chunk, where several reductions over the same chunks would read them whole: an OPeNDAP source,
    the whole grid)."""
    import dask.array as dsa  # here, not at the top: the Snakefile imports this module for every run

    data = amount.data if isinstance(amount.data, dsa.Array) else dsa.from_array(amount.data)
    stats = dsa.map_blocks(_block_stats, data, limit, dtype=np.float64, new_axis=3,
                           chunks=tuple((1,) * len(c) for c in data.chunks) + ((N_STATS,),))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            values = stats.compute()
    except (OSError, RuntimeError, ValueError) as exc:
        raise InputDataError(f"{origin}: the data cannot be read ({exc}); the file may be truncated or "
                             "corrupt - download or copy it again") from exc
    return combine_stats(values)


def step_limit(plausibility: Mapping | None, seconds: np.ndarray) -> np.ndarray | None:
    """The bound of each step (float32 mm) from ``source.max_mm_per_hour`` and the steps' lengths in
    ``seconds``; None without plausibility bounds."""
    if plausibility is None:
        return None
    return (float(plausibility["max_mm_per_hour"]) * np.asarray(seconds, dtype=np.float64) / 3600.0).astype(np.float32)


def judge_values(amount: xr.DataArray, stats: tuple[float, int, int] | None, limit: np.ndarray | None,
                 plausibility: Mapping | None, files: np.ndarray, origin: str, key: str) -> tuple[xr.DataArray, int]:
    """Refuse or repair ``amount(time, lat, lon)`` (mm per step) by its :func:`combine_stats` ``stats``
    (None: not checked); return it (lazily clipped / set missing as the rules above say) and the number of
    values set missing. ``files`` names the file of each step, ``key`` the source's config section."""
    if stats is None:
        return amount, 0
    lowest, n_inf, n_above = stats
    if n_inf:
        raise InputDataError(_report(amount, np.isinf, files, f"{n_inf} infinite value(s) (+inf/-inf)")
                             + f"; precipitation must be finite: repair or replace the file(s), or check "
                             f"{key}.variable and the file's _FillValue/missing_value")
    if np.isnan(lowest):
        raise InputDataError(f"{origin}: the precipitation inside the domain is all NaN (missing); check "
                             f"{key}.variable, the domain (domain.lon/domain.lat) and the file's _FillValue")
    if lowest < -NEGATIVE_TOLERANCE_MM:
        raise InputDataError(
            f"{origin}: negative precipitation (minimum {lowest:.4g} mm per step); amounts must be >= 0 - "
            f"check {key}.variable (an anomaly or net flux?) and {key}.units")
    if lowest < 0:
        log.info("%s: clipping negative noise down to %.3g mm to 0", origin, lowest)
        amount = amount.clip(min=0)
    if not n_above:
        return amount, 0
    bound = xr.DataArray(limit, dims="time", coords={"time": amount["time"]})
    report = _report(amount, lambda values: values > bound, files,
                     f"{n_above} value(s) above source.max_mm_per_hour={plausibility['max_mm_per_hour']} "
                     f"mm/h ({_limit_text(limit)} per step)")
    if plausibility["implausible"] == "error":
        raise InputDataError(
            f"{report}; no rain is that heavy (world record ~300 mm/h): check {key}.units, the file's "
            "scale_factor and _FillValue; if the values are real raise source.max_mm_per_hour, or set "
            "source.implausible: missing to set such values missing (NaN) and count them")
    log.warning("%s; set missing (NaN) as source.implausible: missing asks", report)
    return amount.where(~(amount > bound)), n_above


def _limit_text(limit: np.ndarray) -> str:
    low, high = float(limit.min()), float(limit.max())
    return f"{low:.6g} mm" if low == high else f"{low:.6g}..{high:.6g} mm"


def _report(amount: xr.DataArray, test, files: np.ndarray, what: str, cells: int = 5) -> str:
    """Where the values for which ``test(amount)`` holds lie: per file (count, largest value and when)
    and the ``cells`` cells with the most of them (lat, lon, count, largest). Reads ``amount`` once more:
    only called when the checking pass found some."""
    import dask

    bad = test(amount)
    values = amount.where(bad)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        step_count, step_max, cell_count, cell_max = dask.compute(
                bad.sum(("lat", "lon")).data, values.max(("lat", "lon")).data,
                bad.sum("time").data, values.max("time").data)
    step_max = np.asarray(step_max)
    time = amount["time"].values
    parts = []
    for name in dict.fromkeys(files[np.asarray(step_count) > 0]):
        steps = np.flatnonzero((files == name) & (np.asarray(step_count) > 0))
        worst = steps[np.nanargmax(step_max[steps])]
        value = float(step_max[worst])
        parts.append(f"{name}: {int(np.asarray(step_count)[steps].sum())} in {steps.size} step(s) "
                     f"{str(time[steps[0]])[:16]} .. {str(time[steps[-1]])[:16]}, the largest {value:.4g} mm "
                     f"on {str(time[worst])[:16]}")
    cell_count, cell_max = np.asarray(cell_count), np.asarray(cell_max)
    order = np.argsort(-cell_count, axis=None, kind="stable")[:cells]
    shown = [f"(lat {float(amount['lat'][j]):.4g}, lon {float(amount['lon'][i]):.4g}): {int(cell_count[j, i])} "
             f"step(s), largest {float(cell_max[j, i]):.4g} mm"
             for j, i in zip(*np.unravel_index(order, cell_count.shape)) if cell_count[j, i] > 0]
    n_cells = int(np.count_nonzero(cell_count))
    return (f"{what}: " + "; ".join(parts) + f"; in {n_cells} cell(s)"
            + (f", the first {len(shown)} by count" if n_cells > len(shown) else "") + ": " + "; ".join(shown))


def _window_block(block: np.ndarray, bound: float, mode: str, starts: np.ndarray, lat: np.ndarray,
                  lon: np.ndarray, origin: str, block_info=None) -> np.ndarray:
    """One block of window totals checked against ``bound`` (:func:`check_window_totals`)."""
    with np.errstate(invalid="ignore"):
        above = block > bound
    if not above.any():
        return block
    t0 = block_info[0]["array-location"][0][0]
    y0, x0 = block_info[0]["array-location"][1][0], block_info[0]["array-location"][2][0]
    found = [f"{str(starts[t0 + t])[:16]} (lat {lat[y0 + j]:.4g}, lon {lon[x0 + i]:.4g}): {block[t, j, i]:.4g} mm"
             for t, j, i in zip(*np.nonzero(above))]
    text = (f"{origin}: {len(found)} window total(s) above source.max_window_mm={bound:g} mm: "
            + "; ".join(found[:5]) + (f" (and {len(found) - 5} more)" if len(found) > 5 else ""))
    if mode == "error":
        raise InputDataError(f"{text}; no rain is that heavy (world record ~3930 mm in 72 hours): check the "
                             "source's units and values; if they are real raise source.max_window_mm, or set "
                             "source.implausible: missing to set such totals missing (NaN) and count them")
    log.warning("%s; set missing (NaN) as source.implausible: missing asks", text)
    return np.where(above, np.float32(np.nan), block)


def check_window_totals(totals: xr.Dataset, plausibility: Mapping | None, origin: str) -> xr.Dataset:
    """``totals`` with each window total checked against ``plausibility['max_window_mm']`` as it is
    computed (lazily, block by block): above it is an error naming the window, the cell and ``origin``, or,
    with ``implausible: missing``, set missing (NaN) and logged per window and cell. ``None`` (or a bound
    of null) checks nothing."""
    import dask.array as dsa  # here, not at the top: the Snakefile imports this module for every run

    if plausibility is None or plausibility["max_window_mm"] is None:
        return totals
    precip = totals["precip"]
    data = precip.data if isinstance(precip.data, dsa.Array) else dsa.from_array(precip.data)
    checked = dsa.map_blocks(_window_block, data, float(plausibility["max_window_mm"]),
                             plausibility["implausible"], totals["time"].values, totals["lat"].values,
                             totals["lon"].values, origin, dtype=data.dtype)
    out = totals.copy()
    out["precip"] = precip.copy(data=checked)
    out["precip"].attrs["max_window_mm"] = float(plausibility["max_window_mm"])
    return out


class ValuesRefused(Exception):
    """A block read by :class:`DeferredChecks` holds values :func:`judge_values` refuses; the reader stops
    and :meth:`DeferredChecks.refuse` says which."""


@dataclass(frozen=True)
class DeferredChecks:
    """The checks of :func:`judge_values` on ``amount(time, lat, lon)`` (mm per step, not checked yet), run
    on the blocks another pass reads in this process (the accumulation's, on dask's threaded scheduler:
    one read of the files instead of two).

    ``limit``: the bound of each step (mm, or None); ``plausibility``, ``files`` (the file of each step),
    ``origin`` and ``key`` as :func:`judge_values` takes them. Called on a block of steps ``[i0, i1)``
    it keeps the block's :func:`block_stats` and returns the block cleaned (:func:`clean_block`), or
    raises :class:`ValuesRefused`; :meth:`judge` then judges all blocks read, :meth:`refuse` explains a
    refusal.
    """

    amount: xr.DataArray
    limit: np.ndarray | None
    plausibility: Mapping | None
    files: np.ndarray
    origin: str
    key: str
    found: dict = field(default_factory=dict)  # (i0, i1) -> block_stats

    @property
    def implausible(self) -> str:
        return "error" if self.plausibility is None else self.plausibility["implausible"]

    def __call__(self, block: np.ndarray, i0: int, i1: int) -> np.ndarray:
        limit = None if self.limit is None else self.limit[i0:i1]
        stats = block_stats(block, limit)
        if stats[1] or stats[0] < -NEGATIVE_TOLERANCE_MM or (stats[2] and self.implausible == "error"):
            raise ValuesRefused(f"{self.origin}: steps {i0}..{i1}")
        self.found[(i0, i1)] = stats
        return clean_block(block, stats, limit, self.implausible)

    def judge(self, blocks: int) -> int:
        """:func:`judge_values` of the statistics of the ``blocks`` blocks read (none: nothing to judge);
        the number of values set missing."""
        if len(self.found) != blocks:
            raise RuntimeError(f"{self.origin}: {len(self.found)} of {blocks} blocks were checked; the blocks "
                               "must be read in this process (dask's threaded scheduler)")
        if not blocks:
            return 0
        return judge_values(self.amount, combine_stats(list(self.found.values())), self.limit,
                            self.plausibility, self.files, self.origin, self.key)[1]

    def refuse(self) -> None:
        """Raise the error :func:`judge_values` gives for ``amount`` (after :class:`ValuesRefused`), from
        a scan of its values of their own."""
        judge_values(self.amount, scan_values(self.amount, self.limit, self.origin), self.limit,
                     self.plausibility, self.files, self.origin, self.key)
        raise RuntimeError(f"{self.origin}: a block was refused, the scan of all values found nothing wrong")
