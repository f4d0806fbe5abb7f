"""The demo source: SYNTHETIC precipitation over Japan from known patterns (precipmodes.io.sources.demo,
demo_model, demo_gaps)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.optimize import nnls

from precipmodes.config import parse_instant
from precipmodes.errors import ConfigError
from precipmodes.io.configfile import load_config
from precipmodes.io.globe import globe_land_fraction
from precipmodes.io.sources import check_canonical, raw_files, source_options
from precipmodes.io.sources.demo import demo_dataset, demo_grid, demo_times, demo_truth_files, truth_dataset
from precipmodes.io.sources.demo_gaps import OUTAGE_BOX, OUTAGE_DAYS, STATION_MAX_MISSING
from precipmodes.io.sources.demo_model import PATTERNS, PRECISION_MM
from precipmodes.io.sources.index import open_steps

DOMAIN = {"lon": [128.0, 148.0], "lat": [30.0, 46.0], "resolution": [0.5, 0.4]}  # 40 x 40 cells


NO_GAPS = {"station_fraction": 0.0, "outage": False}


def source(**changes):
    """Complete options of kind demo (every key of source.demo), without gaps unless ``gaps`` is given."""
    base = {"kind": "demo", "seed": 7, "step_hours": 6, "start": "2006-01-01T00:00+09:00",
            "end": "2006-04-01T00:00+09:00", "gaps": NO_GAPS}
    return {**base, **changes}


def names():
    return [p.name for p in PATTERNS]


@pytest.fixture(scope="module")
def demo():
    return demo_dataset(source(), DOMAIN)


@pytest.fixture(scope="module")
def multi_year():
    """Three years of daily demo data on a coarse grid with its truth (for seasonal cycles)."""
    src = source(step_hours=24, start="2006-01-01T00:00+09:00", end="2009-01-01T00:00+09:00")
    domain = {**DOMAIN, "resolution": [1.0, 0.8]}
    return demo_dataset(src, domain).compute(), truth_dataset(src, domain)


def test_default_config_sizes(repo):
    config = load_config(repo / "config" / "config.yaml")
    lat, lon = demo_grid(config["domain"])
    times = demo_times(source_options(config["source"]))
    assert (lat.size, lon.size) == (80, 80)
    assert times.size == 14_608  # 2006-01-01..2016-01-01 JST, 6-hourly
    assert lat[0] == pytest.approx(30.1) and lon[-1] == pytest.approx(147.875)


def test_canonical_lazy_and_labelled_synthetic(demo):
    check_canonical(demo, origin="demo")
    assert demo["precip"].chunks is not None  # dask-backed: raw_files streams it
    assert demo["precip"].dtype == np.float32
    for key in ("title", "source", "comment"):
        assert "synthetic" in demo.attrs[key].lower()
    assert "not observations" in demo.attrs["source"]
    step = np.timedelta64(6, "h")
    np.testing.assert_array_equal(demo["time_bnds"].values[:, 1] - demo["time_bnds"].values[:, 0], step)


def test_deterministic_from_seed(demo):
    again = demo_dataset(source(), DOMAIN)
    other = demo_dataset(source(seed=8), DOMAIN)
    values = demo["precip"].values
    np.testing.assert_array_equal(values, again["precip"].values)
    assert not np.array_equal(values, other["precip"].values)


def test_non_negative_mostly_dry_and_wet_somewhere(demo):
    values = demo["precip"].values
    assert np.isfinite(values).all() and values.min() >= 0
    wet_steps_per_cell = (values > 0).mean(axis=0)
    assert wet_steps_per_cell.mean() < 0.5  # most steps are dry at most cells
    assert (values.reshape(values.shape[0], -1) > 0).any(axis=1).mean() > 0.1  # but it does rain
    assert values.max() > 10  # heavy events in mm per 6 h exist


def test_steps_align_with_the_seed_anchor(demo):
    anchor = parse_instant("2005-12-31T15:00Z")  # 00:00 JST, the seed's window start
    offset = (demo["time"].values - anchor) / np.timedelta64(1, "h")
    assert offset[0] == 0
    assert np.all(offset % 6 == 0)
    hours_jst = (pd.DatetimeIndex(demo["time"].values).hour + 9) % 24
    assert set(hours_jst) == {0, 6, 12, 18}
    assert demo.sizes["time"] % 12 == 0  # whole 72-hour windows (Jan-Mar 2006 = 90 days)


def test_truth_patterns_max_one_on_real_land():
    truth = truth_dataset(source(), DOMAIN)
    patterns = truth["patterns"].values
    assert patterns.shape == (len(PATTERNS), 40, 40)
    assert patterns.min() >= 0
    np.testing.assert_allclose(patterns.max(axis=(1, 2)), 1.0)
    assert list(truth["pattern_name"].values) == names()
    land = truth["land_fraction"]
    np.testing.assert_array_equal(land.values, globe_land_fraction(truth["lat"], truth["lon"], 6).values)
    assert land.sel(lat=35.7, lon=139.7, method="nearest") > 0.5  # Tokyo
    assert land.sel(lat=32.0, lon=145.0, method="nearest") == 0  # Pacific
    convection = truth["patterns"].sel(pattern=names().index("summer_convection") + 1)
    assert float(convection.where(land == 0).max()) == 0  # inland convection: nothing over open sea
    assert float(convection.where(land == 1).max()) == 1
    winter = truth["patterns"].sel(pattern=names().index("winter_monsoon") + 1)
    niigata, sendai = (float(winter.sel(lat=la, lon=lo, method="nearest")) for la, lo in ((37.9, 139.0), (38.3, 141.0)))
    assert niigata > 0.5 > sendai  # Sea-of-Japan side wet, Pacific side dry in winter
    assert (truth["seasonal_cycle"].max("month") == 1).all()
    assert np.isnan(truth["realised_seasonal_cycle"].sel(month=7)).all()  # Jan-Mar record: July unknown
    assert "SYNTHETIC" in truth.attrs["title"] and truth.attrs["demo_seed"] == 7


def test_data_is_the_sum_of_the_true_patterns(multi_year):
    data, truth = multi_year
    expected = np.einsum("kt,kyx->tyx", truth["activity"].values, truth["patterns"].values)
    values = data["precip"].values
    assert not (values > 0)[expected == 0].any()  # rain only where the patterns are active ...
    assert (values > 0)[expected >= 1].all()  # ... and wherever they give 1 mm (noise of -8 sigma to round to 0)
    assert 0.5 < (values > 0)[expected > 0].mean() < 1  # the drizzle at the patterns' edges rounds to 0
    step = np.float32(PRECISION_MM)  # whole multiples of 0.1 mm, as the int16 of raw.nc unpacks
    np.testing.assert_array_equal(np.rint(values / step) * step, values)
    ratio = values.sum() / expected.sum()
    assert 0.97 < ratio < 1.03  # multiplicative noise of mean 1


def test_seasonal_cycles_as_designed(multi_year):
    """Project each day on the true patterns (NNLS); monthly means peak in the designed season and
    follow the realised cycles written to the truth file."""
    data, truth = multi_year
    basis = truth["patterns"].values.reshape(len(PATTERNS), -1).T
    coef = np.array([nnls(basis, day.ravel())[0] for day in data["precip"].values])
    months = pd.DatetimeIndex(data["time"].values + np.timedelta64(9, "h")).month.values
    monthly = np.array([coef[months == m].mean(axis=0) for m in range(1, 13)])  # (month, pattern)
    peak = {name: monthly[:, k].argmax() + 1 for k, name in enumerate(names())}
    assert peak["baiu_early"] in (6, 7) and peak["baiu_late"] in (6, 7)
    assert peak["winter_monsoon"] in (12, 1, 2)
    assert peak["typhoon_pacific"] in (8, 9, 10)
    assert peak["summer_convection"] in (7, 8)
    for k, name in enumerate(names()):  # the data carries the truth file's realised cycles
        assert np.corrcoef(monthly[:, k], truth["realised_seasonal_cycle"].values[k])[0, 1] > 0.95, name
    winter = monthly[[11, 0, 1], names().index("winter_monsoon")].mean()
    assert winter > 10 * monthly[[5, 6, 7], names().index("winter_monsoon")].mean()


def test_afternoon_convection_in_the_afternoon_step():
    ds = demo_dataset(source(start="2006-07-01T00:00+09:00", end="2006-09-01T00:00+09:00"), DOMAIN)
    truth = truth_dataset(source(start="2006-07-01T00:00+09:00", end="2006-09-01T00:00+09:00"), DOMAIN)
    activity = truth["activity"].sel(pattern=names().index("summer_convection") + 1)
    hours_jst = (pd.DatetimeIndex(ds["time"].values).hour + 9) % 24
    by_hour = {h: float(activity.values[hours_jst == h].sum()) for h in (0, 6, 12, 18)}
    assert by_hour[12] > 0 and by_hour[0] == by_hour[6] == 0  # the 12-18 JST step
    assert by_hour[12] > 5 * by_hour[18]


def test_demo_truth_and_raw_files(tmp_path):
    src = source(end="2006-01-13T00:00+09:00")
    config = {"source": src, "domain": DOMAIN}
    truth = demo_truth_files(source=src, domain=DOMAIN, output=tmp_path / "demo_truth.nc", config=config)
    raw = raw_files(source=src, domain=DOMAIN, output=tmp_path / "raw.nc", config=config)
    with xr.open_dataset(truth) as t, xr.open_dataset(raw) as r:
        assert t["patterns"].dims == ("pattern", "lat", "lon")
        assert t["seasonal_cycle"].dims == ("pattern", "month")
        assert "SYNTHETIC" in r.attrs["title"]
        # an index (no copy of the field): its steps generated where they are read, equal to the generator's
        assert "precip" not in r and raw.stat().st_size < 50_000
        expected = demo_dataset(src, DOMAIN)["precip"].values
        np.testing.assert_array_equal(open_steps(raw)["precip"].values, expected)
        np.testing.assert_array_equal(open_steps(raw, 5, 17)["precip"].values, expected[5:17])
        np.testing.assert_array_equal(r["lat"].values, t["lat"].values)


GAPS = {"station_fraction": 0.01, "outage": True}


def test_gaps_are_exactly_where_the_truth_says_and_change_nothing_else():
    src = source(end="2006-03-01T00:00+09:00", gaps=GAPS)
    gappy = demo_dataset(src, DOMAIN)["precip"].values
    full = demo_dataset(source(end="2006-03-01T00:00+09:00"), DOMAIN)["precip"].values
    truth = truth_dataset(src, DOMAIN)
    # the precipitation is the same; only the gaps are NaN
    finite = np.isfinite(gappy)
    np.testing.assert_array_equal(gappy[finite], full[finite])
    assert np.isfinite(full).all()
    expected = np.zeros(gappy.shape, bool)
    steps = truth["gap_outage_steps"].values.astype(bool)
    expected[np.ix_(steps, *[np.arange(n) for n in gappy.shape[1:]])] = truth["gap_outage"].values.astype(bool)
    lat, lon = truth["lat"].values, truth["lon"].values
    iy = np.searchsorted(lat, truth["gap_station_lat"].values)
    ix = np.searchsorted(lon, truth["gap_station_lon"].values)
    station_nan = ~finite[:, iy, ix]
    expected[:, iy, ix] |= station_nan
    np.testing.assert_array_equal(~finite, expected)
    # 1 % of the generator's land cells (land fraction >= 0.5), each on land, missing whole UTC days
    n_land = int((truth["land_fraction"].values >= 0.5).sum())
    assert iy.size == round(0.01 * n_land) and (truth["land_fraction"].values[iy, ix] >= 0.5).all()
    day = pd.DatetimeIndex(truth["time"].values).normalize()
    for s in range(iy.size):
        missing_days = set(day[station_nan[:, s]])
        assert station_nan[day.isin(list(missing_days)), s].all()
    np.testing.assert_allclose(truth["gap_station_missing_fraction"].values, station_nan.mean(axis=0), rtol=1e-6)
    assert truth["gap_station_missing_fraction"].values.max() <= STATION_MAX_MISSING + 0.05
    # the outage: OUTAGE_DAYS whole days (4 steps each) over every cell of the Kyushu box
    assert steps.sum() == OUTAGE_DAYS * 4
    box = truth["gap_outage"].values.astype(bool)
    lon2, lat2 = np.meshgrid(lon, lat)
    np.testing.assert_array_equal(box, (lon2 >= OUTAGE_BOX["lon"][0]) & (lon2 <= OUTAGE_BOX["lon"][1])
                                  & (lat2 >= OUTAGE_BOX["lat"][0]) & (lat2 <= OUTAGE_BOX["lat"][1]))
    # the record touches 60 UTC days (2005-12-31T15Z .. 2006-02-28); 30 % into it: day 18 = 2006-01-18
    assert pd.Timestamp(truth["time"].values[steps][0]) == pd.Timestamp("2006-01-18T03:00")  # steps at 03/09/15/21Z
    # no cell is missing at every step (the land mask's data_nan would take it for sea)
    assert finite.any(axis=0).all()


def test_gaps_are_deterministic_and_can_be_turned_off():
    src = source(end="2006-02-01T00:00+09:00", gaps=GAPS)
    a = demo_dataset(src, DOMAIN)["precip"].values
    np.testing.assert_array_equal(a, demo_dataset(src, DOMAIN)["precip"].values)
    off = demo_dataset({**src, "gaps": NO_GAPS}, DOMAIN)["precip"].values
    assert np.isfinite(off).all()
    only_stations = demo_dataset({**src, "gaps": {"station_fraction": 0.01, "outage": False}}, DOMAIN)
    assert "no outage" in only_stations.attrs["demo_gaps"] and "station cells" in only_stations.attrs["demo_gaps"]


def test_bad_resolution_names_the_key():
    with pytest.raises(ConfigError, match="domain.resolution"):
        demo_dataset(source(), {**DOMAIN, "resolution": [0.3, 0.4]})


def test_domain_away_from_japan_is_refused():
    with pytest.raises(ConfigError, match="domain"):
        demo_dataset(source(), {"lon": [-10.0, 0.0], "lat": [0.0, 10.0], "resolution": 1.0})
