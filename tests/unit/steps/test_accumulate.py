"""accumulate: exact totals on hand-made series, gaps, completeness, anchors, real data, streaming."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from helpers.preprocess_cases import canonical, from_real

from precipmodes.errors import InputDataError
from precipmodes.io.netcdf import open_netcdf, write_netcdf
from precipmodes.preprocess.windows import resolve_anchor
from precipmodes.steps.accumulate import accumulate_files
from precipmodes.io.sources import ALREADY_ACCUMULATED_ATTR
from precipmodes.steps.windowtotals import accumulate

H72 = np.timedelta64(72, "h")


def test_known_hourly_series_exact_totals():
    ds = canonical(np.arange(216))  # step i holds i mm; starts at the anchor
    out = accumulate(ds, 72, "2005-12-31T15:00Z").compute()
    np.testing.assert_array_equal(out["precip"].values[:, 0, 0], [2556, 7740, 12924])  # sums of 0..71 etc.
    np.testing.assert_array_equal(out["time"].values, np.datetime64("2005-12-31T15:00") + np.arange(3) * H72)
    np.testing.assert_array_equal(out["time_bnds"].values[:, 1] - out["time_bnds"].values[:, 0], [H72] * 3)
    np.testing.assert_array_equal(out["completeness"].values, [1, 1, 1])
    assert out["precip"].attrs["cell_methods"] == "time: sum (interval: 72 hours)"
    assert out["precip"].dtype == np.float32
    assert out.attrs["n_windows_dropped"] == 0


def test_seed_anchor_drops_the_partial_first_window():
    # record starts 2006-01-01 00:00 UTC; windows start 15:00 UTC (00:00 JST)
    ds = canonical(np.ones(24 * 10), start="2006-01-01T00:00")
    out = accumulate(ds, 72, "2005-12-31T15:00Z").compute()
    starts = out["time"].values
    assert np.all((starts - np.datetime64("2005-12-31T15:00")) % H72 == np.timedelta64(0))
    assert str(starts[0]).startswith("2006-01-03T15:00")
    assert out.attrs["n_windows_dropped"] == 2  # first (57/72 steps) and last (15/72 steps)
    np.testing.assert_array_equal(out["precip"].values[:, 0, 0], [72, 72])
    # the anchor in JST gives the same windows
    jst = accumulate(ds, 72, "2006-01-01T00:00+09:00").compute()
    np.testing.assert_array_equal(jst["time"].values, starts)


def test_gap_splits_windows_and_is_never_filled():
    values = np.full(72 * 4, 2.0)
    ds = canonical(values, drop=np.arange(100, 105))  # a 5-hour gap inside the second window
    out = accumulate(ds, 72, "first").compute()
    assert out.attrs["n_windows_dropped"] == 1
    np.testing.assert_array_equal(out["time"].values, np.datetime64("2005-12-31T15:00") + np.array([0, 2, 3]) * H72)
    np.testing.assert_array_equal(out["precip"].values[:, 0, 0], [144, 144, 144])
    bnds = out["time_bnds"].values
    present = ds["time"].values
    for start, end in bnds:  # every kept window's steps are all in the record
        assert np.count_nonzero((present >= start) & (present < end)) == 72


def test_window_at_99_percent_completeness():
    ds = canonical(np.full(144 * 2, 0.5), step="30min", drop=[150])  # second window: 143 of 144 steps
    strict = accumulate(ds, 72, "first", min_completeness=1.0).compute()
    assert strict.sizes["time"] == 1 and strict.attrs["n_windows_dropped"] == 1
    np.testing.assert_array_equal(strict["precip"].values[:, 0, 0], [72.0])
    lenient = accumulate(ds, 72, "first", min_completeness=0.95).compute()
    assert lenient.sizes["time"] == 2 and lenient.attrs["n_windows_dropped"] == 0
    np.testing.assert_allclose(lenient["completeness"].values, [1.0, 143 / 144], rtol=1e-6)
    # incomplete windows are totalled as sum of present steps / completeness
    np.testing.assert_allclose(lenient["precip"].values[:, 0, 0], [72.0, 71.5 * 144 / 143], rtol=1e-6)


def test_daily_input():
    ds = canonical(np.arange(1, 10), start="2000-01-01", step="1D")
    out = accumulate(ds, 72, "2000-01-01T00:00Z").compute()
    np.testing.assert_array_equal(out["precip"].values[:, 0, 0], [6, 15, 24])
    assert out.attrs["input_step_hours"] == 24


def test_nan_cell_gives_nan_total_only_there():
    values = np.ones((144, 2, 2))
    values[:, 0, 0] = np.nan  # sea
    values[10, 1, 1] = np.nan  # one missing value on land in the first window
    out = accumulate(canonical(values), 72, "first").compute()["precip"].values
    assert np.isnan(out[:, 0, 0]).all()
    assert np.isnan(out[0, 1, 1]) and out[1, 1, 1] == 72
    assert (out[:, 0, 1] == 72).all()


def test_already_accumulated_totals_pass_through():
    ds = canonical(np.array([3.0, 5.0, 7.0]), step="72h")
    ds.attrs[ALREADY_ACCUMULATED_ATTR] = 72
    out = accumulate(ds, 72, "2005-12-31T15:00Z").compute()
    np.testing.assert_array_equal(out["precip"].values[:, 0, 0], [3, 5, 7])
    np.testing.assert_array_equal(out["completeness"].values, [1, 1, 1])
    with pytest.raises(InputDataError, match="accumulation.hours: 72"):
        accumulate(ds, 24, "first")


def test_hours_not_a_multiple_of_the_step():
    ds = canonical(np.ones(10), step="1D")
    with pytest.raises(InputDataError, match=r"accumulation.hours: 36 h is not a multiple of the input step 1 days"):
        accumulate(ds, 36, "first")


def test_auto_anchor_six_hourly_jst_takes_the_seed_anchor():
    ds = canonical(np.ones(48), start="2006-01-01T03:00", step="6h")  # 12:00 JST steps: 03/09/15/21 UTC
    out = accumulate(ds, 72, "auto").compute()
    assert out.attrs["accumulation_anchor"] == "2005-12-31T15:00:00Z"
    assert out.attrs["accumulation_anchor_rule"].startswith("auto: the seed's 00:00 JST")
    # windows at 12-31T15 (10 of 12 steps), 01-03T15, 01-06T15, 01-09T15, 01-12T15 (2 of 12 steps)
    np.testing.assert_array_equal(out["time"].values, np.array(["2006-01-03T15", "2006-01-06T15", "2006-01-09T15"],
                                                               dtype="datetime64[ns]"))
    assert out.attrs["n_windows_dropped"] == 2 and out.sizes["time"] == 3


def test_auto_anchor_daily_utc_takes_the_first_midnight():
    ds = canonical(np.arange(10), start="1982-12-01", step="1D")
    out = accumulate(ds, 72, "auto").compute()
    assert out.attrs["accumulation_anchor"] == "1982-12-01T00:00:00Z"
    assert out.attrs["accumulation_anchor_rule"].startswith("auto: the first time step at 00:00 UTC")
    np.testing.assert_array_equal(out["precip"].values[:, 0, 0], [0 + 1 + 2, 3 + 4 + 5, 6 + 7 + 8])
    # hourly data starting at 05 UTC: 15:00 UTC is on the hourly grid, so the seed anchor wins
    anchor, _ = resolve_anchor(canonical(np.ones(5), start="2006-01-01T05:00")["time"].values,
                               np.timedelta64(1, "h"))
    assert anchor == np.datetime64("2005-12-31T15:00")


def test_auto_anchor_midnight_later_in_the_record_and_odd_steps():
    # 12-hourly at 12:00 and 00:00 UTC starting at noon: 15:00 is off the grid, the first midnight is step 1
    time = canonical(np.ones(4), start="2006-01-01T12:00", step="12h")["time"].values
    assert resolve_anchor(time, np.timedelta64(12, "h"))[0] == np.datetime64("2006-01-02T00:00")
    # 7-hourly at hh:30: neither 15:00 nor 00:00 UTC is a step start -> the first step
    odd = canonical(np.ones(40), start="2006-01-01T01:30", step="7h")
    anchor, rule = resolve_anchor(odd["time"].values, np.timedelta64(7, "h"))
    assert anchor == np.datetime64("2006-01-01T01:30") and rule.startswith("auto: the first time step (")
    out = accumulate(odd, 70, "auto").compute()
    assert out.attrs["accumulation_anchor"] == "2006-01-01T01:30:00Z" and out.sizes["time"] == 4
    assert out.attrs["n_windows_dropped"] == 0
    # explicit anchors are used as given; 'first' is the first step
    assert resolve_anchor(time, np.timedelta64(12, "h"), "2006-01-01T00:00+09:00")[0] == np.datetime64(
        "2005-12-31T15:00")
    assert resolve_anchor(time, np.timedelta64(12, "h"), "first")[0] == time[0]


def test_anchor_not_aligned_with_the_steps():
    ds = canonical(np.ones(100), start="2006-01-01T00:00", step="1h")
    with pytest.raises(InputDataError, match=r"accumulation.anchor: 2005-12-31T15:30:00 UTC is not aligned"):
        accumulate(ds, 72, "2005-12-31T15:30Z")
    daily = canonical(np.ones(10), start="2006-01-01", step="1D")
    with pytest.raises(InputDataError, match="accumulation.anchor"):
        accumulate(daily, 72, "2005-12-31T15:00Z")


def test_uneven_steps_are_refused():
    ds = canonical(np.ones(10))
    bnds = ds["time_bnds"].values.copy()
    bnds[3, 1] += np.timedelta64(30, "m")
    ds["time_bnds"] = (("time", "nv"), bnds)
    with pytest.raises(InputDataError, match="constant input step"):
        accumulate(ds, 72, "first")


def test_streaming_file_matches_in_memory(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.gamma(0.3, 2.0, size=(72 * 12, 5, 6)).astype(np.float32)
    values[:, 0, :] = np.nan
    ds = canonical(values, drop=np.r_[300:310])
    raw = write_netcdf(ds, tmp_path / "raw.nc")
    expected = accumulate(ds, 72, "first").compute()
    out = accumulate_files(input_path=raw, output_path=tmp_path / "totals.nc",
                           accumulation={"hours": 72, "anchor": "first", "min_completeness": 1.0}, block_mb=0.0005)
    got = open_netcdf(out)
    assert got["precip"].encoding["zlib"]
    xr.testing.assert_allclose(got["precip"], expected["precip"])
    xr.testing.assert_equal(got["time_bnds"], expected["time_bnds"])
    assert got.attrs["n_windows_dropped"] == 1 and got.attrs["min_completeness"] == 1.0
    assert got["precip"].attrs["cell_methods"] == "time: sum (interval: 72 hours)"
    assert "accumulate: 72-hour totals" in got.attrs["history"]
    assert not list(tmp_path.glob(".*tmp*"))


def test_blocks_do_not_change_the_result():
    rng = np.random.default_rng(1)
    ds = canonical(rng.random((72 * 9, 3, 4)), drop=np.r_[80:90, 400:401])
    one = accumulate(ds, 72, "first", block_mb=1000)
    many = accumulate(ds, 72, "first", block_mb=0.0001)
    assert len(one["precip"].chunks[0]) == 1 and len(many["precip"].chunks[0]) == many.sizes["time"] == 7
    # block edges only change the order of float32 additions (reshape-sum vs reduceat)
    xr.testing.assert_allclose(one.compute(), many.compute(), rtol=1e-6)


@settings(max_examples=25, deadline=None)
@given(values=st.lists(st.floats(0, 50, width=32), min_size=24, max_size=200),
       gaps=st.sets(st.integers(0, 199), max_size=20), hours=st.sampled_from([3, 6, 24]))
def test_property_totals_conserve_precipitation_over_complete_windows(values, gaps, hours):
    ds = canonical(np.array(values), drop=sorted(g for g in gaps if g < len(values)))
    series = ds["precip"].values[:, 0, 0].astype(np.float64)
    time = ds["time"].values
    window = np.timedelta64(hours, "h")
    starts = time[0] + np.arange(len(values) // hours + 1) * window
    complete = [s for s in starts if np.count_nonzero((time >= s) & (time < s + window)) == hours]
    if not complete:
        with pytest.raises(InputDataError, match="no .* window reaches accumulation.min_completeness"):
            accumulate(ds, hours, "first")
        return
    out = accumulate(ds, hours, "first").compute()
    np.testing.assert_array_equal(out["time"].values, complete)
    for (start, end), total in zip(out["time_bnds"].values, out["precip"].values[:, 0, 0]):
        inside = (time >= start) & (time < end)
        assert inside.sum() == hours  # complete windows only
        assert total == pytest.approx(series[inside].sum(), rel=1e-5, abs=1e-4)


def test_eobs_winters_no_window_spans_the_gap(shared_data):
    raw = from_real(xr.open_dataset(shared_data / "eobs_iberia_pr_djf_1982-2002.nc"), "pr")
    out = accumulate(raw, 72, "first").compute()
    days = raw["time"].values
    starts, ends = out["time_bnds"].values.T
    # every kept window is 3 consecutive days of one winter, all present in the record
    assert np.all(np.isin(starts + np.timedelta64(1, "D"), days) & np.isin(starts + np.timedelta64(2, "D"), days))
    months = {int(str(t)[5:7]) for t in np.concatenate([starts, ends - np.timedelta64(1, "D")])}
    assert months <= {12, 1, 2}
    assert out.attrs["n_windows_dropped"] > 0  # windows cut by the ends of winters
    # land from the NaN pattern: sea stays NaN in every total, land (328 cells) has data
    land = raw["precip"].notnull().any("time").values
    assert land.sum() == 328
    totals = out["precip"].values
    assert np.isnan(totals[:, ~land]).all()
    # conservation: each window total is the sum of its three days (NaN where any day is missing)
    values = raw["precip"].values.astype(np.float64)
    expected = np.stack([values[(days >= start) & (days < end)].sum(axis=0) for start, end in zip(starts, ends)])
    np.testing.assert_allclose(totals, expected, rtol=1e-6, atol=1e-4, equal_nan=True)
    assert np.isfinite(totals[:, land]).mean() > 0.99


def test_mhm_62_years_daily_count_and_conservation(shared_data):
    mhm = xr.open_dataset(shared_data / "mhm_pre_daily_1950-2011.nc")
    grid = mhm.drop_vars(["lat", "lon"]).rename({"yc": "lat", "xc": "lon"})
    grid = grid.assign_coords(lat=np.arange(grid.sizes["lat"], dtype=float),
                              lon=np.arange(grid.sizes["lon"], dtype=float))
    raw = from_real(grid, "pre")
    assert raw.sizes["time"] == 22645
    out = accumulate(raw, 72, "first").compute()
    assert out.sizes["time"] == 22645 // 3 == 7548
    assert out.attrs["n_windows_dropped"] == 1  # the last day alone
    full = raw["precip"].values[: 7548 * 3].astype(np.float64)
    np.testing.assert_allclose(out["precip"].values.astype(np.float64).sum(axis=0), full.sum(axis=0), rtol=1e-5)
    np.testing.assert_allclose(out["precip"].values[5], full[15:18].sum(axis=0), rtol=1e-6)


def test_accumulate_file_on_process_workers(tmp_path):
    """The blocks also run on a distributed LocalCluster (process workers), as with dask.cluster: local."""
    from precipmodes.steps import parallel

    rng = np.random.default_rng(2)
    ds = canonical(rng.random((72 * 6, 3, 4)), drop=np.r_[100:103])
    raw = write_netcdf(ds, tmp_path / "raw.nc")
    with parallel.dask_cluster({"cluster": "local"}, threads=2, mem_mb=2000):
        out = accumulate_files(input_path=raw, output_path=tmp_path / "totals.nc",
                               accumulation={"hours": 72, "anchor": "first", "min_completeness": 1.0}, block_mb=0.0002)
    got = open_netcdf(out)
    xr.testing.assert_allclose(got["precip"], accumulate(ds, 72, "first")["precip"].compute())
    assert got.sizes["time"] == 5 and got.attrs["n_windows_dropped"] == 1


def _reader_cases(tmp_path):
    """A raw file with gaps and a sea NaN column, written as the workflow writes it; a copy whose
    missing cells carry a numeric _FillValue (-9999) instead of NaN; and one of whole multiples of
    0.1 mm stored as E-OBS stores them (CF packing: int16, scale_factor 0.1)."""
    rng = np.random.default_rng(3)
    values = rng.gamma(0.3, 2.0, size=(72 * 10, 5, 6)).astype(np.float32)
    values[:, 0, :] = np.nan
    ds = canonical(values, drop=np.r_[300:310])
    nan_fill = write_netcdf(ds, tmp_path / "raw.nc")
    numeric = tmp_path / "raw_fill.nc"
    ds.to_netcdf(numeric, encoding={"precip": {"_FillValue": np.float32(-9999.0), "chunksizes": (16, 5, 6)}})
    tenths = ds.copy()
    tenths["precip"] = np.rint(ds["precip"] / np.float32(0.1)) * np.float32(0.1)
    packed = tmp_path / "raw_packed.nc"
    tenths.to_netcdf(packed, encoding={"precip": {"dtype": "int16", "scale_factor": np.float32(0.1),
                                                  "_FillValue": np.int16(-32767), "chunksizes": (16, 5, 6)}})
    return ds, [nan_fill, numeric, packed]


@pytest.mark.parametrize("min_completeness", [1.0, 0.8])
def test_reader_processes_give_the_in_process_totals(tmp_path, min_completeness):
    """Blocks read and summed in reader processes (complete windows streamed piece by piece; blocks
    with gaps and scaled incomplete windows whole) equal the totals summed in this process."""
    from precipmodes.io.readers import ReaderProcesses

    _, paths = _reader_cases(tmp_path)
    for path in paths:
        raw = open_netcdf(path)
        expected = accumulate(raw, 72, "first", min_completeness, block_mb=0.001).compute()
        assert expected.sizes["time"] == (9 if min_completeness == 1 else 10)
        with ReaderProcesses(path, 2, 2**20) as readers:
            got = accumulate(raw, 72, "first", min_completeness, block_mb=0.001, readers=readers).compute()
        xr.testing.assert_identical(got, expected)  # same values, order of additions and NaN pattern


def test_streamed_window_sums_add_in_the_reshape_sums_order():
    from precipmodes.io.blockreader import streamed_window_sums, window_sums

    rng = np.random.default_rng(4)
    block = rng.gamma(0.3, 5.0, size=(72 * 3, 7, 9)).astype(np.float32)
    whole = window_sums(block, np.arange(3) * 72, np.arange(3), None, 72)
    for piece in (1, 5, 72, 500):
        streamed = streamed_window_sums(lambda j0, j1: block[j0:j1], 0, 3, 72, piece)
        np.testing.assert_array_equal(streamed, whole)


def test_stored_precip_reads_the_same_after_reopening(tmp_path):
    """A reader reopens its file every REOPEN_STEPS steps (HDF5's per-chunk bookkeeping is freed only on
    close): the values read after a reopen are those xarray reads, NaN and unpacking included."""
    from precipmodes.io.blockreader import REOPEN_STEPS, _StoredPrecip

    _, paths = _reader_cases(tmp_path)
    for path in paths:
        expected = open_netcdf(path)["precip"].values
        precip = _StoredPrecip(str(path))
        first = precip.read(0, 100)
        handle = precip.nc
        precip.refresh()
        assert precip.nc is handle  # 100 steps read: not yet
        precip.steps_read = REOPEN_STEPS
        precip.refresh()
        assert precip.nc is not handle and not handle.isopen() and precip.steps_read == 0
        np.testing.assert_array_equal(first, expected[:100])
        np.testing.assert_array_equal(precip.read(100, 720), expected[100:720])
        precip.close()


def test_reader_process_that_dies_is_reported_with_the_file(tmp_path):
    from precipmodes.errors import PrecipModesError
    from precipmodes.io.readers import ReaderProcesses
    from precipmodes.steps.windowtotals import _Progress

    _, (path, *_) = _reader_cases(tmp_path)
    with ReaderProcesses(path, 1, 2**20) as readers:
        readers.readers[0].kill()
        readers.readers[0].wait()
        with pytest.raises(PrecipModesError, match=r"reader process of .*raw\.nc ended with status -9"):
            readers.window_sums(0, 72, np.array([0]), np.array([0]), None, 72, _Progress(1))


def test_accumulate_files_with_reader_processes(tmp_path, monkeypatch, caplog):
    """accumulate_files(processes=2) on a file above the size threshold reads in reader processes and
    writes the totals that one process writes."""
    from precipmodes.steps import accumulate as acc

    _, (path, *_) = _reader_cases(tmp_path)
    section = {"hours": 72, "anchor": "first", "min_completeness": 1.0}
    one = open_netcdf(accumulate_files(input_path=path, output_path=tmp_path / "one.nc", accumulation=section,
                                       processes=2, block_mb=0.001))  # below the threshold: in this process
    monkeypatch.setattr(acc, "READER_PROCESSES_MIN_MB", 0.0)
    assert "reader processes" not in caplog.text
    with caplog.at_level("INFO", logger="precipmodes"):
        two = open_netcdf(accumulate_files(input_path=path, output_path=tmp_path / "two.nc", accumulation=section,
                                           processes=2, block_mb=0.001))
    assert "in 2 reader processes" in caplog.text
    xr.testing.assert_identical(one["precip"], two["precip"])
