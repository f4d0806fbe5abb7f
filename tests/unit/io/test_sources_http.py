"""Source `http` against a real http.server on 127.0.0.1 (conftest.file_server) serving real files of ../shared/data."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from helpers.workflow import REPO, file_server

from precipmodes.config import section_defaults, validate_config
from precipmodes.errors import ConfigError, DownloadError
from precipmodes.io.netcdf import sha256_file
from precipmodes.io.sources import raw_files
from precipmodes.io.sources.http import download_files, open_http
from precipmodes.io.sources.urls import PRESETS, download_plan, period_urls, resolve

GPCP = "gpcp_1dd_2025-01-01.nc"
JAPAN = {"lon": [128.0, 148.0], "lat": [30.0, 46.0]}


@pytest.fixture
def server(shared_data):
    """conftest.file_server serving the real GPCP file as gpcp_2025.nc, and HTML pages as page*.nc."""
    with file_server({"gpcp_2025.nc": (shared_data / GPCP).read_bytes()}) as state:
        state.serve_html("page.nc")
        state.serve_html("page_octet.nc", "application/octet-stream")
        yield state


def http_options(**options):
    """Options of kind http, flat and complete (the schema's defaults for keys not in ``options``): what
    open_http, download_plan and raw_files take."""
    return {"kind": "http", **section_defaults("source.http", options)}


def http_source(server, tmp_path, name="gpcp_{year}.nc", **extra):
    """Options of kind http for ``name`` on ``server``, cached in tmp_path/cache, without retries."""
    return http_options(**{"url_template": f"{server.url}/{name}", "years": [2025, 2025], "variable": "precip",
                           "cache_dir": str(tmp_path / "cache"), "retries": 0, "backoff_s": 0.0, "timeout_s": 10,
                           **extra})


def fetch(source: dict) -> list[Path]:
    """What the workflow's download jobs do: download every file of ``download_plan``."""
    return [download_files(url=url, output=path, http=source, checksum=source["checksums"].get(Path(path).name))
            for path, url in download_plan(source).items()]


def download_to(cache: Path, url: str, checksum: str | None = None, **http) -> Path:
    """``download_files`` of ``url`` to its file name in ``cache``, with the source.http options ``http``."""
    return download_files(url=url, output=cache / url.rsplit("/", 1)[-1], http=http_options(**http),
                          checksum=checksum)


def test_download_then_cache_hit(server, tmp_path, shared_data, capsys):
    source = http_source(server, tmp_path, checksums={"gpcp_2025.nc": sha256_file(shared_data / GPCP)})
    with pytest.raises(DownloadError, match=r"gpcp_2025\.nc: not downloaded .*the workflow's download rule"):
        open_http(source, JAPAN)  # reading makes no request
    assert server.requests == []
    assert fetch(source) == [tmp_path / "cache" / "gpcp_2025.nc"]
    ds = open_http(source, JAPAN)
    assert len(server.requests) == 1
    assert "gpcp_2025.nc" in capsys.readouterr().err  # tqdm progress bar on stderr
    original = xr.open_dataset(shared_data / GPCP)["precip"]
    np.testing.assert_allclose(ds["precip"].values, original.sel(latitude=slice(30, 46),
                                                                   longitude=slice(128, 148)).values)
    assert sha256_file(tmp_path / "cache" / "gpcp_2025.nc") == sha256_file(shared_data / GPCP)
    fetch(source)
    again = open_http(source, JAPAN)
    assert len(server.requests) == 1  # the second download found the file in the cache
    np.testing.assert_array_equal(again["precip"].values, ds["precip"].values)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["gpcp_2025.nc"]


def test_checksum_mismatch_removes_partial_and_names_digests(server, tmp_path, shared_data):
    wrong = "0" * 64
    source = http_source(server, tmp_path, checksums={"gpcp_2025.nc": wrong})
    out = tmp_path / "out"
    with pytest.raises(DownloadError) as info:
        fetch(source)
    message = str(info.value)
    assert "checksum mismatch for gpcp_2025.nc" in message
    assert wrong in message and sha256_file(shared_data / GPCP) in message
    assert list((tmp_path / "cache").iterdir()) == []
    assert not out.exists() or list(out.iterdir()) == []


def test_404_names_the_url_without_retrying(server, tmp_path):
    source = http_source(server, tmp_path, name="missing_{year}.nc", retries=3)
    out = tmp_path / "out"
    with pytest.raises(DownloadError, match=rf"{server.url}/missing_2025.nc: HTTP 404"):
        fetch(source)
    assert len(server.requests) == 1
    assert list((tmp_path / "cache").iterdir()) == []
    assert not out.exists() or list(out.iterdir()) == []


def test_connection_refused_names_the_url(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/precip.2025.nc"
    with pytest.raises(DownloadError, match=rf"{url}: download failed after 2 attempt\(s\): cannot connect"):
        download_to(tmp_path / "cache", url, retries=1, backoff_s=0.0, timeout_s=5)
    assert list((tmp_path / "cache").iterdir()) == []


def test_html_instead_of_netcdf_is_refused(server, tmp_path):
    with pytest.raises(DownloadError, match="page.nc: the server sent an HTML page"):
        download_to(tmp_path / "cache", f"{server.url}/page.nc", retries=0)
    with pytest.raises(DownloadError, match="page_octet.nc: the downloaded file is an HTML/XML page"):
        download_to(tmp_path / "cache", f"{server.url}/page_octet.nc", retries=0)
    assert list((tmp_path / "cache").iterdir()) == []


def test_dropped_connection_then_rerun_resumes_and_verifies(server, tmp_path, shared_data):
    digest = sha256_file(shared_data / GPCP)
    url = f"{server.url}/gpcp_2025.nc"
    server.drop["gpcp_2025.nc"] = 1
    with pytest.raises(DownloadError, match="connection .* the partial file .*gpcp_2025.nc.part is kept"):
        download_to(tmp_path / "cache", url, checksum=digest, retries=0)
    part = tmp_path / "cache" / "gpcp_2025.nc.part"
    size = part.stat().st_size
    assert 0 < size < (shared_data / GPCP).stat().st_size
    final = download_to(tmp_path / "cache", url, checksum=digest, retries=0)
    assert server.requests[-1] == ("gpcp_2025.nc", f"bytes={size}-")  # resumed with a Range request
    assert sha256_file(final) == digest and not part.exists()


def test_retry_within_one_call_and_server_without_range(server, tmp_path, shared_data):
    digest = sha256_file(shared_data / GPCP)
    server.drop["gpcp_2025.nc"] = 1
    server.range_support = False          # the server answers 200 with the whole file: refetch
    final = download_to(tmp_path / "cache", f"{server.url}/gpcp_2025.nc", checksum=digest, retries=1, backoff_s=0.0)
    assert len(server.requests) == 2 and server.requests[1][1] is not None
    assert sha256_file(final) == digest


def test_presets_and_period_urls():
    cpc = resolve(http_options(preset="cpc_global_daily", years=[2006, 2007]))
    assert period_urls(cpc["url_template"], cpc["period"], [2006, 2007]) == [
        "https://downloads.psl.noaa.gov/Datasets/cpc_global_precip/precip.2006.nc",
        "https://downloads.psl.noaa.gov/Datasets/cpc_global_precip/precip.2007.nc"]
    assert (cpc["variable"], cpc["units"]) == ("precip", "mm")
    chirps = resolve(http_options(preset="chirps_daily", years=[1981, 1981]))
    assert period_urls(chirps["url_template"], "year", [1981, 1981]) == [
        "https://data.chc.ucsb.edu/products/CHIRPS-2.0/global_daily/netcdf/p05/chirps-v2.0.1981.days_p05.nc"]
    assert chirps["units"] == "mm/day" and PRESETS["chirps_daily"]["opendap_template"] is None
    assert len(period_urls("x/{year}{month:02d}.nc", "month", [2001, 2002])) == 24
    assert len(period_urls("x/{year}{month:02d}{day:02d}.nc", "day", [2000, 2000])) == 366
    with pytest.raises(DownloadError, match=r"source\.http\.years"):
        resolve(http_options(preset="cpc_global_daily"))
    with pytest.raises(DownloadError, match="no OPeNDAP endpoint"):
        open_http(http_options(preset="chirps_daily", years=[2001, 2001], opendap=True), JAPAN)


def test_schema_fills_http_defaults_and_rejects_unknown_preset():
    base = {"domain": JAPAN, "experiments": {"e": {"train": ["2006-01-01T00:00Z", "2007-01-01T00:00Z"],
                                                    "test": ["2007-01-01T00:00Z", "2008-01-01T00:00Z"]}}}
    source = {"kind": "http", "http": {"preset": "cpc_global_daily", "years": [2006, 2007]}}
    options = validate_config({**base, "source": source})["source"]["http"]
    assert options["cache_dir"] == "downloads" and options["backoff_s"] == 2.0
    assert download_plan(options) == {
        "downloads/precip.2006.nc": "https://downloads.psl.noaa.gov/Datasets/cpc_global_precip/precip.2006.nc",
        "downloads/precip.2007.nc": "https://downloads.psl.noaa.gov/Datasets/cpc_global_precip/precip.2007.nc"}
    with pytest.raises(ConfigError, match=r"source\.http\.preset: 'cpc' is not allowed"):
        validate_config({**base, "source": {"kind": "http", "http": {"preset": "cpc", "years": [2006, 2007]}}})


def test_two_urls_with_one_file_name_are_refused():
    with pytest.raises(DownloadError, match=r"source\.http\.url_template: .*/2006/precip\.nc and .*/2007/precip\.nc "
                                            r"end in the same file name 'precip\.nc'"):
        download_plan(http_options(url_template="https://example.org/{year}/precip.nc", variable="p",
                                   years=[2006, 2007]))


def test_opendap_unreachable_names_the_url(server, tmp_path):
    source = http_source(server, tmp_path, name="nothing_{year}.nc", opendap=True)
    with pytest.raises(DownloadError, match=rf"{server.url}/nothing_2025.nc: cannot be opened"):
        open_http(source, JAPAN)


# --- OPeNDAP against a real DAP server (pydap) on 127.0.0.1 ------------------------------------------

EOBS = "eobs_iberia_pr_djf_1982-2002.nc"
CENTRAL_SPAIN = {"lon": [-5.0, 0.0], "lat": [38.0, 42.0]}  # 10 of 29 lon, 8 of 19 lat cells of the file


@pytest.fixture(scope="module")
def dap_server(shared_data, tmp_path_factory):
    """pydap's DAP2 server (tests/helpers/dap_server.py) in a subprocess serving ../shared/data; yields
    (base URL, file of the request paths and queries it received)."""
    import subprocess
    import sys

    pytest.importorskip("pydap.wsgi.app", reason="the OPeNDAP tests need pydap[server] (the test extras)")
    requests_log = tmp_path_factory.mktemp("dap") / "requests.txt"
    requests_log.touch()
    process = subprocess.Popen([sys.executable, str(REPO / "tests" / "helpers" / "dap_server.py"), str(shared_data),
                                str(requests_log)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = process.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        process.kill()
        pytest.fail(f"the DAP server did not start: {process.stderr.read()[-3000:]}")
    yield url, requests_log
    process.terminate()
    process.wait(timeout=10)


def data_requests(requests_log: Path, variable: str) -> list[list[tuple[int, int]]]:
    """The index ranges [(first, last), ...] of every DAP data request for ``variable``."""
    import re
    from urllib.parse import unquote

    ranges = []
    for line in requests_log.read_text().splitlines():
        path, _, query = line.partition("?")
        if path.endswith(".dods") and unquote(query).startswith(f"{variable}["):
            ranges.append([(int(a), int(b)) for a, b in re.findall(r"\[(\d+):(?:\d+:)?(\d+)\]", unquote(query))])
    return ranges


def test_opendap_reads_only_the_domain_from_a_dap_server(dap_server, shared_data, tmp_path):
    url, requests_log = dap_server
    source = http_options(url_template=f"{url}/{EOBS}", years=[1982, 1982], variable="pr", opendap=True,
                          cache_dir=str(tmp_path / "cache"), chunks={"time": 744})
    start = len(data_requests(requests_log, "pr"))
    out = raw_files(source=source, domain=CENTRAL_SPAIN, output=tmp_path / "raw.nc")
    with xr.open_dataset(shared_data / EOBS) as original, xr.open_dataset(out) as raw:
        expected = original["pr"].sel(lat=slice(38, 42), lon=slice(-5, 0))
        assert raw["precip"].shape == expected.shape == (1805, 8, 10)
        np.testing.assert_array_equal(raw["precip"].values, expected.values)  # NaN sea stays NaN
        np.testing.assert_array_equal(raw["lat"].values, expected["lat"].values)
        lat_index = np.flatnonzero(np.isin(original["lat"].values, expected["lat"].values))
        lon_index = np.flatnonzero(np.isin(original["lon"].values, expected["lon"].values))
    requests = data_requests(requests_log, "pr")[start:]
    assert requests, "no data request reached the DAP server"
    domain = [(int(lat_index[0]), int(lat_index[-1])), (int(lon_index[0]), int(lon_index[-1]))]
    assert all(ranges[1:] == domain for ranges in requests), requests  # never more than the domain
    assert sorted({ranges[0] for ranges in requests}) == [(0, 743), (744, 1487), (1488, 1804)]  # time chunks
    assert not (tmp_path / "cache").exists()  # nothing downloaded


# --- data safety (issue #25): one writer per cache file, an overall deadline, content checked by name -------

def lock_of(final: Path) -> Path:
    """The one-writer lock beside a cached file (sources.http: ``.<name>.lock``)."""
    return final.with_name(f".{final.name}.lock")


def test_poisoned_download_is_refused_and_not_cached(server, tmp_path):
    """GRIB bytes (or anything else) under a .nc name: refused before caching, so a rerun asks again."""
    server.files["poison.nc"] = b"GRIB" + bytes(range(256)) * 40
    url = f"{server.url}/poison.nc"
    for attempt in (1, 2):
        with pytest.raises(DownloadError, match=rf"{url}: the downloaded file is not a NetCDF .* file \(starts "
                                                r"with b'GRIB.*its name promises NetCDF.*nothing was saved as "
                                                r".*poison\.nc\)"):
            download_to(tmp_path / "cache", url, retries=0)
        assert list((tmp_path / "cache").iterdir()) == []  # no file, no .part, no lock
        assert len(server.requests) == attempt  # nothing was cached: the rerun made a request


def test_grib_name_must_hold_grib(server, tmp_path, shared_data):
    """A .grib name promises GRIB: a NetCDF file under it is refused, GRIB bytes are kept."""
    server.files["wrong.grib"] = (shared_data / GPCP).read_bytes()
    with pytest.raises(DownloadError, match=r"wrong\.grib: the downloaded file is not a GRIB file \(starts with "
                                            r"b'\\x89HDF"):
        download_to(tmp_path / "cache", f"{server.url}/wrong.grib", retries=0)
    server.files["right.grb2"] = b"GRIB" + bytes(100)
    assert download_to(tmp_path / "cache", f"{server.url}/right.grb2", retries=0).read_bytes().startswith(b"GRIB")
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["right.grb2"]


def test_dripping_server_hits_the_deadline_with_the_bytes_received(server, tmp_path, shared_data):
    """A server sending a byte every 0.3 s never trips timeout_s (3 s per read); deadline_s ends the file,
    the message counts the bytes that arrived (all in the .part), and a rerun resumes from there."""
    url = f"{server.url}/gpcp_2025.nc"
    server.drip["gpcp_2025.nc"] = 0.3
    with pytest.raises(DownloadError, match=r"not complete after source\.http\.deadline_s = 2 s") as info:
        download_to(tmp_path / "cache", url, timeout_s=3, deadline_s=2, retries=3, backoff_s=0.0)
    part = tmp_path / "cache" / "gpcp_2025.nc.part"
    received = int(str(info.value).split(" s: ")[1].split(" bytes received")[0])
    assert 0 < received == part.stat().st_size <= server.sent["gpcp_2025.nc"]
    assert f"{received} of {(shared_data / GPCP).stat().st_size} bytes in the partial file {part}" in str(info.value)
    assert len(server.requests) == 1  # the deadline covers the retries too
    del server.drip["gpcp_2025.nc"]
    final = download_to(tmp_path / "cache", url, checksum=sha256_file(shared_data / GPCP), retries=0)
    assert server.requests[-1] == ("gpcp_2025.nc", f"bytes={received}-")
    assert sha256_file(final) == sha256_file(shared_data / GPCP)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["gpcp_2025.nc"]


def test_a_download_waits_for_the_writer_holding_the_lock(server, tmp_path, shared_data):
    """Another process downloading the file holds its lock: this one waits (no request, no Range on its
    .part), fails at the deadline naming the holder when the file never comes, and succeeds with the
    holder's verified file once it is there."""
    import fcntl

    final = tmp_path / "cache" / "gpcp_2025.nc"
    final.parent.mkdir()
    lock = lock_of(final)
    with open(lock, "w") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        holder.write("otherhost 4242\n")
        holder.flush()
        with pytest.raises(DownloadError, match=r"gpcp_2025\.nc is being downloaded by host otherhost pid 4242 "
                                                r".*source\.http\.deadline_s = 1 s"):
            download_to(final.parent, f"{server.url}/gpcp_2025.nc", deadline_s=1)
        assert server.requests == [] and lock.exists() and not final.exists()
        final.write_bytes((shared_data / GPCP).read_bytes())  # the holder renames its verified file into place
        assert download_to(final.parent, f"{server.url}/gpcp_2025.nc", deadline_s=1) == final
        assert server.requests == []
    assert sha256_file(final) == sha256_file(shared_data / GPCP)


def test_a_lock_left_by_a_dead_writer_does_not_block(server, tmp_path, shared_data):
    """A killed writer leaves its lock file, but the kernel let go of its lock: the next run downloads."""
    final = tmp_path / "cache" / "gpcp_2025.nc"
    final.parent.mkdir()
    lock_of(final).write_text("otherhost 4242\n")
    assert download_to(final.parent, f"{server.url}/gpcp_2025.nc", deadline_s=5) == final
    assert sha256_file(final) == sha256_file(shared_data / GPCP)
    assert sorted(p.name for p in final.parent.iterdir()) == ["gpcp_2025.nc"]  # the lock file removed


@pytest.mark.parametrize("template", ["file:///data/p_{year}.nc", "ftp://example.org/p_{year}.nc", "/data/p_{year}.nc"])
def test_non_http_urls_are_refused_when_the_plan_is_made(template, tmp_path):
    with pytest.raises(DownloadError, match=r"source\.http\.url_template: .* is not an http:// or https:// URL "
                                            r".*source\.kind files"):
        download_plan(http_options(url_template=template, variable="precip", years=[2006, 2006]))
    with pytest.raises(DownloadError, match=r"is not an http:// or https:// URL"):
        download_to(tmp_path / "cache", template.format(year=2006))
    assert not (tmp_path / "cache").exists()


def test_zarr_store_url_is_refused():
    with pytest.raises(DownloadError, match=r"p_2006\.zarr: a Zarr store is a folder"):
        download_plan(http_options(url_template="https://example.org/p_{year}.zarr", variable="p", years=[2006, 2006]))
