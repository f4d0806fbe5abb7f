"""Source ``http``: files from URL templates, downloaded once into a cache, then read as ``files``.

The workflow's ``download`` rule fetches each file (:func:`download_files`, one job per file, run where
Snakemake runs: compute nodes are often offline); ``raw`` then reads the cached files
(:func:`open_http`) and makes no request. :func:`download_plan` says which files go where.

One URL per period (``source.http.period``: year, month or day over ``source.http.years``
[first, last], inclusive) from ``source.http.url_template`` (fields ``{year}``,
``{month}``, ``{day}`` as integers, so ``{month:02d}`` works) or a preset
(:data:`PRESETS`). Each file is

* taken from ``source.http.cache_dir`` when already there (no request; with a known
  checksum the cached file is verified, and refetched when it does not match);
* otherwise downloaded to ``<name>.part`` with a tqdm progress bar on stderr,
  resuming a ``.part`` left by an interrupted run with an HTTP Range request
  (servers that ignore Range send the whole file, which is then refetched),
  retried ``source.http.retries`` times with exponential backoff on connection
  errors, timeouts, 5xx and truncated transfers;
* verified (sha256 from ``source.http.checksums`` ``{filename: sha256}`` when given,
  and always the NetCDF/HDF5/GRIB signature, so an HTML page is refused) and only
  then renamed to its final name. A failed verification removes the ``.part``.

With ``source.http.opendap: true`` nothing is downloaded: the OPeNDAP URLs are opened
lazily and only the domain subset is read when the raw file is written.
"""

from __future__ import annotations

import calendar
import os
import sys
import time
from pathlib import Path
from typing import Mapping
from urllib.parse import unquote, urlparse

import requests
from tqdm import tqdm

from ..errors import DownloadError
from ..logs import log
from ..netcdf import sha256_file
from .files import open_paths

PRESETS: dict[str, dict] = {
    "cpc_global_daily": {
        "url_template": "https://downloads.psl.noaa.gov/Datasets/cpc_global_precip/precip.{year}.nc",
        "opendap_template": "https://psl.noaa.gov/thredds/dodsC/Datasets/cpc_global_precip/precip.{year}.nc",
        "variable": "precip", "units": "mm", "period": "year",
        "description": "NOAA PSL CPC Global Unified Gauge-Based daily precipitation, 0.5 deg, 1979-",
    },
    "chirps_daily": {
        "url_template": ("https://data.chc.ucsb.edu/products/CHIRPS-2.0/global_daily/netcdf/p05/"
                         "chirps-v2.0.{year}.days_p05.nc"),
        "opendap_template": None,
        "variable": "precip", "units": "mm/day", "period": "year",
        "description": "CHIRPS v2.0 daily precipitation, 0.05 deg, 50S-50N, 1981-",
    },
}
SIGNATURES = (b"CDF\x01", b"CDF\x02", b"CDF\x05", b"\x89HDF\r\n\x1a\n", b"GRIB")
BLOCK = 1 << 16  # small blocks: a dropped connection loses at most 64 KiB of the .part


class _Retryable(Exception):
    """A transfer problem worth another attempt (the .part file is kept for resuming)."""


def resolve(source: Mapping) -> dict:
    """Effective settings: the preset's, overridden by the keys the user set (``source``: the complete
    options of kind http)."""
    preset = source["preset"]
    spec = dict(PRESETS[preset]) if preset else {"opendap_template": None}
    for key in ("url_template", "variable", "units"):
        if source[key]:
            spec[key] = source[key]
    if source["url_template"]:
        spec["period"] = source["period"]
        spec["opendap_template"] = source["url_template"]
    spec.setdefault("period", source["period"])
    if not spec.get("url_template") or not spec.get("variable"):
        raise DownloadError("source.http: kind http needs source.http.preset (cpc_global_daily, chirps_daily) "
                            "or both source.http.url_template and source.http.variable")
    if not source.get("years"):
        raise DownloadError("source.http.years: set [first, last] (inclusive) for the files to fetch")
    return spec


def period_urls(template: str, period: str, years: list[int]) -> list[str]:
    """One URL per year, month or day of ``years`` [first, last] (inclusive), in time order."""
    urls = []
    for year in range(years[0], years[1] + 1):
        months = range(1, 13) if period in ("month", "day") else [1]
        for month in months:
            days = range(1, calendar.monthrange(year, month)[1] + 1) if period == "day" else [1]
            urls += [template.format(year=year, month=month, day=day) for day in days]
    return list(dict.fromkeys(urls))


def _filename(url: str) -> str:
    name = unquote(os.path.basename(urlparse(url).path))
    if not name:
        raise DownloadError(f"{url}: the URL does not end in a file name; fix source.http.url_template")
    return name


def download_plan(source: Mapping) -> dict[str, str]:
    """``{local path in source.http.cache_dir: URL}`` of every file to download, in time order.

    Raises DownloadError when two URLs end in the same file name (the cache keeps one file per name).
    """
    spec = resolve(source)
    cache = Path(source["cache_dir"])
    plan: dict[str, str] = {}
    for url in period_urls(spec["url_template"], spec["period"], source["years"]):
        path = str(cache / _filename(url))
        if path in plan:
            raise DownloadError(f"source.http.url_template: {plan[path]} and {url} end in the same file name "
                                f"{_filename(url)!r}; the download cache keeps one file per name, so put the "
                                "fields that vary ({year}, {month}, {day}) into the file name")
        plan[path] = url
    return plan


def _fetch(url: str, part: Path, timeout: float) -> None:
    """Download ``url`` into ``part``, resuming it with a Range request when it exists."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        response = requests.get(url, stream=True, timeout=timeout, headers=headers)
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise _Retryable(f"cannot connect ({type(exc).__name__}: {exc})") from exc
    with response:
        status = response.status_code
        if status == 416:
            part.unlink()
            raise _Retryable("the server refused to resume the partial file; starting again")
        if status in (429,) or status >= 500:
            raise _Retryable(f"HTTP {status} {response.reason}")
        if status not in (200, 206):
            raise DownloadError(f"{url}: HTTP {status} {response.reason}; check the URL (source.http.url_template, "
                                "source.http.preset) and source.http.years")
        content_type = response.headers.get("Content-Type", "")
        if "text/html" in content_type:
            raise DownloadError(f"{url}: the server sent an HTML page (Content-Type {content_type}) instead of a "
                                "data file; the URL is probably wrong or needs a login")
        if status == 200:
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        written = offset
        try:
            with open(part, "ab" if offset else "wb") as handle, tqdm(
                    total=total, initial=offset, unit="B", unit_scale=True, desc=part.name[:-5],
                    file=sys.stderr, mininterval=1.0) as bar:
                for block in response.iter_content(BLOCK):
                    handle.write(block)
                    written += len(block)
                    bar.update(len(block))
        except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError, requests.Timeout) as exc:
            raise _Retryable(f"connection lost after {written} bytes ({type(exc).__name__})") from exc
        if total is not None and written < total:
            raise _Retryable(f"connection closed after {written} of {total} bytes")


def _verify(path: Path, name: str, url: str, expected: str | None) -> None:
    """Check the data-file signature and, when known, the sha256 of ``name``; remove ``path`` when wrong."""
    with open(path, "rb") as handle:
        head = handle.read(8)
    problem = None
    if expected:
        actual = sha256_file(path)
        if actual.lower() != expected.lower():
            problem = (f"checksum mismatch for {name}: "
                       f"expected sha256 {expected.lower()}, got {actual}; if the file changed upstream, update "
                       f"source.http.checksums")
    if problem is None and not head.startswith(SIGNATURES):
        kind = "an HTML/XML page" if head.lstrip().startswith(b"<") else "not a NetCDF, HDF5 or GRIB file"
        problem = f"the downloaded file is {kind} (starts with {head!r}); check the URL"
    if problem is None and not head.startswith(b"GRIB"):
        problem = _unreadable(path)
    if problem:
        path.unlink()
        raise DownloadError(f"{url}: {problem}; the download was removed, rerun to fetch it again")


def _unreadable(path: Path) -> str | None:
    """Why a downloaded NetCDF/HDF5 file cannot be opened (e.g. cut short by a server that sent no
    Content-Length, so the transfer looked complete), or None when it opens."""
    import netCDF4

    try:
        netCDF4.Dataset(path).close()
    except OSError as exc:
        return f"the downloaded file cannot be opened as NetCDF ({exc}); it is probably truncated"
    return None


def download_files(*, url: str, output: str | os.PathLike, http: Mapping, checksum: str | None = None) -> Path:
    """Rule download: ``output`` (a file in ``source.http.cache_dir``, named as :func:`download_plan` says),
    the cached local copy of ``url``, downloading and verifying it if needed.

    ``http``: the complete ``source.http`` options (``retries``, ``timeout_s``, ``backoff_s``: the first
    wait between retries in seconds, doubling each retry); ``checksum``: the sha256 the file must have
    (``source.http.checksums``), None to check only that it is a data file.
    """
    final = Path(output)
    name = final.name
    retries, timeout, backoff = http["retries"], http["timeout_s"], http["backoff_s"]
    if final.exists():
        if not checksum or sha256_file(final).lower() == checksum.lower():
            log.info("http: %s from the cache", final)
            return final
        log.warning("http: cached %s does not match source.http.checksums; fetching it again", final)
        final.unlink()
    final.parent.mkdir(parents=True, exist_ok=True)
    part = final.with_name(name + ".part")
    for attempt in range(retries + 1):
        try:
            log.info("http: fetching %s%s", url, f" (resuming at {part.stat().st_size} bytes)"
                     if part.exists() else "")
            _fetch(url, part, timeout)
            break
        except _Retryable as exc:
            if attempt == retries:
                kept = f"; the partial file {part} is kept and a rerun resumes it" if part.exists() else ""
                raise DownloadError(f"{url}: download failed after {retries + 1} attempt(s): {exc}{kept}") from exc
            wait = backoff * 2 ** attempt
            log.warning("http: %s: %s; retrying in %.1f s", url, exc, wait)
            time.sleep(wait)
    _verify(part, name, url, checksum)
    os.replace(part, final)
    log.info("http: saved %s (%d bytes)", final, final.stat().st_size)
    return final


def open_http(source: Mapping, domain: Mapping):
    """Canonical raw dataset (lazy) of ``source``: the downloaded files in ``source.http.cache_dir``, or with
    ``source.http.opendap`` the OPeNDAP URLs, of which only the domain is read. Makes no download."""
    spec = resolve(source)
    # http has no lon_convention / lat_order options: the files' own conventions are detected ("auto")
    settings = {**source, "variable": spec["variable"], "units": source["units"] or spec.get("units"),
                "lon_convention": "auto", "lat_order": "auto"}
    if source["opendap"]:
        template = spec.get("opendap_template")
        if not template:
            raise DownloadError(f"source.http.opendap: preset {source['preset']!r} has no OPeNDAP endpoint; "
                                "set source.http.opendap: false to download the files, or give an OPeNDAP "
                                "source.http.url_template")
        urls = period_urls(template, spec["period"], source["years"])
        return open_paths(urls, settings, domain, origin=f"OPeNDAP {urls[0]}", error=DownloadError)
    plan = download_plan(source)
    absent = [path for path in plan if not Path(path).is_file()]
    if absent:
        raise DownloadError(f"{absent[0]}: not downloaded (from {plan[absent[0]]}); the workflow's download rule "
                            "fetches it (run snakemake), or call precipmodes.sources.http.download_files")
    return open_paths(list(plan), settings, domain)
