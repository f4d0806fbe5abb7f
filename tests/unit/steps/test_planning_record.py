"""The record the workflow's DAG is planned from (precipmodes.steps.partitions.read_planning_record), read by
netCDF4 alone in Snakemake's process: the same time stamps and bounds as xarray decodes from the files the
workflow writes."""

from __future__ import annotations

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from precipmodes.errors import InputDataError
from precipmodes.io.netcdf import write_netcdf
from precipmodes.steps.partitions import partition_threads, read_planning_record


@pytest.mark.parametrize("start, step, steps", [
    ("1981-03-01", "1h", 24 * 365 * 30),  # 30 years hourly
    ("2006-01-01T00:30", "30min", 1000),
    ("2006-01-01", "20min", 999),  # steps of a third of an hour: not whole in the file's unit (float hours)
    ("1950-01-01", "1D", 400),  # before the epoch
    ("2039-12-31T21:00", "3h", 5),
])
def test_the_record_read_without_xarray_is_what_xarray_decodes(tmp_path, start, step, steps):
    time = pd.date_range(start, periods=steps, freq=step)
    ds = xr.Dataset(coords={"time": time, "lat": [0.0, 1.0], "lon": [0.0, 1.0, 2.0]})
    ds["time_bnds"] = (("time", "nv"), np.stack([time, time + pd.Timedelta(step)], axis=1))
    ds["time"].attrs["bounds"] = "time_bnds"
    path = write_netcdf(ds, tmp_path / "raw.nc")
    record = read_planning_record(path)
    with xr.open_dataset(path) as back:
        np.testing.assert_array_equal(record.time, back["time"].values)
        np.testing.assert_array_equal(record.bounds, back["time_bnds"].values)
    assert record.cells == 6 and record.step_file is None


@pytest.mark.parametrize("units, calendar", [("months since 2000-01-01", "standard"),
                                             ("hours since 2000-01-01", "noleap"),
                                             ("hours since the start", "standard")])
def test_a_time_axis_the_workflow_does_not_write_is_refused_naming_the_file(tmp_path, units, calendar):
    path = tmp_path / "raw.nc"
    with netCDF4.Dataset(path, "w") as nc:
        for name, size in (("time", 3), ("lat", 1), ("lon", 1)):
            nc.createDimension(name, size)
        time = nc.createVariable("time", "f8", ("time",))
        time.units, time.calendar = units, calendar
        time[:] = [0, 1, 2]
    with pytest.raises(InputDataError, match=r"raw\.nc: time (is in|cannot be read as time stamps)"):
        read_planning_record(path)


@pytest.mark.parametrize(("count", "threads", "cores", "expected"), [
    (3, 1, 2, [1, 1, 2]),  # the third would run alone on one of two cores
    (4, 1, 2, [1, 1, 1, 1]),  # two full rounds
    (5, 1, 4, [1, 1, 1, 1, 4]),
    (6, 1, 4, [1, 1, 1, 1, 2, 2]),
    (7, 1, 4, [1] * 7),  # 3 left for 4 cores: one each
    (3, 2, 4, [2, 2, 4]),
    (3, 1, 8, [2, 2, 2]),  # one round, 8 cores for 3
    (1, 1, 2, [2]),
    (3, 1, 1, [1, 1, 1]),
    (3, 4, 2, [4, 4, 4]),  # more threads than cores: Snakemake scales them down
    (3, 1, None, [1, 1, 1]),  # a cluster: each job as configured
])
def test_partition_threads_fill_the_last_round(count, threads, cores, expected):
    given = [partition_threads(position, count, threads, cores) for position in range(count)]
    assert given == expected
    if cores is not None and threads <= cores:  # never more cores in a round than there are
        side_by_side = cores // threads
        for start in range(0, count, side_by_side):
            assert sum(given[start:start + side_by_side]) <= max(cores, threads)
