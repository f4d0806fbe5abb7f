"""Land mask: global-land-mask fractions, the data's NaN pattern, user files, auto (precipmodes.preprocess.landmask)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from helpers.reliability import prepared_totals
from helpers.workflow import run_snakemake

from precipmodes.config import section_defaults
from precipmodes.errors import ConfigError, InputDataError
from precipmodes.io.netcdf import write_netcdf
from precipmodes.io.globe import globe_land_fraction
from precipmodes.preprocess.landmask import cell_edges, data_nan_fraction, seed_mask_grid
from precipmodes.steps.landmask import AUTO_MAX_SEA_SHARE, land_fraction_for, land_mask_files


def grid(west=128.0, east=148.0, south=30.0, north=46.0, dlon=0.25, dlat=0.25):
    lon = np.arange(west + dlon / 2, east, dlon)
    lat = np.arange(south + dlat / 2, north, dlat)
    return xr.DataArray(lat, dims="lat", coords={"lat": lat}), xr.DataArray(lon, dims="lon", coords={"lon": lon})


def canonical(values, lat, lon):
    """A minimal canonical dataset around ``values(time, lat, lon)``."""
    time = np.arange(np.datetime64("2006-01-01T00", "ns"), np.datetime64("2006-01-01T00", "ns")
                     + np.timedelta64(6 * values.shape[0], "h"), np.timedelta64(6, "h"))
    precip = xr.DataArray(values.astype(np.float32), dims=("time", "lat", "lon"),
                          coords={"time": time, "lat": lat, "lon": lon},
                          attrs={"units": "mm", "standard_name": "lwe_thickness_of_precipitation_amount",
                                 "cell_methods": "time: sum"})
    bnds = xr.DataArray(np.stack([time, time + np.timedelta64(6, "h")], axis=1), dims=("time", "nv"))
    return xr.Dataset({"precip": precip, "time_bnds": bnds})


def globe_exact_fraction(lat, lon, step):
    """Exact GLOBE land fraction of each cell: the share of the 1/120 deg GLOBE points inside it."""
    from global_land_mask import globe

    rows = np.nonzero((globe._lat >= lat[0] - step / 2) & (globe._lat < lat[-1] + step / 2))[0]
    cols = np.nonzero((globe._lon >= lon[0] - step / 2) & (globe._lon < lon[-1] + step / 2))[0]
    land = ~globe._mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]  # _mask is True over water
    per = int(round(step * 120))
    fraction = land.reshape(lat.size, per, lon.size, per).mean(axis=(1, 3))
    return fraction[::-1] if globe._lat[1] < globe._lat[0] else fraction  # GLOBE rows run north to south


def test_cell_edges():
    np.testing.assert_allclose(cell_edges(np.array([0.5, 1.5, 2.5])), [0, 1, 2, 3])


def test_global_land_mask_on_a_quarter_degree_japan_grid():
    lat, lon = grid()
    fraction = globe_land_fraction(lat, lon, subsamples=6)
    assert fraction.dims == ("lat", "lon") and fraction.shape == (64, 80)
    assert fraction.sel(lat=35.68, lon=139.77, method="nearest") >= 0.5  # Tokyo (the cell holds part of the bay)
    assert fraction.sel(lat=35.66, lon=139.33, method="nearest") == 1  # Hachioji, western Tokyo
    assert fraction.sel(lat=43.77, lon=142.37, method="nearest") == 1  # Asahikawa, Hokkaido
    assert fraction.sel(lat=32.0, lon=145.0, method="nearest") == 0  # Pacific
    assert fraction.sel(lat=40.0, lon=135.0, method="nearest") == 0  # Sea of Japan
    exact = globe_exact_fraction(lat.values, lon.values, 0.25)
    assert abs(float(fraction.mean()) - exact.mean()) < 0.003
    assert np.abs(fraction.values - exact).mean() < 0.01  # measured 0.003
    assert 0.15 < exact.mean() < 0.35  # Japan, Korea and the Russian coast cover a fifth of the box


def test_data_nan_on_real_eobs(shared_data, tmp_path):
    with xr.open_dataset(shared_data / "eobs_iberia_pr_djf_1982-2002.nc") as eobs:
        pr = eobs["pr"].load()
    fraction = data_nan_fraction(pr, steps=100)
    assert int(fraction.sum()) == 328
    assert set(np.unique(fraction.values)) == {0.0, 1.0}
    # the same through the rule's function, from a canonical file streamed in chunks; auto picks data_nan
    path = tmp_path / "raw.nc"
    write_netcdf(canonical(pr.values, pr["lat"].values, pr["lon"].values), path)
    out = land_mask_files(grid=path, output=tmp_path / "land_mask.nc",
                          land_mask=section_defaults("land_mask", {"method": "auto", "min_fraction": 0.5}))
    with xr.open_dataset(out) as mask:
        assert int(mask["land"].sum()) == 328
        assert mask.attrs["method"] == "data_nan" and mask.attrs["requested_method"] == "auto"
        assert mask["land"].dtype == np.int8
        np.testing.assert_array_equal(mask["land"].attrs["flag_values"], [0, 1])
        assert mask["land"].attrs["flag_meanings"] == "sea land"


def test_data_nan_reads_the_whole_record_when_needed():
    lat, lon = grid(dlon=4, dlat=4)
    values = np.full((50, lat.size, lon.size), np.nan)
    values[49, 1, 2] = 0.0  # valid only at the last step: still land
    values[:, 3, 3] = 1.0
    fraction = data_nan_fraction(canonical(values, lat, lon)["precip"], steps=7)
    assert fraction.values.sum() == 2 and fraction.values[1, 2] == 1 and fraction.values[3, 3] == 1


def test_auto_without_nan_uses_global_land_mask_and_records_its_source(tmp_path):
    lat, lon = grid(dlon=1.0, dlat=1.0)
    path = tmp_path / "raw.nc"
    write_netcdf(canonical(np.zeros((4, lat.size, lon.size)), lat, lon), path)
    out = land_mask_files(grid=path, output=tmp_path / "land_mask.nc",
                          land_mask=section_defaults("land_mask", {"method": "auto", "min_fraction": 0.3,
                                                                   "subsamples": 6}))
    with xr.open_dataset(out) as mask:
        assert mask.attrs["method"] == "global_land_mask"
        assert "global-land-mask 1.0.0" in mask.attrs["source"]
        assert "global-land-mask 1.0.0" in mask["land_fraction"].attrs["source"]
        np.testing.assert_array_equal(mask["land"].values, (mask["land_fraction"].values >= 0.3).astype(np.int8))
        assert 0 <= float(mask["land_fraction"].min()) and float(mask["land_fraction"].max()) <= 1
        assert mask["land_fraction"].attrs["standard_name"] == "land_area_fraction"


def test_auto_tells_a_coastline_from_an_instruments_reach(caplog):
    """auto keeps data_nan while at most AUTO_MAX_SEA_SHARE of the cells with data are wholly sea by
    global_land_mask; beyond, land is global_land_mask where the data are, with a warning."""
    lat, lon = grid(dlon=1.0, dlat=1.0)  # Japan, Korea, the Pacific
    settings = section_defaults("land_mask", {"method": "auto"})
    globe = globe_land_fraction(lat, lon, settings["subsamples"]).values
    coast = globe > 0
    n_coast, sea = int(coast.sum()), np.argwhere(~coast)
    assert AUTO_MAX_SEA_SHARE == 0.1 and n_coast == 127

    def auto(seen):
        values = np.where(seen, 1.0, np.nan)[None].repeat(2, axis=0)
        return land_fraction_for(canonical(values, lat, lon), settings)

    # NaN on the sea (and up to a ninth as many wholly-sea cells with data: 10 %): data_nan
    seen = coast.copy()
    seen[tuple(sea[:n_coast // 9].T)] = True
    with caplog.at_level("WARNING", logger="precipmodes"):
        fraction, method, source = auto(seen)
    assert method == "data_nan" and "NaN pattern" in source and not caplog.text
    np.testing.assert_array_equal(fraction.values, seen)
    # one wholly-sea cell more (15 of 142: 11 %): the NaN pattern is no coastline
    seen[tuple(sea[n_coast // 9])] = True
    with caplog.at_level("WARNING", logger="precipmodes"):
        fraction, method, source = auto(seen)
    assert method == "global_land_mask_where_observed" and "global-land-mask" in source
    np.testing.assert_array_equal(fraction.values, np.where(seen, globe, 0))
    assert f"15 of {n_coast + 15} cells with data" in caplog.text and "land_mask.method: data_nan" in caplog.text
    # a radar's reach: every cell east of 138E has data, land and sea alike
    reach = np.broadcast_to(lon.values >= 138, coast.shape)
    fraction, method, _ = auto(reach)
    assert method == "global_land_mask_where_observed"
    np.testing.assert_array_equal(fraction.values, np.where(reach, globe, 0))
    # data_nan asked for explicitly: every cell with data is land
    fraction, method, _ = land_fraction_for(canonical(np.where(reach, 1.0, np.nan)[None], lat, lon),
                                            section_defaults("land_mask", {"method": "data_nan"}))
    assert method == "data_nan"
    np.testing.assert_array_equal(fraction.values, reach)


def test_auto_on_stage_iv_radar_regridded_through_the_workflow(shared_data, tmp_path):
    """Stage IV (radar + gauges, Hurricane Florence) regridded by nearest neighbour with the config `precipmodes
    init --hours 6` writes: the radar sees 16,086 of the 28,998 cells, 4,807 of them open Atlantic; auto keeps
    the 10,906 of those that global_land_mask calls land (data_nan would take all 16,086)."""
    written = subprocess.run([sys.executable, "-m", "precipmodes.cli", "init", str(shared_data /
                             "stageiv_hourly_2018-09-13.nc"), "--hours", "6", "-o", "s4.yaml"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)
    assert written.returncode == 0, written.stderr
    prepared = tmp_path / "results/stageiv_hourly_2018-09-13/prepared"
    run_snakemake(tmp_path, str((prepared / "land_mask.nc").relative_to(tmp_path)), "--cores", "1",
                  "--configfile", str(tmp_path / "s4.yaml"), timeout=600)
    with xr.open_dataset(prepared / "land_mask.nc") as mask, prepared_totals(prepared) as totals:
        assert mask.attrs["requested_method"] == "auto"
        assert mask.attrs["method"] == "global_land_mask_where_observed"
        assert (mask.attrs["n_land_cells"], mask.attrs["n_cells"]) == (10906, 28998)
        seen = totals["n_observed_steps"].values > 0
        assert int(seen.sum()) == 16086
        assert not mask["land"].values[~seen].any()  # no land where the radar does not see
    log = (tmp_path / "results/stageiv_hourly_2018-09-13/logs/land_mask.log").read_text()
    assert "4807 of 16086 cells with data in raw.nc (30 %, more than 10 %) are wholly sea" in log
    assert "10906 of 28998 cells are land (method global_land_mask_where_observed)" in log


def test_auto_prefers_seed_land():
    lat, lon = grid(dlon=4, dlat=4)
    ds = canonical(np.zeros((2, lat.size, lon.size)), lat, lon)
    seed = np.zeros((lat.size, lon.size), dtype=np.int8)
    seed[1, 1] = 1
    ds["seed_land"] = (("lat", "lon"), seed)
    fraction, method, source = land_fraction_for(ds, section_defaults("land_mask", {"method": "auto"}))
    assert method == "seed_land" and "seed_land" in source
    np.testing.assert_array_equal(fraction.values, seed)


def test_file_method_netcdf_and_grid_mismatch(tmp_path):
    lat, lon = grid(dlon=4, dlat=4)
    ds = canonical(np.zeros((2, lat.size, lon.size)), lat, lon)
    land = xr.DataArray(np.eye(lat.size, lon.size, dtype=np.float32)[::-1], dims=("lat", "lon"),
                        coords={"lat": lat.values[::-1], "lon": lon.values})  # descending lat in the file
    path = tmp_path / "mask.nc"
    xr.Dataset({"land_fraction": land}).to_netcdf(path)
    fraction, method, _ = land_fraction_for(ds, section_defaults("land_mask", {"method": "file", "path": str(path)}))
    assert method == "file"
    np.testing.assert_array_equal(fraction.values, np.eye(lat.size, lon.size))  # sorted to ascending lat
    other = canonical(np.zeros((2, 3, 5)), lat.values[:3], lon.values)
    with pytest.raises(InputDataError, match=r"mask\.nc.*4 lat x 5 lon.*3 lat x 5 lon"):
        land_fraction_for(other, section_defaults("land_mask", {"method": "file", "path": str(path)}))
    xr.Dataset({"sea": land}).to_netcdf(tmp_path / "wrong.nc")
    with pytest.raises(InputDataError, match=r"wrong\.nc.*'land_fraction' or 'land'.*sea"):
        land_fraction_for(ds, section_defaults("land_mask", {"method": "file", "path": str(tmp_path / "wrong.nc")}))
    with pytest.raises(ConfigError, match="land_mask.path"):
        land_fraction_for(ds, section_defaults("land_mask", {"method": "file", "path": None}))


def test_file_method_mask_in_minus180_180_on_a_grid_across_180(tmp_path):
    """A mask written in -180..180 (sorted: the domain's cells east of 180° first) on a grid across 180°."""
    lat = xr.DataArray([-17.5, -16.5], dims="lat", coords={"lat": [-17.5, -16.5]})
    lon = xr.DataArray(np.arange(175.5, 185.0), dims="lon", coords={"lon": np.arange(175.5, 185.0)})
    file_lon = np.concatenate([np.arange(-179.5, -175.0), np.arange(175.5, 180.0)])
    land = np.zeros((2, file_lon.size), dtype=np.float32)
    land[1, file_lon == -178.5] = 1
    xr.Dataset({"land": (("lat", "lon"), land)}, coords={"lat": lat.values, "lon": file_lon}).to_netcdf(
        tmp_path / "mask.nc")
    fraction, method, _ = land_fraction_for(canonical(np.zeros((1, 2, lon.size)), lat, lon),
                                            section_defaults("land_mask", {"method": "file",
                                                                           "path": str(tmp_path / "mask.nc")}))
    assert method == "file" and float(fraction.sum()) == 1
    assert float(fraction.sel(lat=-16.5, lon=181.5)) == 1
    np.testing.assert_array_equal(fraction["lon"].values, lon.values)


def test_file_method_seed_npy_layout(tmp_path):
    """The seed's mask_x5_y6.npy: 320 x 320, row 0 at the north edge, 0.0625 x 0.05 deg over 128-148E, 30-46N."""
    values = np.zeros((320, 320))
    values[0, 0] = 1  # north-west corner cell
    values[319, 10] = 1  # a southern cell
    values[5, 5] = np.nan  # NaN counts as sea
    path = tmp_path / "mask_x5_y6.npy"
    np.save(path, values)
    lat_values, lon_values = seed_mask_grid()
    assert lat_values[0] == pytest.approx(30.025) and lon_values[-1] == pytest.approx(147.96875)
    lat = xr.DataArray(lat_values, dims="lat", coords={"lat": lat_values})
    lon = xr.DataArray(lon_values, dims="lon", coords={"lon": lon_values})
    ds = canonical(np.zeros((1, 320, 320)), lat, lon)
    fraction, _, _ = land_fraction_for(ds, section_defaults("land_mask", {"method": "file", "path": str(path)}))
    assert float(fraction.sel(lat=45.975, lon=128.03125)) == 1
    assert float(fraction.sel(lat=30.025, lon=128.65625)) == 1
    assert float(fraction.sum()) == 2
    coarse_lat, coarse_lon = grid(dlon=0.25, dlat=0.2)
    with pytest.raises(InputDataError, match=r"mask_x5_y6\.npy.*320 lat x 320 lon.*80 lat x 80 lon"):
        land_fraction_for(canonical(np.zeros((1, 80, 80)), coarse_lat, coarse_lon),
                          {"method": "file", "path": str(path)})
    np.save(tmp_path / "small.npy", np.zeros((10, 10)))
    with pytest.raises(InputDataError, match=r"small\.npy.*\(10, 10\)"):
        land_fraction_for(ds, section_defaults("land_mask", {"method": "file", "path": str(tmp_path / "small.npy")}))


def test_no_land_is_an_error(tmp_path):
    lat, lon = grid(west=150, east=160, south=0, north=10, dlon=1, dlat=1)  # open Pacific
    path = tmp_path / "raw.nc"
    write_netcdf(canonical(np.zeros((2, lat.size, lon.size)), lat, lon), path)
    with pytest.raises(InputDataError, match="min_fraction"):
        land_mask_files(grid=path, output=tmp_path / "land_mask.nc",
                        land_mask=section_defaults("land_mask", {"method": "global_land_mask", "min_fraction": 0.5}))
    assert not (tmp_path / "land_mask.nc").exists()
