"""The files of an ``http`` source: the URLs of its periods and years, checked, and the local name of each
(the download plan)."""

from __future__ import annotations

import calendar
import os
from pathlib import Path
from typing import Mapping
from urllib.parse import unquote, urlparse

from precipmodes.errors import DownloadError

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
SCHEMES = ("http", "https")


def check_url(url: str, key: str = "source.http.url_template") -> None:
    """Refuse a URL that is not http(s) (``file://``, ``ftp://``, a bare path), naming config ``key``."""
    scheme = urlparse(url).scheme.lower()
    if scheme not in SCHEMES:
        raise DownloadError(f"{key}: {url!r} is not an http:// or https:// URL (scheme {scheme or 'none'!r}); "
                            "source.kind http downloads over HTTP(S) only: for files on this machine use "
                            "source.kind files (source.files.paths)")


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
    check_url(spec["url_template"])
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
    if name.lower().endswith(".zarr"):
        raise DownloadError(f"{url}: a Zarr store is a folder of many files, not one file the download rule can "
                            "fetch; copy the store to this machine and use source.kind files (source.files.paths)")
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
