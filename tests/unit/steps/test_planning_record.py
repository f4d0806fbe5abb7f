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
from precipmodes.steps.partitions import read_planning_record


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
