"""The CF checker (compliance-checker, in a subprocess) and datasets shaped as the workflow's NetCDF contract."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
import numpy as np
import pandas as pd
import xarray as xr


# The checker runs in its own process: loaded into the test process beside the HDF5 of netCDF4/h5py and
# dask's threads it aborted the interpreter at exit ("double free or corruption") in some test orders.
CHECKER = ("import sys; from compliance_checker.runner import CheckSuite, ComplianceChecker; "
           "CheckSuite.load_all_available_checkers(); "
           "ComplianceChecker.run_checker(sys.argv[1], ['cf:1.8'], 0, 'normal', output_filename=sys.argv[2], "
           "output_format='json')")


LEVELS = ("high_priorities", "medium_priorities", "low_priorities")


def cf_failures(path, levels=("high_priorities",)) -> list[str]:
    """Failed cf:1.8 checks of ``path`` at the given priority levels, as readable lines."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        done = subprocess.run([sys.executable, "-c", CHECKER, str(path), str(out)], capture_output=True,
                              text=True, timeout=600)
        assert out.is_file(), f"compliance-checker wrote no report for {path}:\n{done.stderr[-3000:]}"
        report = json.loads(out.read_text())["cf:1.8"]
    return [f"{path.name}: {level.split('_')[0]}: {check['name']}: {check['msgs']}"
            for level in levels for check in report[level] if check["value"][0] < check["value"][1]]


def contract_datasets(n_time: int = 6) -> dict[str, xr.Dataset]:
    """Small datasets shaped like the contract files (names as in results/), with producer-style attrs."""
    rng = np.random.default_rng(0)
    lat = xr.DataArray([30.0, 31.0, 32.0], dims="lat", attrs={"units": "degrees_north"})
    lon = xr.DataArray([130.0, 131.0], dims="lon", attrs={"units": "degrees_east"})
    start = pd.date_range("2006-01-01T15:00", periods=n_time, freq="72h")
    bounds = np.stack([start.values, (start + pd.Timedelta("72h")).values], axis=1)
    precip_attrs = {"units": "mm", "standard_name": "lwe_thickness_of_precipitation_amount",
                    "cell_methods": "time: sum (interval: 72 hours)"}
    land = np.array([[1, 0], [1, 1], [0, 1]], dtype="int8")
    cells = dict(cell=np.arange(4, dtype=np.int32), lat=("cell", [30.0, 31.0, 31.0, 32.0]),
                 lon=("cell", [130.0, 130.0, 131.0, 131.0]), time=start)
    mode = np.arange(1, 4, dtype=np.int64)  # int64 on purpose: write_netcdf must store int32
    series = {"time_bnds": (("time", "nv"), bounds)}
    return {
        "totals.nc": xr.Dataset(
            {"precip": (("time", "lat", "lon"), rng.random((n_time, 3, 2), dtype=np.float32), precip_attrs),
             "completeness": ("time", np.ones(n_time), {"units": "1"}), **series},
            coords={"time": start, "lat": lat, "lon": lon}, attrs={"n_windows_dropped": 0}),
        "land_mask.nc": xr.Dataset(
            {"land_fraction": (("lat", "lon"), rng.random((3, 2)), {"units": "1"}),
             "land": (("lat", "lon"), land, {"flag_values": np.array([0, 1], dtype="int8"),
                                             "flag_meanings": "sea land"})},
            coords={"lat": lat, "lon": lon}, attrs={"method": "global_land_mask"}),
        "selection.nc": xr.Dataset(
            {"wet_area_fraction": ("time", rng.random(n_time), {"units": "1"}),
             "kept": ("time", np.array([1, 0] * (n_time // 2), dtype="int8")), **series},
            coords={"time": start}),
        "train.nc": xr.Dataset(
            {"precip": (("cell", "time"), rng.random((4, n_time), dtype=np.float32), precip_attrs), **series},
            coords=cells),
        "svd.nc": xr.Dataset(
            {"spatial_modes": (("mode", "lat", "lon"), rng.random((3, 3, 2)), {"units": "1"}),
             "singular_values": ("mode", rng.random(3), {"units": "mm"}),
             "temporal_coefficients": (("mode", "time"), rng.random((3, n_time)), {"units": "mm"}),
             "separated": ("mode", np.array([True, False, True]))},
            coords={"mode": mode, "lat": lat, "lon": lon, "time": start}),
        "nmf.nc": xr.Dataset(
            {"basis": (("component", "lat", "lon"), rng.random((3, 3, 2)), {"units": "1"}),
             "activations": (("component", "time"), rng.random((3, n_time)), {"units": "mm"}),
             "reconstruction_error": ((), 1.5, {"units": "mm"})},
            coords={"component": mode, "lat": lat, "lon": lon, "time": start},
            attrs={"solver": "hals", "n_iter": 10, "seed": 0}),
        "demo_truth.nc": xr.Dataset(
            {"patterns": (("pattern", "lat", "lon"), rng.random((2, 3, 2)), {"units": "1"}),
             "pattern_name": ("pattern", np.array(["baiu", "typhoon"], dtype=object)),
             "seasonal_cycle": (("pattern", "month"), rng.random((2, 12)), {"units": "1"})},
            coords={"pattern": np.arange(2), "month": np.arange(1, 13), "lat": lat, "lon": lon}),
    }
