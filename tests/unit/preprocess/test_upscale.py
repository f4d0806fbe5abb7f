"""Upscaling: NaN-aware block means (precipmodes.preprocess.upscale) and the rule wiring (landmask.smk)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
import yaml
from helpers.workflow import run_snakemake

from precipmodes.errors import ConfigError
from precipmodes.io.netcdf import write_netcdf
from precipmodes.io.sources.index import open_steps
from precipmodes.preprocess.upscale import block_means
from precipmodes.steps.upscale import upscale_files


def fine_dataset():
    """2 steps on a 4 lat x 6 lon grid of 1-degree cells (lat 0.5..3.5, lon 10.5..15.5)."""
    values = np.arange(2 * 4 * 6, dtype=np.float32).reshape(2, 4, 6)
    values[0, 0, 0] = np.nan  # one missing cell in block (lat 0-1, lon 0-2) at step 0
    values[:, 2:4, 3:6] = np.nan  # block (lat 2-3, lon 3-5) missing at every step: sea
    time = np.array(["2006-01-01T00", "2006-01-01T06"], dtype="datetime64[ns]")
    precip = xr.DataArray(values, dims=("time", "lat", "lon"),
                          coords={"time": time, "lat": np.arange(4) + 0.5, "lon": np.arange(6) + 10.5},
                          attrs={"units": "mm", "standard_name": "lwe_thickness_of_precipitation_amount",
                                 "cell_methods": "time: sum"})
    bnds = xr.DataArray(np.stack([time, time + np.timedelta64(6, "h")], axis=1), dims=("time", "nv"))
    return xr.Dataset({"precip": precip, "time_bnds": bnds}, attrs={"title": "fine"})


def test_block_means_by_hand():
    out = block_means(fine_dataset(), [3, 2])  # 3 lon x 2 lat cells per block
    assert out["precip"].dims == ("time", "lat", "lon") and out["precip"].dtype == np.float32
    np.testing.assert_allclose(out["lat"], [1.0, 3.0])
    np.testing.assert_allclose(out["lon"], [11.5, 14.5])
    # step 0, values v[t, y, x] = 24 t + 6 y + x
    expected0 = [[np.mean([1, 2, 6, 7, 8]), np.mean([3, 4, 5, 9, 10, 11])],  # NaN cell skipped
                 [np.mean([12, 13, 14, 18, 19, 20]), np.nan]]  # all-NaN block stays NaN
    expected1 = [[np.mean([24, 25, 26, 30, 31, 32]), np.mean([27, 28, 29, 33, 34, 35])],
                 [np.mean([36, 37, 38, 42, 43, 44]), np.nan]]
    np.testing.assert_allclose(out["precip"].values, [expected0, expected1], rtol=1e-6)
    np.testing.assert_array_equal(out["time_bnds"].values, fine_dataset()["time_bnds"].values)
    assert out["precip"].attrs["cell_methods"].startswith("time: sum area: mean")
    assert out["precip"].attrs["units"] == "mm"


def test_factor_that_does_not_divide_the_grid_says_which_would():
    with pytest.raises(ConfigError, match=r"upscale.factor \[4, 3\].*6 lon x 4 lat.*lon \[1, 2, 3, 6\].*lat \[1, 2, 4\]"):
        block_means(fine_dataset(), [4, 3])


def test_upscale_files_streams_the_file(tmp_path, monkeypatch):
    import precipmodes.preprocess.landmask as module

    monkeypatch.setattr(module, "CHUNK_VALUES", 24)  # one time step per dask chunk
    write_netcdf(fine_dataset(), tmp_path / "raw.nc")
    out = upscale_files(raw=tmp_path / "raw.nc", output=tmp_path / "upscaled.nc",
                        upscale={"enabled": True, "factor": [3, 2]})
    with xr.open_dataset(out) as ds:
        np.testing.assert_allclose(ds["precip"].values, block_means(fine_dataset(), [3, 2])["precip"].values)
        assert "upscale" in ds.attrs["history"]
        np.testing.assert_array_equal(ds.attrs["upscale_factor_lon_lat"], [3, 2])


def test_enabling_upscale_inserts_the_rule_before_the_mask(tmp_path, repo):
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    config["upscale"] = {"enabled": True, "factor": [2, 2]}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(tmp_path, "results/prepared/land_mask.nc", "results/prepared/selection.nc", "-n",
                           "--configfile", str(tmp_path / "config.yaml"))
    jobs = (result.stdout + result.stderr).split("Job stats")[1].split("total")[0]
    counts = {line.split()[0]: int(line.split()[1]) for line in jobs.splitlines()[3:] if line.strip()}
    assert counts == {"raw": 1, "upscale": 1, "land_mask": 1, "threshold": 1}
    default = run_snakemake(tmp_path, "results/prepared/land_mask.nc", "-n")  # upscale is off by default
    assert "upscale" not in (default.stdout + default.stderr).split("Job stats")[1]


@pytest.mark.workflow
def test_workflow_upscales_the_seed_grid_and_masks_the_coarse_grid(tmp_path, repo):
    """Demo on the seed's 320 x 320 grid for one week, upscale 4 x 4 to 80 x 80, then land_mask on it."""
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    config["source"]["demo"].update(start="2006-01-01T00:00+09:00", end="2006-01-08T00:00+09:00")
    config["domain"]["resolution"] = None  # the demo's default: the seed's 0.0625 x 0.05 grid
    config["upscale"] = {"enabled": True, "factor": [4, 4]}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    run_snakemake(tmp_path, "results/prepared/land_mask.nc", "--cores", "2", "--configfile",
                  str(tmp_path / "config.yaml"), offline=True)
    prepared = tmp_path / "results" / "prepared"
    with xr.open_dataset(prepared / "raw.nc") as raw, xr.open_dataset(prepared / "upscaled.nc") as up, \
            xr.open_dataset(prepared / "land_mask.nc") as mask:
        assert raw.sizes["lat"] == raw.sizes["lon"] == 320 and up.sizes["lat"] == up.sizes["lon"] == 80
        with np.errstate(invalid="ignore"), warnings.catch_warnings():  # blocks that are all NaN (demo gaps)
            warnings.simplefilter("ignore", RuntimeWarning)
            field = open_steps(prepared / "raw.nc")["precip"].values  # the demo generated through its index
            expected = np.nanmean(field.reshape(28, 80, 4, 80, 4), axis=(2, 4))  # valid cells
        np.testing.assert_allclose(up["precip"].values, expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(up["lat"], np.arange(80) * 0.2 + 30.1)
        np.testing.assert_array_equal(mask["lat"].values, up["lat"].values)
        assert mask.attrs["method"] == "global_land_mask" and 1300 < int(mask["land"].sum()) < 1600
        assert "SYNTHETIC" in up.attrs["title"]
