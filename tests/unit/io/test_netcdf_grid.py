"""NetCDF writing (CF attributes, provenance, atomicity) and land-cell stacking."""

import json
import os

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from precipmodes.errors import InputDataError
from precipmodes.grid import stack_land, unstack_cells
from precipmodes.io.encoding import COMPLEVEL, chunk_row_bytes
from precipmodes.io.netcdf import chunk_cache, open_netcdf, sha256_file, write_netcdf


def small_dataset():
    time = pd.date_range("2006-01-01", periods=4, freq="6h")
    lat = np.array([30.0, 30.5, 31.0])
    lon = np.array([130.0, 130.5])
    precip = np.arange(24, dtype=np.float32).reshape(4, 3, 2)
    ds = xr.Dataset(
        {"precip": (("time", "lat", "lon"), precip, {"units": "mm"})},
        coords={"time": time, "lat": ("lat", lat, {"units": "degrees_north"}),
                "lon": ("lon", lon, {"units": "degrees_east"})},
    )
    return ds


def test_write_netcdf_sets_cf_provenance_and_encoding(tmp_path):
    source_file = tmp_path / "input.bin"
    source_file.write_bytes(b"abc")
    path = write_netcdf(small_dataset(), tmp_path / "out.nc", title="T", step="unit test",
                        config={"a": 1}, inputs=[source_file])
    with netCDF4.Dataset(path) as nc:
        assert nc.Conventions == "CF-1.8"
        assert nc.title == "T"
        assert nc.history.endswith("unit test")
        assert f"input.bin:sha256:{sha256_file(source_file)}" == nc.precipmodes_input_digests
        assert nc["time"].dtype == np.float64
        assert nc["time"].units.startswith("hours since 1970-01-01")
        assert "_FillValue" not in nc["lat"].ncattrs()
        filters = nc["precip"].filters()
        assert filters["zlib"] and filters["shuffle"] and filters["complevel"] == COMPLEVEL
    sidecar = json.loads((tmp_path / "out.nc.json").read_text())
    assert sidecar["config"] == {"a": 1}
    assert sidecar["inputs"][str(source_file)] == sha256_file(source_file)
    back = open_netcdf(path)
    xr.testing.assert_equal(back["precip"], small_dataset()["precip"])
    assert list(tmp_path.glob(".*tmp*")) == []


def test_inputs_by_stat_are_named_by_size_and_mtime_not_hashed(tmp_path):
    """The source files an index reads in place are identified as the index identifies them (size, mtime):
    hashing them would read the whole record once more. Nor are they reopened for their history (the index
    carries it in its own)."""
    source = write_netcdf(small_dataset(), tmp_path / "source.nc", step="made by the provider")
    os.utime(source, ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))
    path = write_netcdf(small_dataset(), tmp_path / "index.nc", step="index", inputs_by_stat=[source])
    stamp = f"stat:size={source.stat().st_size},mtime_ns=1700000000123456789"
    with netCDF4.Dataset(path) as nc:
        assert nc.precipmodes_input_digests == f"source.nc:{stamp}"
        assert "made by the provider" not in nc.history and nc.history.endswith("index")
    assert json.loads((tmp_path / "index.nc.json").read_text())["inputs"] == {str(source): stamp}


def test_history_accumulates(tmp_path):
    first = write_netcdf(small_dataset(), tmp_path / "a.nc", step="step one")
    second = write_netcdf(open_netcdf(first).load(), tmp_path / "b.nc", step="step two")
    lines = open_netcdf(second).attrs["history"].splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == ["step one", "step two"]


def test_failed_write_leaves_nothing_and_keeps_previous_file(tmp_path):
    path = write_netcdf(small_dataset(), tmp_path / "out.nc")
    before = sha256_file(path)
    bad = small_dataset().assign(objects=("time", np.array([object(), 1, "x", None], dtype=object)))
    with pytest.raises(Exception):
        write_netcdf(bad, path)
    assert sha256_file(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nc", "out.nc.json"]


def test_open_netcdf_errors_name_the_file(tmp_path):
    with pytest.raises(InputDataError, match="missing.nc: file not found"):
        open_netcdf(tmp_path / "missing.nc")
    path = write_netcdf(small_dataset(), tmp_path / "cut.nc")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(InputDataError, match="cut.nc: not a readable NetCDF file"):
        open_netcdf(path).load()


def test_stack_and_unstack_land_cells_round_trip():
    ds = small_dataset()
    land = xr.DataArray([[True, False], [False, True], [True, True]], dims=("lat", "lon"),
                        coords={"lat": ds.lat, "lon": ds.lon})
    stacked = stack_land(ds["precip"], land)
    assert stacked.dims == ("time", "cell")
    assert stacked["lat"].values.tolist() == [30.0, 30.5, 31.0, 31.0]
    assert stacked["lon"].values.tolist() == [130.0, 130.5, 130.0, 130.5]
    assert stacked.isel(time=1).values.tolist() == [6.0, 9.0, 10.0, 11.0]
    grid = unstack_cells(stacked, ds["lat"], ds["lon"])
    assert grid.dims == ("time", "lat", "lon")
    expected = ds["precip"].where(land)
    np.testing.assert_array_equal(grid.values, expected.values)
    assert grid["time"].equals(ds["time"])


def test_stack_land_refuses_a_different_grid():
    ds = small_dataset()
    land = xr.DataArray(np.ones((3, 2), bool), dims=("lat", "lon"),
                        coords={"lat": ds.lat + 0.25, "lon": ds.lon})
    with pytest.raises(ValueError, match="different lat/lon grids"):
        stack_land(ds["precip"], land)


def test_demo_outputs_are_labelled_synthetic(tmp_path):
    path = write_netcdf(small_dataset(), tmp_path / "x.nc", title="Totals", config={"source": {"kind": "demo"}})
    attrs = open_netcdf(path).attrs
    assert attrs["title"] == "Totals (SYNTHETIC demo data)"
    assert attrs["source"].startswith("SYNTHETIC demo data")
    other = write_netcdf(small_dataset(), tmp_path / "y.nc", title="Totals", config={"source": {"kind": "files"}})
    assert open_netcdf(other).attrs["source"] == "precipmodes workflow from source.kind=files"


def test_disk_full_gives_a_clear_error_and_leaves_nothing(tmp_path):
    import subprocess

    from helpers.workflow import require

    from precipmodes.errors import OutputError

    small_disk = tmp_path / "small"
    small_disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small_disk)],
                             capture_output=True).returncode == 0
    require(mounted, "mounting a small tmpfs needs root")
    try:
        big = xr.Dataset({"precip": (("time", "lat", "lon"),
                                     np.random.default_rng(0).random((50, 64, 64), dtype=np.float32))},
                         coords={"time": pd.date_range("2006-01-01", periods=50, freq="h"),
                                 "lat": np.arange(64.0), "lon": np.arange(64.0)})
        with pytest.raises(OutputError, match=r"out.nc: no space left on the device"):
            write_netcdf(big, small_disk / "out.nc")
        assert list(small_disk.iterdir()) == []
    finally:
        subprocess.run(["umount", "--lazy", str(small_disk)], check=True)


def test_history_carries_the_chain_of_the_inputs(tmp_path):
    """A file made from several inputs carries their history (each line once, oldest first) before its own step."""
    source = write_netcdf(small_dataset(), tmp_path / "raw.nc", step="raw: source")
    left = write_netcdf(small_dataset(), tmp_path / "left.nc", step="left: from raw", inputs=[source])
    right = write_netcdf(small_dataset(), tmp_path / "right.nc", step="right: from raw", inputs=[source])
    both = write_netcdf(small_dataset(), tmp_path / "both.nc", step="both", inputs=[left, right, tmp_path / "x.json"])
    steps = [line.split(": ", 1)[1] for line in open_netcdf(both).attrs["history"].splitlines()]
    assert steps == ["raw: source", "left: from raw", "right: from raw", "both"]


def test_chunk_row_bytes_and_chunk_cache_restores_the_default():
    assert chunk_row_bytes((121, 320, 400), (32, 64, 64), 4) == 32 * 320 * 400 * 4
    assert chunk_row_bytes((10, 3, 5), None, 8) == 10 * 3 * 5 * 8
    import netCDF4

    before = netCDF4.get_chunk_cache()
    with pytest.raises(ZeroDivisionError):
        with chunk_cache(3 * 2**20):
            assert netCDF4.get_chunk_cache() == (3 * 2**20, *before[1:])
            1 / 0
    assert netCDF4.get_chunk_cache() == before
