"""Source `seed_binary`: small files generated in exactly the seed notebook's layout."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from precipmodes.errors import InputDataError
from precipmodes.io.sources import check_canonical, raw_files
from precipmodes.io.sources.seed_binary import open_seed_binary, seed_grid
from helpers.sources import write_seed

SEED_DOMAIN = {"lon": [128.0, 148.0], "lat": [30.0, 46.0]}


@pytest.mark.parametrize("stamps_as", ["str", "int"])
def test_known_cell_lands_at_its_lat_lon(tmp_path, stamps_as):
    source, data, _ = write_seed(tmp_path, stamps_as=stamps_as)
    ds = open_seed_binary(source, SEED_DOMAIN)
    check_canonical(ds)
    assert ds.sizes == {"time": 4, "lat": 320, "lon": 320, "nv": 2}
    corner = ds["precip"].sel(lat=45.975, lon=128.03125, method="nearest")
    assert float(corner["lat"]) == pytest.approx(45.975) and float(corner["lon"]) == pytest.approx(128.03125)
    np.testing.assert_array_equal(corner.values, data[:, 0])      # first land cell in row-major order
    # stored row 200 (from the north) = grid row 319 - 200 from the south
    lat, lon = seed_grid()
    block = ds["precip"].isel(lat=319 - 200, lon=170)
    assert float(block["lat"]) == pytest.approx(lat[119]) == pytest.approx(46.0 - 200.5 * 0.05)
    np.testing.assert_array_equal(block.values, data[:, 1])
    assert int(np.isfinite(ds["precip"].isel(time=0)).sum()) == 13
    assert int(ds["seed_land"].sum()) == 13 and ds["seed_land"].dtype == np.int8
    assert int(ds["seed_land"].sel(lat=45.975, lon=128.03125, method="nearest")) == 1
    # 00:00 JST = 15:00 UTC the day before; windows are 72 hours, already accumulated
    assert str(ds["time"].values[0])[:16] == "2005-12-31T15:00"
    assert (ds["time_bnds"][:, 1] - ds["time_bnds"][:, 0] == np.timedelta64(72, "h")).all()
    assert ds["precip"].attrs["cell_methods"] == "time: sum (interval: 72 hours)"
    assert ds.attrs["precipmodes_already_accumulated_hours"] == 72


def test_first_row_south_flips_the_grid(tmp_path):
    source, data, _ = write_seed(tmp_path)
    ds = open_seed_binary({**source, "first_row": "south"}, SEED_DOMAIN)
    corner = ds["precip"].sel(lat=30.025, lon=128.03125, method="nearest")
    np.testing.assert_array_equal(corner.values, data[:, 0])


def test_raw_files_and_domain_subset(tmp_path):
    source, data, _ = write_seed(tmp_path)
    out = raw_files(source=source, domain={"lon": [135.0, 145.0], "lat": [30.0, 40.0]},
                    output=tmp_path / "out" / "raw.nc")
    ds = xr.open_dataset(out)
    check_canonical(ds)
    assert ds.sizes["lon"] == 160 and ds.sizes["lat"] == 200
    assert int(ds["seed_land"].sum()) == 12            # the corner cell is outside the subset
    assert ds.attrs["precipmodes_already_accumulated_hours"] == 72
    np.testing.assert_array_equal(np.sort(ds["precip"].isel(time=1).values[np.isfinite(
        ds["precip"].isel(time=1).values)]), data[1, 1:].astype(np.float32))


def test_size_mismatch_and_bad_mask(tmp_path):
    source, _, mask = write_seed(tmp_path)
    np.save(tmp_path / "times.npy", np.array(["200601010000", "200601040000"]))
    out = tmp_path / "out"
    with pytest.raises(InputDataError, match="data.bin: .* bytes, but 2 windows .* x 13 land cells"):
        raw_files(source=source, domain=SEED_DOMAIN, output=out / "raw.nc")
    np.save(tmp_path / "mask_x5_y6.npy", mask[:100])
    with pytest.raises(InputDataError, match="mask_x5_y6.npy: the seed mask must be 320 x 320"):
        raw_files(source=source, domain=SEED_DOMAIN, output=out / "raw.nc")
    assert not out.exists() or list(out.iterdir()) == []


def test_bad_time_stamps_and_negative_totals(tmp_path):
    source, data, _ = write_seed(tmp_path)
    np.save(tmp_path / "times.npy", np.array(["2006-01-01", "x", "y", "z"]))
    with pytest.raises(InputDataError, match="times.npy: time stamps .* not '%Y%m%d%H%M'"):
        open_seed_binary(source, SEED_DOMAIN)
    source, data, _ = write_seed(tmp_path)
    (data - 5.0).tofile(tmp_path / "data.bin")
    with pytest.raises(InputDataError, match="data.bin: negative precipitation"):
        raw_files(source=source, domain=SEED_DOMAIN, output=tmp_path / "out" / "raw.nc")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
