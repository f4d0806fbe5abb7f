"""Bad inputs, run through Snakemake: each case names the input, the message the user must see, and
checks that the failed run left nothing partial in results/.

One table (CASES). Each case builds its input in a temporary folder, runs snakemake for the
smallest target that exercises it and checks that

* snakemake fails and its terminal output (stdout + stderr, where the script's exception text
  lands) matches the expected message (a regular expression naming the key/file and the fix),
* the failed job's own log (results/logs/...) holds the same message and the traceback (errors found
  before any job runs, config validation and unresolvable inputs, are only in the terminal output),
* the failed rule's outputs, sidecars and write_netcdf temporary files are absent, every NetCDF
  left in results/ opens and reads, and the complete upstream outputs of a prepared workdir are
  byte-for-byte intact.

Cases on the data's later stages start from a copy of one prepared tiny demo workdir (module
fixture), so only the rule under test runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from helpers.workflow import SHARED_DATA, file_server, require
from helpers.hdf5_float16 import float16_file
from helpers.reliability import (JST, TINY, assert_nothing_partial, copy_run, data_vars, files_source, http_source,
                                 output_text, precip_file, snakemake, tiny)

from precipmodes.io.sources.index import open_steps

pytestmark = pytest.mark.workflow

RAW = "results/prepared/raw.nc"
LAND_MASK = "results/prepared/land_mask.nc"
TOTALS = "results/prepared/totals/2000-01.nc"  # the one partition of short records (auto: 1200 months from year 0)
SELECTION = "results/prepared/selection.nc"
SPLIT = ["results/e1/train.nc", "results/e1/test.nc"]
SVD = "results/e1/svd.nc"


@dataclass
class Case:
    """``make(tmp)`` returns the config; ``targets`` are asked for and must not exist afterwards."""
    name: str
    make: Callable[[Path], dict]
    message: str                       # regular expression the terminal output must match
    targets: list[str] = field(default_factory=lambda: [RAW])
    prepared: bool = False             # start from a copy of the prepared tiny demo workdir
    failed: list[str] | None = None    # outputs that must not exist (default: targets)
    damage: str | None = None          # a prepared output cut to half its bytes before the run
    logged: bool = True                # raised by a rule's job: its log holds the message and traceback


def experiment(**changes) -> dict:
    e1 = {**TINY["experiments"]["e1"], **changes}
    return {k: v for k, v in e1.items() if v is not None}


def with_files(tmp: Path, **kwargs) -> dict:
    return tiny(source=files_source(precip_file(tmp / "in.nc", **kwargs)))


def raw_bytes(tmp: Path, name: str, data: bytes) -> dict:
    (tmp / name).write_bytes(data)
    return tiny(source=files_source(tmp / name))


def truncated(tmp: Path) -> dict:
    good = precip_file(tmp / "good.nc", days=60).read_bytes()
    return raw_bytes(tmp, "cut.nc", good[: len(good) * 2 // 3])


def staggered_gaps(tmp: Path) -> dict:
    """Daily files in which every cell misses exactly one day of the training period (a different day per
    cell): each has data in 18 of the 19 training windows (coverage 0.947), so min_cell_fraction 0.95 fails."""
    values = np.random.default_rng(0).gamma(0.6, 4.0, (90, 16, 20)) + 0.1
    cell = np.arange(16 * 20).reshape(16, 20)
    values[cell % 57, *np.indices((16, 20))] = np.nan
    return {**with_files(tmp, days=90, values=values), "coverage": {"min_cell_fraction": 0.95}}


def outage_over_the_test_period(tmp: Path) -> dict:
    """Daily files whose southern three quarters (30.5-41.5N) are missing from day 59 on: every test
    window has data in well under 80 % of the land cells."""
    values = np.random.default_rng(0).gamma(0.6, 4.0, (90, 16, 20)) + 0.1
    values[59:, :12, :] = np.nan
    return with_files(tmp, days=90, values=values)


def mismatched_mask(tmp: Path) -> dict:
    import xarray as xr

    lat, lon = np.arange(30.25, 46.0, 0.5), np.arange(128.25, 148.0, 0.5)   # 0.5-degree grid, data is 1-degree
    fraction = xr.DataArray(np.ones((lat.size, lon.size), np.float32), dims=("lat", "lon"),
                            coords={"lat": lat, "lon": lon}, name="land_fraction")
    fraction.to_dataset().to_netcdf(tmp / "mask.nc")
    return tiny(land_mask={"method": "file", "path": str(tmp / "mask.nc")})


EOBS = "eobs_iberia_pr_djf_1982-2002.nc"
IBERIA = {"lon": [-10.0, 5.0], "lat": [35.0, 45.0], "resolution": [0.5, 0.5]}


def eobs_bytes(classic: bool) -> bytes:
    """The real E-OBS file (HDF5), or a classic-format (NETCDF3) copy of it."""
    require((SHARED_DATA / EOBS).is_file(), f"{SHARED_DATA / EOBS} not found")
    if not classic:
        return (SHARED_DATA / EOBS).read_bytes()
    import tempfile

    import xarray as xr

    with tempfile.TemporaryDirectory() as folder, xr.open_dataset(SHARED_DATA / EOBS) as ds:
        ds.to_netcdf(Path(folder) / "classic.nc", format="NETCDF3_CLASSIC")
        return (Path(folder) / "classic.nc").read_bytes()


def cut_eobs(tmp: Path, classic: bool, keep: Callable[[int], int]) -> dict:
    """E-OBS (classic copy or HDF5 original) cut to its first ``keep(size)`` bytes, over Iberia."""
    data = eobs_bytes(classic)
    (tmp / "cut.nc").write_bytes(data[: keep(len(data))])
    return {**tiny(source=files_source(tmp / "cut.nc", variable="pr")), "domain": IBERIA}


def one_bad_value(value: float, **source) -> Callable[[Path], dict]:
    """Daily files a.nc (days 1-12) and b.nc (days 13-24); b.nc has ``value`` in one cell on one day."""
    def make(tmp: Path) -> dict:
        values = np.random.default_rng(0).gamma(0.6, 4.0, (24, 16, 20))
        values[17, 5, 9] = value
        times = pd.date_range("2006-01-01", periods=24, freq="D").values
        precip_file(tmp / "a.nc", values=values[:12], times=times[:12])
        precip_file(tmp / "b.nc", values=values[12:], times=times[12:])
        return tiny(source={**files_source(tmp / "a.nc", tmp / "b.nc"), **source})
    return make


def nat_time(tmp: Path) -> dict:
    """a.nc is fine; b.nc's time axis has one missing stamp (NaT, written as the fill value)."""
    times = pd.date_range("2006-01-01", periods=24, freq="D").values.copy()
    precip_file(tmp / "a.nc", times=times[:12])
    times[15] = np.datetime64("NaT")
    precip_file(tmp / "b.nc", times=times[12:])
    return tiny(source=files_source(tmp / "a.nc", tmp / "b.nc"))


def folder_path(tmp: Path) -> dict:
    precip_file(tmp / "daily" / "in.nc")
    return tiny(source=files_source(tmp / "daily"))


SERVED: dict[str, str] = {}  # url of the module's test server (set by the server fixture)
DAYS = pd.date_range("2006-01-01", periods=12, freq="D").values

CASES = [
    # --- configuration (refused before any rule runs) ---
    Case("config wrong type: experiments.e1.n_modes 'three'",
         lambda tmp: tiny(experiments={"e1": experiment(n_modes="three")}),
         r"experiments\.e1\.n_modes: 'three' is not of type 'integer'", logged=False),
    Case("config unknown key: top-level colour",
         lambda tmp: {**tiny(), "colour": "blue"},
         r"<top level>: unknown key\(s\) \['colour'\]; allowed keys are", logged=False),
    Case("config unknown key inside source.demo",
         lambda tmp: tiny(source={"kind": "demo", "demo": {**TINY["source"]["demo"], "paths": ["x.nc"]}}),
         r"source\.demo: unknown key\(s\) \['paths'\]", logged=False),
    Case("config source options both flat and under source.files (shows them in one place, names the file)",
         lambda tmp: tiny(source={"kind": "files", "variable": "pr", "files": {"paths": ["x.nc"]}}),
         r"invalid config from .*/work/config\.yaml:\n  source: the options of source\.kind files are split "
         r"between source \(\['variable'\]\) and source\.files; write them in one place:\n    source:\n"
         r"      kind: files\n      files:\n        paths:\n        - x\.nc\n        variable: pr", logged=False),
    Case("config missing experiment field: e1 without test",
         lambda tmp: tiny(experiments={"e1": experiment(test=None)}),
         r"experiments\.e1: 'test' is a required property", logged=False),
    Case("config experiment name with '/'",
         lambda tmp: tiny(experiments={"../escape/e1": experiment()}),
         r"name '\.\./escape/e1' is not allowed; names must match", logged=False),
    Case("config experiment name '..'",
         lambda tmp: tiny(experiments={"..": experiment()}),
         r"name '\.\.' is not allowed; names must match", logged=False),
    Case("config instant without time zone",
         lambda tmp: tiny(experiments={"e1": experiment(train=["2006-01-01", f"2006-03-01T00:00{JST}"])}),
         r"experiments\.e1\.train\.0: '2006-01-01' is not an ISO-8601 instant with a time zone", logged=False),
    Case("config train/test overlap (refused at validation)",
         lambda tmp: tiny(experiments={"e1": experiment(test=[f"2006-02-01T00:00{JST}",
                                                              f"2006-04-01T00:00{JST}"])}),
         r"experiments\.e1: train .* and test .* overlap", logged=False),
    # --- files source ---
    Case("missing file in source.paths",
         lambda tmp: tiny(source=files_source(tmp / "missing.nc")),
         r"source\.files\.paths: '.*missing\.nc' matches no file; check the path", logged=False),
    Case("empty glob in source.paths",
         lambda tmp: tiny(source=files_source(tmp / "none" / "*.nc")),
         r"source\.files\.paths: '.*none/\*\.nc' matches no file", logged=False),
    Case("empty file (0 bytes)", lambda tmp: raw_bytes(tmp, "empty.nc", b""),
         r"empty\.nc: cannot be opened as netcdf4 .*truncated"),
    Case("corrupt NetCDF (random bytes)",
         lambda tmp: raw_bytes(tmp, "corrupt.nc", b"CDF\x01" + np.random.default_rng(1).bytes(4000)),
         r"corrupt\.nc: cannot be opened as netcdf4"),
    Case("truncated NetCDF (first 2/3 of a valid file)", truncated,
         r"cut\.nc: the file is truncated \(its HDF5 superblock's end-of-file address says \d+ bytes but the "
         r"file has \d+, 66\.\d % of it\); .*copy or download it again"),
    Case("truncated classic NetCDF (E-OBS NETCDF3 copy cut at 97 %)",
         lambda tmp: cut_eobs(tmp, True, lambda n: n * 97 // 100),
         r"cut\.nc: the file is truncated \(its header declares 4 variables \d+ bytes but the file has \d+, "
         r"97\.0 % of it\); it was cut off .*copy or download it again"),
    Case("truncated classic NetCDF (cut through its time axis, the last variable)",
         lambda tmp: cut_eobs(tmp, True, lambda n: n - 3000),
         r"cut\.nc: the file is truncated \(its header declares 4 variables (\d+) bytes but the file has \d+"),
    Case("truncated NetCDF-4/HDF5 (E-OBS cut at 97 %)", lambda tmp: cut_eobs(tmp, False, lambda n: n * 97 // 100),
         r"cut\.nc: the file is truncated \(its HDF5 superblock's end-of-file address says 725748 bytes but the "
         r"file has 703975, 97\.0 % of it\)"),
    Case("float16 HDF5 variable (netCDF-C crashes on it)",
         lambda tmp: tiny(source=files_source(float16_file(tmp / "half.nc"))),
         r"half\.nc: variable 'precip', the precipitation variable \(source\.files\.variable\), is of type a "
         r"variable-length type: what netCDF-C makes of an HDF5 16-bit float \(float16\).*write it as float32"),
    Case("physically absurd amount (2.4e7 mm in one cell-day)", one_bad_value(2.4e7),
         r"1 value\(s\) above source\.max_mm_per_hour=500 mm/h \(12000 mm per step\): .*/b\.nc: 1 in 1 "
         r"step\(s\) 2006-01-18T00:00 \.\. 2006-01-18T00:00, the largest 2\.4e\+07 mm on 2006-01-18T00:00; in 1 "
         r"cell\(s\): \(lat 35\.5, lon 137\.5\): 1 step\(s\), largest 2\.4e\+07 mm; no rain is that heavy",
         targets=[TOTALS]),
    Case("+inf in one file", one_bad_value(np.inf),
         r"1 infinite value\(s\) \(\+inf/-inf\): .*/b\.nc: 1 in 1 step\(s\) 2006-01-18T00:00 .*largest inf mm",
         targets=[TOTALS]),
    Case("-inf in one file", one_bad_value(-np.inf),
         r"1 infinite value\(s\) \(\+inf/-inf\): .*/b\.nc: 1 in 1 step\(s\) .*largest -inf mm", targets=[TOTALS]),
    Case("NaT time stamp in one file", nat_time,
         r"/b\.nc: time stamp 3 \(of 12\) of 'time' is missing \(NaT"),
    Case("a folder in source.files.paths", folder_path,
         r"source\.files\.paths: .*/daily is a folder, not a file or a Zarr store; point source\.files\.paths at "
         r"the files, e\.g\. '.*/daily/\*\.nc'"),
    Case("window total above source.max_window_mm",
         lambda tmp: {**with_files(tmp, days=60, values=np.full((60, 16, 20), 4000.0))},
         r"raw\.nc \(precipmodes source\.kind=files: in\.nc\): \d+ window total\(s\) above "
         r"source\.max_window_mm=10000 mm: 2006-01-01T00:00 \(lat 30\.5, lon 128\.5\): 1\.2e\+04 mm; .*no rain is "
         r"that heavy", targets=[TOTALS]),
    Case("wrong variable (lists the available ones)",
         lambda tmp: {**with_files(tmp, variable="pr"), "source": files_source(tmp / "in.nc", variable="rain")},
         r"in\.nc: no variable 'rain' \(source\.files\.variable\); the file has: .*pr"),
    Case("unknown units", lambda tmp: with_files(tmp, units="furlongs"),
         r"unknown precipitation units 'furlongs'; set source\.files\.units"),
    Case("negative precipitation", lambda tmp: with_files(tmp, values=np.full((12, 16, 20), -3.0)),
         r"negative precipitation \(minimum -3 mm per step\)", targets=[TOTALS]),
    Case("NaN everywhere (no data on land or sea)", lambda tmp: with_files(tmp, values=np.full((12, 16, 20), np.nan)),
         r"the precipitation inside the domain is all NaN", targets=[TOTALS]),
    Case("time axis not monotonic",
         lambda tmp: with_files(tmp, times=DAYS[[0, 1, 2, 4, 3, 5, 6, 7, 8, 9, 10, 11]]),
         r"time is not monotonic"),
    Case("time axis with a duplicate",
         lambda tmp: with_files(tmp, times=DAYS[[0, 1, 2, 3, 3, 4, 5, 6, 7, 8, 9, 10]]),
         r"duplicate time stamp 2006-01-04"),
    Case("domain outside the data",
         lambda tmp: {**with_files(tmp), "domain": {"lon": [0.0, 20.0], "lat": [0.0, 16.0], "resolution": [1.0, 1.0]}},
         r"domain outside the data: domain\.lon=\[0\.0, 20\.0\]"),
    # --- http source (local server) ---
    Case("http 404", lambda tmp: tiny(source=http_source(f"{SERVED['url']}/absent_{{year}}.nc")),
         r"absent_2006\.nc: HTTP 404 Not Found; check the URL"),
    Case("http HTML page instead of NetCDF",
         lambda tmp: tiny(source=http_source(f"{SERVED['url']}/login_{{year}}.nc")),
         r"login_2006\.nc: the server sent an HTML page .* instead of a data file"),
    Case("http checksum mismatch",
         lambda tmp: tiny(source=http_source(f"{SERVED['url']}/good_{{year}}.nc",
                                             checksums={"good_2006.nc": "0" * 64})),
         r"checksum mismatch for good_2006\.nc: expected sha256 0{64}, got [0-9a-f]{64}"),
    # --- later stages, from the prepared tiny demo ---
    Case("land mask file on another grid (land_mask.method: file)", mismatched_mask,
         r"mask\.nc: the mask's grid .* does not match the data grid", targets=[LAND_MASK], prepared=True),
    Case("accumulation.hours not a multiple of the 6 h step",
         lambda tmp: tiny(accumulation={"hours": 10}),
         r"accumulation\.hours: 10 h is not a multiple of the input step 06:00:00", targets=[SELECTION],
         # no window plan: one partition "all", whose job fails naming the key; the earlier partition stays intact
         prepared=True, failed=[]),
    Case("no window passes the threshold",
         lambda tmp: tiny(threshold={"wet_mm": 1.0e6, "min_wet_fraction": 0.2}),
         r"no window passes the threshold: threshold\.min_wet_fraction=0\.2 .* threshold\.wet_mm=1000000\.0",
         targets=[SELECTION], prepared=True),
    Case("empty train period (shorter than one window)",
         lambda tmp: tiny(experiments={"e1": experiment(train=[f"2006-01-01T00:00{JST}", f"2006-01-02T00:00{JST}"])}),
         r"experiments\.e1\.train: .* holds no kept window \(0 windows lie inside", targets=SPLIT, prepared=True),
    Case("train period outside the data",
         lambda tmp: tiny(experiments={"e1": experiment(train=[f"2007-01-01T00:00{JST}", f"2007-03-01T00:00{JST}"])}),
         r"experiments\.e1\.train: .* lies outside the data", targets=SPLIT, prepared=True),
    Case("truncated intermediate under its final name (a partition of the totals cut in half)",
         lambda tmp: tiny(), r"totals/2000-01\.nc: not a readable NetCDF file .*truncated or corrupt - delete it and rerun",
         # threshold (its land cells, method auto: data_nan from the totals' counts) is the job that reads it
         targets=[SELECTION], prepared=True, damage=TOTALS, failed=[SELECTION]),
    Case("n_modes larger than the training matrix",
         lambda tmp: tiny(experiments={"e1": experiment(n_modes=500)}),
         r"experiments\.e1\.n_modes: 500 modes need at least as many training windows and cells, but the "
         r"selection keeps \d+ windows x \d+ cells", targets=[SVD], prepared=True, failed=[SVD]),
    # coverage rules and seasons (split); files inputs are daily from 2006-01-01 UTC: train = days 0..56
    # (19 windows), test = days 60..86 (9 windows)
    Case("no cell meets coverage.min_cell_fraction", staggered_gaps,
         r"coverage\.min_cell_fraction: no land cell of experiment e1 has data in at least 0\.95 of its 19 kept "
         r"training windows \(best cell coverage 0\.947", targets=SPLIT),
    Case("test period with every window below coverage.min_window_fraction", outage_over_the_test_period,
         r"coverage\.min_window_fraction: none of the 9 kept windows of experiments\.e1\.test .* has data in at "
         r"least 0\.8 of the \d+ chosen cells \(best window coverage 0\.\d+", targets=SPLIT),
    Case("window selection leaves fewer windows than n_modes (months: [1, 3])",
         lambda tmp: tiny(experiments={"e1": experiment(months=[1, 3], n_modes=12)}),
         r"experiments\.e1\.n_modes: 12 modes need at least as many training windows and cells, but the "
         r"selection keeps \d+ windows .*\(windows dropped: months \d+", targets=[SVD]),
    Case("months outside 1..12", lambda tmp: tiny(experiments={"e1": experiment(months=[12, 13])}),
         r"experiments\.e1\.months\.1: 13 is greater than the maximum of 12", targets=SPLIT, logged=False),
    Case("a season with no window in the train period (months: [7])",
         lambda tmp: tiny(experiments={"e1": experiment(months=[7])}),
         r"experiments\.e1\.months: none of the \d+ windows of experiments\.e1\.train .* starts \(UTC\) in "
         r"months \[7\]", targets=SPLIT),
]


@pytest.fixture(scope="module")
def prepared(tiny_run) -> Path:
    """The shared tiny demo run (raw, land mask, totals, selection, split, svd, nmf); cases copy it."""
    return tiny_run


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    good = precip_file(tmp_path_factory.mktemp("served") / "good.nc").read_bytes()
    with file_server({"good_2006.nc": good}) as state:
        state.serve_html("login_2006.nc")
        SERVED["url"] = state.url
        yield state


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, tmp_path, request, server):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    workdir = tmp_path / "work"
    before = {}
    if case.prepared:
        copy_run(request.getfixturevalue("prepared"), workdir)
        before = {p: data_vars(p) for p in (workdir / "results").rglob("*.nc")}
    if case.damage:
        damaged = workdir / case.damage
        damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
        before.pop(damaged)
    config = case.make(inputs)

    result = snakemake(workdir, config, case.targets, check=False)

    text = output_text(result)
    assert result.returncode != 0, f"snakemake accepted {case.name}:\n{text[-3000:]}"
    assert re.search(case.message, text), f"expected /{case.message}/ in the output:\n{text[-5000:]}"
    if case.logged:
        logs = {p: p.read_text() for p in (workdir / "results" / "logs").rglob("*.log")}
        failed_logs = [p for p, log in logs.items() if "Traceback (most recent call last)" in log]
        assert failed_logs, f"no rule log holds a traceback: {sorted(map(str, logs))}"
        assert any(re.search(case.message, logs[p]) for p in failed_logs), (
            f"expected /{case.message}/ in the failed job's log:\n"
            + "\n".join(f"{p}:\n{logs[p][-2000:]}" for p in failed_logs))
    failed = case.failed if case.failed is not None else case.targets
    assert_nothing_partial(workdir, failed, damaged=[case.damage] if case.damage else [])
    downloads = workdir / "downloads"  # source.http.cache_dir's default
    assert not (downloads.exists() and list(downloads.glob("*.nc"))), "a bad download was kept"
    for path, variables in before.items():
        if _upstream_of(path, failed):  # complete outputs before the failed step stay, with the same data
            assert path.exists(), f"{path} was removed"
            now = data_vars(path)
            for name, values in variables.items():
                np.testing.assert_array_equal(now[name], values, err_msg=f"{path}:{name}")


ORDER = [RAW, TOTALS, LAND_MASK, SELECTION, *SPLIT, SVD]  # land_mask and threshold read the totals' counts


def _upstream_of(path: Path, failed: list[str]) -> bool:
    """True when ``path`` comes before every failed target in the pipeline order (raw .. svd)."""
    position = next((i for i, name in enumerate(ORDER) if str(path).endswith(name)), len(ORDER))
    return all(position < ORDER.index(name) for name in failed)


def test_implausible_missing_sets_the_value_missing_and_counts_it(tmp_path):
    """source.implausible: missing - the absurd value becomes NaN as the partition reads it through the index,
    counted in the attributes and reported by file and cell in the partition job's log; the other values are
    kept as they were."""
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    config = one_bad_value(2.4e7, max_mm_per_hour=500, implausible="missing")(inputs)
    workdir = tmp_path / "work"
    snakemake(workdir, config, [TOTALS])
    precip = open_steps(workdir / RAW)["precip"].load()  # read through the index as the partitions read it
    assert precip.attrs["n_implausible_set_missing"] == 1
    assert np.isnan(precip.isel(time=17, lat=5, lon=9))
    assert int(precip.isnull().sum()) == 1
    with xr.open_dataset(inputs / "b.nc") as b:
        np.testing.assert_array_equal(precip.isel(time=slice(12, None)).values[:5], b["precip"].values[:5])
    log = "".join(p.read_text() for p in (workdir / "results" / "logs" / "accumulate_partition").glob("*.log"))
    assert re.search(r"1 value\(s\) above source\.max_mm_per_hour=500 mm/h .*/b\.nc: 1 in 1 step\(s\) "
                     r"2006-01-18T00:00.*\(lat 35\.5, lon 137\.5\): 1 step\(s\), largest 2\.4e\+07 mm; set missing", log)
