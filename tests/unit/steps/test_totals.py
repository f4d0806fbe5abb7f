"""The partitions' totals read as one dataset (precipmodes.steps.totals): what one pass over the record gives."""

from __future__ import annotations

import numpy as np
import pytest

from precipmodes.errors import InputDataError
from precipmodes.io.netcdf import write_netcdf
from precipmodes.steps.windowtotals import accumulate
from precipmodes.steps.totals import combine_partitions, open_totals
from helpers.preprocess_cases import canonical

ANCHOR = "2006-01-01T00:00Z"


def record():
    """Ten days of hourly values on 2 x 3 cells: one cell NaN throughout (sea), one missing value, and steps
    100-109 (day 5) missing from the record, so that day's 24-hour window is dropped for completeness."""
    values = np.random.default_rng(7).gamma(0.5, 2.0, (240, 2, 3)).astype(np.float32)
    values[:, 0, 0] = np.nan
    values[30, 1, 2] = np.nan
    return canonical(values, start="2006-01-01T00:00", drop=range(100, 110))


def partitions(ds, cuts=(96, 182)):
    """Window totals of ``ds`` in partitions cut at the record steps ``cuts`` (each on a window start)."""
    bounds = [0, *cuts, ds.sizes["time"]]
    return [accumulate(ds.isel(time=slice(a, b)), 24, ANCHOR, partition=True).compute()
            for a, b in zip(bounds[:-1], bounds[1:])]


def test_partitions_combine_to_one_pass():
    ds = record()
    whole = accumulate(ds, 24, ANCHOR).compute()
    got = combine_partitions(partitions(ds))
    assert whole.attrs["n_windows"] == 9 and whole.attrs["n_windows_dropped"] == 1
    # float32 sums of 24 steps, summed in another order where the record has a gap (numpy.add.reduceat)
    np.testing.assert_allclose(got["precip"].values, whole["precip"].values, rtol=24 * np.finfo(np.float32).eps)
    for name in ("time_bnds", "completeness", "n_observed_steps", "dropped_window_completeness"):
        np.testing.assert_array_equal(got[name].values, whole[name].values, err_msg=name)
    np.testing.assert_array_equal(got["time"].values, whole["time"].values)
    np.testing.assert_array_equal(got["dropped_window"].values, whole["dropped_window"].values)
    assert (got.attrs["n_windows"], got.attrs["n_windows_dropped"], got.attrs["n_partitions"]) == (9, 1, 3)
    assert got["n_observed_steps"].values[0, 0] == 0 and got["n_observed_steps"].values[1, 2] == 9 * 24 - 1


def test_open_totals_reads_the_files_as_combined(tmp_path):
    parts = partitions(record())
    paths = [write_netcdf(part, tmp_path / f"{k}.nc") for k, part in enumerate(parts)]
    with open_totals(paths, chunks={"time": 2}) as got:
        assert got["precip"].chunks[0] == (2, 2, 2, 1, 2)  # lazy: 4 + 3 + 2 windows in chunks of 2
        np.testing.assert_array_equal(got["precip"].values, combine_partitions(parts)["precip"].values)
        assert got.attrs["n_windows"] == 9


def test_no_complete_window_in_any_partition_names_the_files(tmp_path):
    ds = record().isel(time=slice(96, 120))  # day 5: 14 steps of 24 (the gap), day 6: its first 10
    paths = [write_netcdf(part, tmp_path / f"{k}.nc") for k, part in enumerate(partitions(ds, cuts=(14,)))]
    with pytest.raises(InputDataError, match=r"0\.nc \.\. .*1\.nc: no 24-hour window reaches "
                                             r"accumulation\.min_completeness=1\.0 \(best completeness 0\.583\)"):
        with open_totals(paths):
            pass
