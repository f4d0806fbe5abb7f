"""Window planning: which steps make which window, block and partition (precipmodes.preprocess.windows)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from precipmodes.preprocess.windows import (ALIGN_GROWTH, WindowPlan, partition_months, partition_ranges, plan_blocks,
                                            plan_windows)


def test_partition_months_auto_sizes_from_step_and_grid():
    hour, day = np.timedelta64(1, "h"), np.timedelta64(1, "D")
    assert partition_months("auto", hour, 200 * 160) == 12  # 730.5 steps x 32,000 cells x 4 B = 94 MB a month
    assert partition_months("auto", hour, 2000 * 2000) == 1
    assert partition_months("auto", day, 1000 * 1000) == 12  # 122 MB a month: 8.8 months hold 1 GiB
    assert partition_months("auto", day, 100 * 100) == 888  # 1.2 MB a month: 882 months, in whole years
    assert partition_months("auto", day, 80) == 1200  # 62 years of a small daily grid: the longest, a century
    assert partition_months(3, day, 80) == 3


def test_partition_blocks_count_from_year_0_and_hold_whole_windows():
    time = np.arange("1950-01-01", "2012-01-01", dtype="datetime64[D]").astype("datetime64[ns]")
    day = np.timedelta64(1, "D")
    plan = plan_windows(time, day, 72, time[0], 1.0)
    # centuries from year 0 (records before 1970 too): the window of 1999-12-31 .. 2000-01-02 stays in the 1900s
    assert partition_ranges(plan, 1200) == {"1900-01": (0, 18264), "2000-01": (18264, 22645)}
    decades = partition_ranges(plan, 120)
    assert list(decades) == [f"{year}-01" for year in range(1950, 2020, 10)]
    years = partition_ranges(plan, 12)
    assert list(years)[:2] == ["1950-01", "1951-01"] and len(years) == 62
    # consecutive, whole windows: each partition starts where the previous ended, on a window start
    ends = [r[1] for r in years.values()]
    assert [r[0] for r in years.values()][1:] == ends[:-1] and set(ends[:-1]) <= set(plan.first.tolist())


@settings(max_examples=40, deadline=None)
@given(windows=st.integers(1, 60), steps=st.sampled_from([3, 8, 12, 24, 72]), per_block=st.integers(1, 9),
       chunk=st.sampled_from([1, 7, 16, 32, 512]), offset=st.integers(0, 40))
def test_property_blocks_cover_the_windows_and_end_on_chunks_where_they_can(windows, steps, per_block, chunk,
                                                                            offset):
    first = offset + np.arange(windows) * steps
    plan = WindowPlan(start=first.astype("datetime64[h]"), first=first, count=np.full(windows, steps),
                      steps=steps, kept=np.ones(windows, bool))
    blocks = plan_blocks(plan, np.arange(windows), per_block, chunk)
    np.testing.assert_array_equal(np.concatenate([b[2] for b in blocks]), np.arange(windows))
    period = int(np.lcm(steps, chunk))
    limit = max(per_block * steps, period if chunk > 1 and period <= ALIGN_GROWTH * per_block * steps else 0)
    for i0, i1, kept in blocks:
        assert i0 == first[kept[0]] and i1 == first[kept[-1]] + steps
        assert i1 - i0 <= max(limit, steps)
    if chunk > 1 and period <= ALIGN_GROWTH * per_block * steps and offset % chunk == 0:
        # windows start on a chunk boundary: every block but the last ends on one
        assert all(i1 % chunk == 0 for _, i1, _ in blocks[:-1])
