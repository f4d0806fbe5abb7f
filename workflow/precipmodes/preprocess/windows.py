"""Which steps of a record make which accumulation window, block and partition (numpy only, no files).

Windows start at ``anchor + k * hours`` (k any integer) and are labelled by their
start; every input step (labelled by its start, with a constant length) belongs to
exactly one window. A window's *completeness* is the fraction of its steps present in
the record, and it is kept when that reaches ``min_completeness`` (:func:`plan_windows`;
the totals themselves: :func:`precipmodes.steps.windowtotals.accumulate`). The kept windows
are read in blocks (:func:`plan_blocks`), and the workflow totals a record in partitions
of calendar months of window starts, one job each (:func:`partition_months`,
:func:`partition_ranges`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from precipmodes.config import iso_utc, parse_instant
from precipmodes.errors import InputDataError

SEED_ANCHOR = "2005-12-31T15:00Z"  # 00:00 JST, where the seed's 72-hour windows start
ALIGN_GROWTH = 4  # how far a block may grow beyond its size to end on a chunk boundary (plan_blocks)
#: decoded input (float32) a partition of ``accumulation.partition_months: auto`` holds at least: a job
#: costs ~1.7 s to start (Python, imports, Snakemake), a quarter of what it spends on 1 GiB (10 years of hourly
#: 200 x 160 maps on 2 cores: 48.6 s to train.nc in 12-month partitions, 57.5 s in 6-month ones)
PARTITION_BYTES = 2**30
#: partition lengths (months) auto chooses among below a year; above, whole years
_MONTHS_BELOW_A_YEAR = (1, 2, 3, 4, 6)
#: the longest partition (months; the schema's maximum of ``accumulation.partition_months``)
MAX_PARTITION_MONTHS = 1200
#: months from January of year 0 to January 1970 (numpy's epoch), where partition blocks are aligned
_MONTHS_BEFORE_1970 = 1970 * 12
#: attributes of ``n_observed_steps(lat, lon)``, the totals' count per cell (the ``data_nan`` land mask's)
OBSERVED_ATTRS = {"long_name": "number of input steps with a value (not missing) at the cell, in the kept windows",
                  "units": "1"}


@dataclass
class WindowPlan:
    """Which record steps make which window.

    ``start``: window starts (datetime64[ns], one per window touched by the record);
    ``first``/``count``: index of the window's first step in the record and number
    of its steps present; ``steps``: steps per full window; ``kept``: completeness
    >= min_completeness.
    """

    start: np.ndarray
    first: np.ndarray
    count: np.ndarray
    steps: int
    kept: np.ndarray

    @property
    def completeness(self) -> np.ndarray:
        return self.count / self.steps


def plan_windows(time: np.ndarray, step: np.timedelta64, hours: int, anchor: np.datetime64,
                 min_completeness: float, origin: str = "raw dataset") -> WindowPlan:
    """Assign the record's steps (``time``: ascending starts) to windows of ``hours``.

    Raises InputDataError when ``hours`` is not a multiple of the step or a step
    does not start on the window grid defined by ``anchor``.
    """
    step_ns = int(np.timedelta64(step, "ns").astype(np.int64))
    window_ns = hours * 3_600_000_000_000
    step_text = _duration_text(step_ns)
    if window_ns % step_ns:
        raise InputDataError(
            f"accumulation.hours: {hours} h is not a multiple of the input step {step_text} of the "
            f"{origin}; choose a multiple of {step_text}"
        )
    offsets = (time.astype("datetime64[ns]") - np.datetime64(anchor, "ns")).astype(np.int64)
    misaligned = np.flatnonzero(offsets % step_ns)
    if misaligned.size:
        raise InputDataError(
            f"accumulation.anchor: {iso_utc(anchor)} UTC is not aligned with the {step_text} steps of the "
            f"{origin} (e.g. the step starting {iso_utc(time[misaligned[0]])} UTC); choose an anchor on a step "
            "start, or use 'auto' or 'first'"
        )
    index = offsets // window_ns
    windows, first, count = np.unique(index, return_index=True, return_counts=True)
    steps = window_ns // step_ns
    start = np.datetime64(anchor, "ns") + (windows * window_ns).astype("timedelta64[ns]")
    kept = count >= steps * min_completeness - 1e-9
    return WindowPlan(start=start, first=first, count=count, steps=int(steps), kept=kept)


def resolve_anchor(time: np.ndarray, step: np.timedelta64, anchor: str = "auto") -> tuple[np.datetime64, str]:
    """The window anchor (naive UTC datetime64[ns]) for the record's step starts ``time`` and a reason.

    ``anchor`` is an ISO-8601 instant with offset, ``"first"`` (the first step) or ``"auto"``:
    the seed's 00:00 JST (:data:`SEED_ANCHOR`, 15:00 UTC) when it lies on the step grid
    ``time[0] + k * step``, else the first step that starts at 00:00 UTC, else the first step.
    """
    time = np.asarray(time).astype("datetime64[ns]")
    if anchor == "first":
        return time[0], "first: the first time step"
    if anchor != "auto":
        return parse_instant(anchor), "given"
    step_ns = int(np.timedelta64(step, "ns").astype(np.int64))
    seed = parse_instant(SEED_ANCHOR)
    if int((seed - time[0]).astype("timedelta64[ns]").astype(np.int64)) % step_ns == 0:
        return seed, "auto: the seed's 00:00 JST (15:00 UTC) lies on the step grid"
    midnight = np.flatnonzero(time == time.astype("datetime64[D]").astype("datetime64[ns]"))
    if midnight.size:
        return time[midnight[0]], "auto: the first time step at 00:00 UTC (15:00 UTC is off the step grid)"
    return time[0], "auto: the first time step (neither 15:00 UTC nor 00:00 UTC is on the step grid)"


def record_plan(time: np.ndarray, step: np.timedelta64, accumulation: Mapping,
                origin: str) -> tuple[np.datetime64, str, WindowPlan]:
    """The anchor (:func:`resolve_anchor`), how it was chosen, and the windows of the whole record
    (:func:`plan_windows`) for the ``accumulation`` section."""
    anchor, rule = resolve_anchor(time, step, accumulation["anchor"])
    plan = plan_windows(time, step, int(accumulation["hours"]), anchor, float(accumulation["min_completeness"]),
                        origin)
    return anchor, rule, plan


def plan_blocks(plan: WindowPlan, kept: np.ndarray, windows_per_block: int,
                chunk_steps: int = 1) -> list[tuple[int, int, np.ndarray]]:
    """Group kept windows into record ranges ``[i0, i1)`` of at most ``windows_per_block`` windows' steps.

    ``chunk_steps``: the input's chunk length along time. A block is then cut, where it can be, at a
    window end that is also a chunk boundary, and may grow to the period at which the two coincide
    (lcm of window and chunk length, if at most :data:`ALIGN_GROWTH` x the block): a chunk shared by two
    blocks is decompressed twice when the blocks go to different reader processes (the seed-scale demo,
    12-step windows in 32-step chunks, 2 readers: 16.1 s with 72-step blocks, 10.6 s with 312-step ones).
    """
    if not len(kept):
        return []
    limit = windows_per_block * plan.steps
    period = int(np.lcm(plan.steps, chunk_steps))
    if chunk_steps > 1 and period <= ALIGN_GROWTH * limit:
        limit = max(limit, period)
    blocks, current = [], []
    for w in kept:
        w = int(w)
        if current and plan.first[w] + plan.count[w] - plan.first[current[0]] > limit:
            ends = plan.first[current] + plan.count[current]
            aligned = np.flatnonzero(ends % chunk_steps == 0) if chunk_steps > 1 else np.array([], int)
            cut = int(aligned[-1]) + 1 if aligned.size else len(current)
            blocks.append(current[:cut])
            current = current[cut:]
        current.append(w)
    blocks.append(current)
    return [(int(plan.first[b[0]]), int(plan.first[b[-1]] + plan.count[b[-1]]), np.asarray(b)) for b in blocks]


def partition_months(setting: int | str, step: np.timedelta64, cells: int) -> int:
    """Months per partition: ``setting`` (``accumulation.partition_months``) or, for ``auto``, the fewest of
    1, 2, 3, 4, 6 or 12 k whose steps (``step`` long, on ``cells`` cells) hold :data:`PARTITION_BYTES` of
    float32 in an average month (so that appending data never changes the choice), at most
    :data:`MAX_PARTITION_MONTHS`."""
    if setting != "auto":
        return int(setting)
    steps_per_month = np.timedelta64(2_629_746, "s") / step  # 365.2425 / 12 days
    need = PARTITION_BYTES / (4.0 * cells * steps_per_month)
    below = [m for m in _MONTHS_BELOW_A_YEAR if m >= need]
    return below[0] if below else min(12 * int(np.ceil(need / 12)), MAX_PARTITION_MONTHS)


def partition_ranges(plan: WindowPlan, months: int) -> dict[str, tuple[int, int]]:
    """The partitions of the record: ``{label: (first step, end step)}``, in time order.

    A partition holds the windows (kept or dropped) whose start falls in one block of ``months`` calendar
    months (blocks counted from January of year 0, so 12 is a calendar year, 120 a decade from a year
    ending in 0, 1 a month), and all of their steps; labelled by the block's first month, ``YYYY-MM``."""
    since_year_0 = plan.start.astype("datetime64[M]").astype(np.int64) + _MONTHS_BEFORE_1970
    block = since_year_0 // months * months - _MONTHS_BEFORE_1970
    labels = np.datetime_as_string(block.astype("datetime64[M]"), unit="M")
    ranges = {}
    for label in dict.fromkeys(labels):
        windows = np.flatnonzero(labels == label)
        ranges[str(label)] = (int(plan.first[windows[0]]), int(plan.first[windows[-1]] + plan.count[windows[-1]]))
    return ranges


def _duration_text(ns: int) -> str:
    return str(pd.Timedelta(ns, "ns")).replace("0 days ", "")


def no_window_error(origin: str, hours: int, min_completeness: float, completeness: np.ndarray) -> InputDataError:
    """The error of a record without a complete window (``completeness``: of the windows it touches)."""
    return InputDataError(
        f"{origin}: no {hours}-hour window reaches accumulation.min_completeness={min_completeness} "
        f"(best completeness {completeness.max() if completeness.size else 0:.3f}); lower "
        "accumulation.min_completeness or check the record for gaps")
