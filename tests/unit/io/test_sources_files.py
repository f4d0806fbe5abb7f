"""Source `files` and the shared canonicalisation: real files from ../shared/data, synthetic edge cases."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from helpers.reliability import prepared_totals
from precipmodes.config import section_defaults, validate_config
from precipmodes.errors import ConfigError, InputDataError
from precipmodes.io.sources import check_canonical, raw_files
from precipmodes.io.sources.canonical import parse_units, standardise, time_bounds
from precipmodes.io.sources.files import open_files
from precipmodes.io.sources.index import open_steps

EOBS = "eobs_iberia_pr_djf_1982-2002.nc"
MHM = "mhm_pre_daily_1950-2011.nc"
STAGEIV = "stageiv_hourly_2018-09-13.nc"
STAGEIV_VAR = "Total_precipitation_surface_1_Hour_Accumulation"
GPCP = "gpcp_1dd_2025-01-01.nc"
IBERIA = {"lon": [-10.0, 5.0], "lat": [35.0, 45.0]}
JAPAN = {"lon": [128.0, 148.0], "lat": [30.0, 46.0]}


def files_source(path, variable, **extra):
    """Options of kind files, flat and complete (the schema's defaults for keys not in ``extra``): what
    open_files and raw_files take."""
    return {"kind": "files", **section_defaults("source.files", {"paths": [str(path)], "variable": variable, **extra})}


def nested(options):
    """The config's ``source`` section for flat ``options``: ``{kind: k, k: {...}}``."""
    kind = options["kind"]
    return {"kind": kind, kind: {k: v for k, v in options.items() if k != "kind"}}


def synthetic(values, units, hours=3, lon=(10.0, 11.0), lat=(40.0, 41.0)):
    """precip(time, lat, lon) with len(values) steps every ``hours`` h; values[i] fills map i."""
    time = pd.date_range("2001-01-01", periods=len(values), freq=f"{hours}h")
    data = np.broadcast_to(np.asarray(values, float)[:, None, None], (len(values), len(lat), len(lon)))
    return xr.DataArray(data.copy(), dims=("time", "lat", "lon"),
                        coords={"time": time, "lat": list(lat), "lon": list(lon)},
                        attrs={"units": units}, name="rain")


def assert_no_output(out_dir):
    assert not out_dir.exists() or sorted(p.name for p in out_dir.iterdir()) == []


# --- units and time steps ---------------------------------------------------------------------------

@pytest.mark.parametrize("units, value, expected", [
    ("mm", 2.5, 2.5),
    ("m", 0.0025, 2.5),
    ("kg m-2", 2.5, 2.5),
    ("kg m^-2", 2.5, 2.5),
    ("kg/m2", 2.5, 2.5),
    ("kg m-2 s-1", 1e-3, 10.8),          # 3-hour step = 10800 s
    ("kg m**-2 s**-1", 1e-3, 10.8),
    ("mm/h", 2.0, 6.0),
    ("mm/hr", 2.0, 6.0),
    ("mm h-1", 2.0, 6.0),
    ("mm/day", 8.0, 1.0),
    ("mm d-1", 8.0, 1.0),
    ("mm day-1", 8.0, 1.0),
    ("m/s", 1e-6, 10.8),
])
def test_unit_conversion_to_mm_per_step(units, value, expected):
    ds = standardise(synthetic([value, value], units), {"lon": [0, 20], "lat": [30, 50]})
    assert ds["precip"].attrs["units"] == "mm"
    np.testing.assert_allclose(ds["precip"].values, expected, rtol=1e-6)
    assert ds["precip"].dtype == np.float32


def test_parse_units_values():
    assert parse_units("mm/day") == (1.0, 86400.0)
    assert parse_units("kg m-2 s-1") == (1.0, 1.0)
    assert parse_units("m") == (1000.0, None)


@pytest.mark.parametrize("units", ["furlongs", "mm/3h", "K", "kg m-3"])
def test_unknown_units_say_to_set_source_units(units):
    with pytest.raises(InputDataError, match=r"unknown precipitation units.*source\.files\.units"):
        parse_units(units, "x.nc")


def test_missing_units_say_to_set_source_units():
    da = synthetic([1.0, 1.0], "mm")
    da.attrs = {}
    with pytest.raises(InputDataError, match=r"no units attribute; set source\.files\.units"):
        standardise(da, {"lon": [0, 20], "lat": [30, 50]}, origin="x.nc")
    ds = standardise(da, {"lon": [0, 20], "lat": [30, 50]}, units="mm/h")
    np.testing.assert_allclose(ds["precip"].values, 3.0)


def test_end_labelled_stamps_are_shifted_to_the_step_start():
    time = pd.date_range("2018-09-13T19:00", periods=3, freq="h").values
    bnds = time_bounds(time, time_label="end")
    assert str(bnds[0, 0])[:16] == "2018-09-13T18:00" and str(bnds[0, 1])[:16] == "2018-09-13T19:00"
    start = time_bounds(time, time_label="start")
    assert str(start[0, 0])[:16] == "2018-09-13T19:00"


def test_single_step_without_bounds_needs_step_hours():
    with pytest.raises(InputDataError, match=r"source\.files\.step_hours"):
        time_bounds(np.array(["2001-01-01"], "datetime64[ns]"), origin="one.nc")
    bnds = time_bounds(np.array(["2001-01-01"], "datetime64[ns]"), step_hours=24)
    assert bnds[0, 1] - bnds[0, 0] == np.timedelta64(24, "h")


def test_duplicate_and_unsorted_time_are_errors():
    t = np.array(["2001-01-01", "2001-01-02", "2001-01-02"], "datetime64[ns]")
    with pytest.raises(InputDataError, match="duplicate time stamp 2001-01-02"):
        time_bounds(t, origin="x.nc")
    with pytest.raises(InputDataError, match="not monotonic"):
        time_bounds(t[[1, 0]], origin="x.nc")


def test_small_negative_noise_clipped_larger_negative_refused():
    domain = {"lon": [0, 20], "lat": [30, 50]}
    ds = standardise(synthetic([-1e-6, 1.0], "mm"), domain)
    assert float(ds["precip"].min()) == 0.0
    with pytest.raises(InputDataError, match="negative precipitation.*-0.5"):
        standardise(synthetic([-0.5, 1.0], "mm"), domain, origin="neg.nc")


def test_longitudes_0_360_become_minus180_180_sorted():
    da = synthetic([1.0], "mm", lon=(0.0, 90.0, 180.0, 270.0, 350.0), lat=(10.0,))
    da[:, :, 4] = 7.0
    ds = standardise(da, {"lon": [-180, 180], "lat": [0, 20]}, step_hours=1)
    np.testing.assert_array_equal(ds["lon"].values, [-180.0, -90.0, -10.0, 0.0, 90.0])
    assert float(ds["precip"].sel(lon=-10.0)[0, 0]) == 7.0
    with pytest.raises(InputDataError, match=r"source\.files\.lon_convention is '-180..180'"):
        standardise(da, {"lon": [-180, 180], "lat": [0, 20]}, step_hours=1, lon_convention="-180..180")


def test_lat_order_descending_is_sorted_and_checked():
    da = synthetic([1.0, 2.0], "mm", lat=(41.0, 40.0))
    ds = standardise(da, {"lon": [0, 20], "lat": [30, 50]}, lat_order="descending")
    np.testing.assert_array_equal(ds["lat"].values, [40.0, 41.0])
    with pytest.raises(InputDataError, match=r"source\.files\.lat_order is 'ascending'"):
        standardise(da, {"lon": [0, 20], "lat": [30, 50]}, lat_order="ascending")


def test_schema_accepts_files_keys_and_rejects_a_typo():
    base = {"domain": JAPAN, "experiments": {"e": {"train": ["2001-01-01T00:00Z", "2002-01-01T00:00Z"],
                                                    "test": ["2002-01-01T00:00Z", "2003-01-01T00:00Z"]}}}
    config = validate_config({**base, "source": nested(files_source("x.nc", "pr", time_label="end", step_hours=1))})
    options = config["source"]["files"]
    assert options["regrid"] == "refuse" and options["chunks"] == {"time": 744} and options["step_hours"] == 1
    with pytest.raises(ConfigError, match=r"source\.files: unknown key\(s\) \['regird'\]"):
        validate_config({**base, "source": nested(files_source("x.nc", "pr", regird="nearest"))})


# --- real files ---------------------------------------------------------------------------------------

def test_eobs_iberia_keeps_nan_sea_daily_winters(shared_data, tmp_path):
    source = files_source(shared_data / EOBS, "pr", chunks={"time": 500})
    ds = open_files(source, IBERIA)
    check_canonical(ds)
    assert ds["precip"].chunks[0][0] == 500  # lazy, chunked as configured
    original = xr.open_dataset(shared_data / EOBS)["pr"]
    np.testing.assert_array_equal(ds["precip"].values, original.values)  # mm stays mm, NaN sea stays NaN
    land = int(np.isfinite(ds["precip"].isel(time=0).values).sum())
    assert land == 328
    assert (ds["time_bnds"][:, 1] - ds["time_bnds"][:, 0] == np.timedelta64(1, "D")).all()
    assert set(ds["time"].dt.month.values) == {12, 1, 2}
    out = raw_files(source=source, domain=IBERIA, output=tmp_path / "raw.nc")
    assert out.stat().st_size < 0.1 * (shared_data / EOBS).stat().st_size  # an index, not a copy
    index = xr.open_dataset(out)
    assert "precip" not in index and index.sizes["time"] == original.sizes["time"]
    np.testing.assert_array_equal(index["time_bnds"].values, ds["time_bnds"].values)
    read = open_steps(out)
    check_canonical(read)
    np.testing.assert_array_equal(read["precip"].values, original.values)
    part = open_steps(out, 100, 250)
    np.testing.assert_array_equal(part["time"].values, original["time"].values[100:250])
    np.testing.assert_array_equal(part["precip"].values, original.values[100:250])


def test_eobs_two_files_through_a_glob_equal_one(shared_data, tmp_path):
    original = xr.open_dataset(shared_data / EOBS)
    original.sel(time=slice(None, "1991-12-31")).to_netcdf(tmp_path / "eobs_a.nc")
    original.sel(time=slice("1992-01-01", None)).to_netcdf(tmp_path / "eobs_b.nc")
    ds = open_files(files_source(tmp_path / "eobs_*.nc", "pr"), IBERIA)
    np.testing.assert_array_equal(ds["time"].values, original["time"].values)
    np.testing.assert_array_equal(ds["precip"].values, original["pr"].values)
    with pytest.raises(InputDataError, match="eobs_a.nc and .*eobs_iberia.* overlap in time"):
        open_files({**files_source(tmp_path / "eobs_a.nc", "pr"),
                    "paths": [str(tmp_path / "eobs_a.nc"), str(shared_data / EOBS)]}, IBERIA)


def test_index_carries_its_files_history_once(shared_data, tmp_path):
    """raw's index of two E-OBS files keeps their history lines (shared ones once) and names the files by
    size and mtime in its provenance, without hashing them."""
    original = xr.open_dataset(shared_data / EOBS)
    for name, part, line in (("eobs_a.nc", slice(None, "1991-12-31"), "2001-01-01T00:00:00Z regridded (a)"),
                             ("eobs_b.nc", slice("1992-01-01", None), "2002-01-01T00:00:00Z regridded (b)")):
        piece = original.sel(time=part)
        piece.attrs["history"] = f"2000-01-01T00:00:00Z shared step\n{line}"
        piece.to_netcdf(tmp_path / name)
    source = files_source(tmp_path / "eobs_*.nc", "pr")
    index = raw_files(source=source, domain=IBERIA, output=tmp_path / "raw.nc")
    with xr.open_dataset(index) as raw:
        lines = raw.attrs["history"].splitlines()
        assert lines[:3] == ["2000-01-01T00:00:00Z shared step", "2001-01-01T00:00:00Z regridded (a)",
                             "2002-01-01T00:00:00Z regridded (b)"] and "raw: index of the files" in lines[3]
        size = (tmp_path / "eobs_a.nc").stat().st_size
        assert f"eobs_a.nc:stat:size={size},mtime_ns=" in raw.attrs["precipmodes_input_digests"]


def test_gpcp_0_360_longitudes_japan_subset(shared_data):
    ds = open_files(files_source(shared_data / GPCP, "precip"), JAPAN)
    check_canonical(ds)
    np.testing.assert_array_equal(ds["lon"].values, np.arange(128.0, 149.0))
    np.testing.assert_array_equal(ds["lat"].values, np.arange(30.0, 47.0))
    original = xr.open_dataset(shared_data / GPCP)["precip"]
    expected = original.sel(latitude=slice(30, 46), longitude=slice(128, 148)).values  # mm/day x 1 day
    np.testing.assert_allclose(ds["precip"].values, expected)
    assert ds["time_bnds"].values[0, 1] - ds["time_bnds"].values[0, 0] == np.timedelta64(1, "D")


def test_gpcp_domain_across_greenwich(shared_data):
    ds = open_files(files_source(shared_data / GPCP, "precip"), {"lon": [-10.0, 10.0], "lat": [35.0, 60.0]})
    np.testing.assert_array_equal(ds["lon"].values, np.arange(-10.0, 11.0))
    original = xr.open_dataset(shared_data / GPCP)["precip"]
    np.testing.assert_allclose(ds["precip"].sel(lon=-10.0).values,
                               original.sel(longitude=350.0, latitude=slice(35, 60)).values)


FIJI = {"lat": [-20.0, -15.0]}  # Fiji, across the 180° meridian


@pytest.mark.parametrize("lon", [[175.0, -175.0], [175.0, 185.0]])
def test_gpcp_domain_across_the_dateline(shared_data, tmp_path, lon):
    """A Pacific domain across 180° (given as [175, -175] or [175, 185]) from GPCP's 0..360 longitudes and from
    the same day rolled to -180..180: the 11 x 6 cells in one increasing run 175..185, the file's values."""
    original = xr.open_dataset(shared_data / GPCP)
    expected = original["precip"].sel(latitude=slice(-20, -15), longitude=slice(175, 185)).values  # mm/day x 1 day
    rolled = original.assign_coords(longitude=(original["longitude"] + 180) % 360 - 180).sortby("longitude")
    assert rolled["longitude"].values[0] == -180  # the domain's cells sit at both ends of this file
    rolled.to_netcdf(tmp_path / "gpcp_rolled.nc")
    for path in (shared_data / GPCP, tmp_path / "gpcp_rolled.nc"):
        ds = open_files(files_source(path, "precip"), {**FIJI, "lon": lon})
        check_canonical(ds)
        np.testing.assert_array_equal(ds["lon"].values, np.arange(175.0, 186.0))
        np.testing.assert_array_equal(ds["lat"].values, np.arange(-20.0, -14.0))
        np.testing.assert_allclose(ds["precip"].values, expected)


def test_gpcp_dateline_domain_through_the_workflow(shared_data, tmp_path):
    """GPCP's one day (accumulation.hours 24) over Fiji, domain.lon [175, -175], through snakemake to the land
    mask: raw, totals and land mask on lon 175..185; one land cell (Viti Levu); the map drawn centred on 180°."""
    import cartopy.crs as ccrs
    import yaml
    from helpers.workflow import run_snakemake

    from precipmodes.plots.base import FigureOptions, use_offline_coastlines
    from precipmodes.plots.maps import land_mask_figure

    config = {"results_dir": "results/fiji", "domain": {**FIJI, "lon": [175, -175], "resolution": None},
              "source": {"kind": "files", "files": {"paths": [str(shared_data / GPCP)], "variable": "precip"}},
              "accumulation": {"hours": 24},
              "experiments": {"main": {"train": ["2025-01-01T00:00Z", "2025-01-02T00:00Z"],
                                       "test": ["2025-01-02T00:00Z", "2025-01-03T00:00Z"], "n_modes": 1}}}
    (tmp_path / "fiji.yaml").write_text(yaml.safe_dump(config))
    run_snakemake(tmp_path, "results/fiji/prepared/land_mask.nc", "--cores", "1", "--configfile",
                  str(tmp_path / "fiji.yaml"), timeout=600)
    original = xr.open_dataset(shared_data / GPCP)["precip"].sel(latitude=slice(-20, -15), longitude=slice(175, 185))
    prepared = tmp_path / "results/fiji/prepared"
    with prepared_totals(prepared) as totals, xr.open_dataset(prepared / "land_mask.nc") as mask:
        for ds in (totals, mask):
            np.testing.assert_array_equal(ds["lon"].values, np.arange(175.0, 186.0))
            np.testing.assert_array_equal(ds["lat"].values, np.arange(-20.0, -14.0))
        np.testing.assert_allclose(totals["precip"].isel(time=0).values, original.isel(time=0).values, rtol=1e-6)
        land = mask["land"].load()
        assert mask.attrs["method"] == "global_land_mask" and int(land.sum()) == 1
        assert int(land.sel(lat=-18.0, lon=178.0)) == 1  # Viti Levu
        assert 0 < float(mask["land_fraction"].sel(lat=-16.0, lon=180.0)) < 0.5  # Vanua Levu's tip, across 180°
        use_offline_coastlines("110m")
        options = FigureOptions.from_config({"coastline_resolution": "110m", "dpi": 50, "max_panels": 1},
                                            config["domain"], "files")
        assert options.extent == (175.0, 185.0, -20.0, -15.0)
        ax = land_mask_figure(mask, options, 0.5).axes[0]
    assert ax.projection.proj4_params["pm"] == 180  # PlateCarree(central_longitude=180)
    np.testing.assert_allclose(ax.get_extent(), (-5, 5, -20, -15))
    np.testing.assert_allclose(ax.get_extent(crs=ccrs.PlateCarree())[2:], (-20, -15))


def _nearest_source(lat2d, lon2d, lat, lon):
    """Index of the source point nearest (great circle) to (lat, lon), brute force."""
    p1, p2, dl = np.radians(lat2d), np.radians(lat), np.radians(lon2d - lon)
    cos = np.sin(p1) * np.sin(p2) + np.cos(p1) * np.cos(p2) * np.cos(dl)
    return np.unravel_index(np.nanargmax(cos), lat2d.shape)


def test_mhm_curvilinear_refused_then_regridded(shared_data, tmp_path):
    domain = {"lon": [13.0, 15.5], "lat": [45.0, 47.0], "resolution": 0.05}
    source = files_source(shared_data / MHM, "pre")
    with pytest.raises(InputDataError, match=r"curvilinear grid.*cdo remapbil.*source\.files\.regrid: nearest"):
        raw_files(source=source, domain=domain, output=tmp_path / "out" / "raw.nc")
    assert_no_output(tmp_path / "out")
    with pytest.raises(InputDataError, match="domain.resolution"):
        open_files({**source, "regrid": "nearest"}, {**domain, "resolution": None})
    ds = open_files({**source, "regrid": "nearest"}, domain).load()
    check_canonical(ds)
    assert ds.sizes["time"] == 22645 and ds.sizes["lat"] == 40 and ds.sizes["lon"] == 50
    original = xr.open_dataset(shared_data / MHM)
    lat2d, lon2d = original["lat"].values, original["lon"].values
    series = ds["precip"].sel(lat=46.025, lon=14.325, method="nearest")
    iy, ix = _nearest_source(lat2d, lon2d, float(series["lat"]), float(series["lon"]))
    np.testing.assert_allclose(series.values, original["pre"].values[:, iy, ix].astype(np.float32))
    assert np.isnan(ds["precip"].sel(lat=45.025, lon=13.025, method="nearest")).all()  # outside the footprint
    inside = np.isfinite(ds["precip"].isel(time=0)).values
    assert 0.2 < inside.mean() < 0.6


def test_stageiv_end_labelled_kg_m2_hourly(shared_data, tmp_path):
    domain = {"lon": [-81.0, -74.0], "lat": [32.0, 38.0], "resolution": 0.04}
    source = files_source(shared_data / STAGEIV, STAGEIV_VAR)
    with pytest.raises(InputDataError, match="curvilinear grid"):
        open_files(source, domain)
    ds = open_files({**source, "regrid": "nearest"}, domain)
    check_canonical(ds)
    assert str(ds["time"].values[0])[:16] == "2018-09-13T18:00"   # stamp 19:00 marks the END of the hour
    assert (ds["time_bnds"][:, 1] - ds["time_bnds"][:, 0] == np.timedelta64(1, "h")).all()
    original = xr.open_dataset(shared_data / STAGEIV)
    cell = ds["precip"].sel(lat=34.5, lon=-77.9, method="nearest")
    iy, ix = _nearest_source(original["lat"].values, original["lon"].values, float(cell["lat"]),
                             float(cell["lon"]))
    np.testing.assert_allclose(cell.values, original[STAGEIV_VAR].values[:, iy, ix])
    assert float(ds["precip"].max()) <= float(original[STAGEIV_VAR].max())


# --- other formats --------------------------------------------------------------------------------------

def test_zarr_store_reads_like_netcdf(tmp_path):
    da = synthetic(np.arange(6.0), "mm/h", hours=1)
    da.to_dataset(name="tp").to_zarr(tmp_path / "rain.zarr")
    ds = open_files(files_source(tmp_path / "rain.zarr", "tp"), {"lon": [0, 20], "lat": [30, 50]})
    np.testing.assert_allclose(ds["precip"].values[:, 0, 0], np.arange(6.0))
    assert ds["precip"].chunks is not None


def test_grib_accumulation_valid_time_marks_the_end(tmp_path):
    eccodes = pytest.importorskip("eccodes")
    path = tmp_path / "tp.grib"
    with open(path, "wb") as handle:
        for hour in range(3):
            msg = eccodes.codes_grib_new_from_samples("regular_ll_sfc_grib1")
            for key, value in [("Ni", 4), ("Nj", 3), ("latitudeOfFirstGridPointInDegrees", 40.0),
                               ("latitudeOfLastGridPointInDegrees", 38.0),
                               ("longitudeOfFirstGridPointInDegrees", 0.0),
                               ("longitudeOfLastGridPointInDegrees", 3.0),
                               ("iDirectionIncrementInDegrees", 1.0), ("jDirectionIncrementInDegrees", 1.0),
                               ("dataDate", 20200101), ("dataTime", hour * 100), ("shortName", "tp"),
                               ("stepType", "accum"), ("startStep", 0), ("endStep", 1)]:
                eccodes.codes_set(msg, key, value)
            eccodes.codes_set_values(msg, np.full(12, 0.001 * (hour + 1)))
            eccodes.codes_write(msg, handle)
            eccodes.codes_release(msg)
    ds = open_files(files_source(path, "tp"), {"lon": [0, 3], "lat": [38, 40]})
    check_canonical(ds)
    assert str(ds["time"].values[0])[:16] == "2020-01-01T00:00"  # valid 01:00 = end of hour 00-01
    np.testing.assert_array_equal(ds["lat"].values, [38.0, 39.0, 40.0])
    np.testing.assert_allclose(ds["precip"].values[:, 1, 1], [1.0, 2.0, 3.0], rtol=1e-3)  # m -> mm
    assert not list(tmp_path.glob("*.idx"))  # no cfgrib index written beside the data


# --- bad input: clear errors, nothing written -----------------------------------------------------------

def _raw_fails(source, domain, tmp_path, match):
    out = tmp_path / "out"
    with pytest.raises(InputDataError, match=match):
        raw_files(source=source, domain=domain, output=out / "raw.nc")
    assert_no_output(out)


def test_missing_file_and_empty_glob(tmp_path):
    _raw_fails(files_source(tmp_path / "nope.nc", "pr"), IBERIA, tmp_path, r"nope.nc' matches no file")
    _raw_fails(files_source(tmp_path / "*.grib", "pr"), IBERIA, tmp_path, r"\*.grib' matches no file")


def test_unknown_variable_lists_available(shared_data, tmp_path):
    _raw_fails(files_source(shared_data / EOBS, "precip"), IBERIA, tmp_path,
               r"no variable 'precip' \(source\.files\.variable\); the file has: \['pr'\]")


def test_domain_outside_the_data(shared_data, tmp_path):
    _raw_fails(files_source(shared_data / EOBS, "pr"), JAPAN, tmp_path,
               r"domain outside the data: domain.lon=\[128.0, 148.0\].*lon -9.75..4.25, lat 35.25..44.25")


def test_truncated_and_garbage_netcdf(shared_data, tmp_path):
    cut = tmp_path / "cut.nc"
    cut.write_bytes((shared_data / EOBS).read_bytes()[:300_000])
    _raw_fails(files_source(cut, "pr"), IBERIA, tmp_path,
               r"cut\.nc: the file is truncated \(its HDF5 superblock's end-of-file address says 725748 bytes "
               r"but the file has 300000, 41\.3 % of it\)")
    junk = tmp_path / "junk.nc"
    junk.write_bytes(b"this is not netcdf" * 100)
    _raw_fails(files_source(junk, "pr"), IBERIA, tmp_path, "junk.nc: cannot be opened.*truncated or corrupt")


def _read_fails(source, domain, tmp_path, match):
    """The index is built (values are not read), reading the steps through it fails naming the file."""
    index = raw_files(source=source, domain=domain, output=tmp_path / "out" / "raw.nc")
    with pytest.raises(InputDataError, match=match):
        open_steps(index)


def test_negative_and_nan_only_files(tmp_path):
    neg = tmp_path / "neg.nc"
    synthetic([1.0, -2.0], "mm").to_dataset().to_netcdf(neg)
    _read_fails(files_source(neg, "rain"), {"lon": [0, 20], "lat": [30, 50]}, tmp_path,
                "neg.nc: negative precipitation")
    empty = tmp_path / "empty.nc"
    synthetic([np.nan, np.nan], "mm").to_dataset().to_netcdf(empty)
    _read_fails(files_source(empty, "rain"), {"lon": [0, 20], "lat": [30, 50]}, tmp_path,
                "empty.nc: the precipitation inside the domain is all NaN")


def test_index_refuses_vanished_and_changed_files(tmp_path):
    """A file that vanishes or changes between the index and a read is named; reading others still works."""
    for name, values in (("a.nc", [1.0, 2.0]), ("b.nc", [3.0, 4.0])):
        data = synthetic(values, "mm")
        if name == "b.nc":
            data = data.assign_coords(time=data["time"] + np.timedelta64(2, "D"))
        data.to_dataset().to_netcdf(tmp_path / name)
    domain = {"lon": [0, 20], "lat": [30, 50]}
    index = raw_files(source=files_source(tmp_path / "*.nc", "rain"), domain=domain, output=tmp_path / "raw.nc")
    np.testing.assert_array_equal(open_steps(index, 2, 4)["precip"].values[:, 0, 0], [3.0, 4.0])
    os.utime(tmp_path / "b.nc", ns=(1, 1))
    with pytest.raises(InputDataError, match=r"b.nc: changed since the index .*raw.nc was built"):
        open_steps(index, 1, 3)
    (tmp_path / "b.nc").unlink()
    with pytest.raises(InputDataError, match=r"b.nc: file not found \(it was there when the index"):
        open_steps(index, 2, 4)
    np.testing.assert_array_equal(open_steps(index, 0, 2)["precip"].values[:, 0, 0], [1.0, 2.0])


# --- the declared size of real files (precipmodes.io.sources.integrity) ---------------------------------------

@pytest.mark.parametrize("name", [EOBS, MHM, STAGEIV, GPCP])
def test_declared_size_of_real_files_is_their_size(shared_data, tmp_path, name):
    """Every real file, HDF5 or classic, and a classic copy of each with time as the record dimension, is
    exactly as long as its header
    declares; one byte less is refused as truncated."""
    from precipmodes.io.sources.integrity import check_complete, declared_size

    copy = tmp_path / "classic.nc"
    with xr.open_dataset(shared_data / name, decode_times=False) as ds:
        ds.to_netcdf(copy, format="NETCDF3_64BIT", unlimited_dims=["time"])  # time: the record dimension
    for path in (shared_data / name, copy):
        assert declared_size(path)[0] == path.stat().st_size
        cut = tmp_path / "cut.nc"
        cut.write_bytes(path.read_bytes()[:-1])
        with pytest.raises(InputDataError, match=r"cut\.nc: the file is truncated"):
            check_complete(cut)


@pytest.mark.parametrize("processes", [1, 2])
def test_types_checked_side_by_side_name_the_file_in_either_run(tmp_path, processes):
    """40 files are checked in 2 child processes when 2 are allowed (20 each, at least FILES_PER_PROBE): a
    float16 file (netCDF-C misreads its type) among the second child's files is named as with one child."""
    from helpers.hdf5_float16 import float16_file
    from helpers.reliability import precip_file
    from precipmodes.io.sources.integrity import FILES_PER_PROBE, check_types

    paths = [(float16_file if k == 33 else precip_file)(tmp_path / f"{k:02d}.nc", days=2) for k in range(40)]
    assert 40 // FILES_PER_PROBE >= 2
    with pytest.raises(InputDataError, match=r"33\.nc: variable 'precip', the precipitation variable "
                                             r"\(source\.files\.variable\), is of type a variable-length type"):
        check_types(paths, "precip", processes=processes)
    check_types(paths[:33], "precip", processes=processes)


def test_work_meanwhile_runs_while_the_children_probe_and_a_failure_waits_for_them(tmp_path, monkeypatch):
    """check_types calls ``meanwhile`` once, after starting its children and before reading their answers; when
    it raises, every child is still waited for (none left running) and the error is the caller's."""
    import subprocess

    from helpers.reliability import precip_file
    from precipmodes.io.sources import integrity

    paths = [precip_file(tmp_path / f"{k:02d}.nc", days=2) for k in range(2)]
    started, calls = [], []
    real_popen = subprocess.Popen

    def popen(*args, **kwargs):
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(integrity.subprocess, "Popen", popen)

    def meanwhile():
        calls.append([child.returncode for child in started])  # started, not yet waited for
        raise RuntimeError("meanwhile failed")

    with pytest.raises(RuntimeError, match="meanwhile failed"):
        integrity.check_types(paths, "precip", meanwhile=meanwhile)
    assert calls == [[None]] and all(child.returncode == 0 for child in started)
    integrity.check_types(paths, "precip", meanwhile=lambda: calls.append("again"))
    assert calls[-1] == "again"
