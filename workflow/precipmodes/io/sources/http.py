"""Source ``http``: files from URL templates, downloaded once into a cache, then read as ``files``.

The workflow's ``download`` rule fetches each file (:func:`download_files`, one job per file, run where
Snakemake runs: compute nodes are often offline); ``raw`` then reads the cached files
(:func:`open_http`) and makes no request. :func:`download_plan` says which files go where.

One URL per period (``source.http.period``: year, month or day over ``source.http.years``
[first, last], inclusive) from ``source.http.url_template`` (fields ``{year}``,
``{month}``, ``{day}`` as integers, so ``{month:02d}`` works) or a preset
(:data:`~precipmodes.io.sources.urls.PRESETS`); only ``http://`` and ``https://`` URLs are accepted (checked when the
plan is made).
Each file is

* written by one process at a time: the writer holds a lock (``flock`` on ``.<name>.lock`` beside the
  file, released by the kernel when the writer dies, removed by the writer when done), so runs that share
  ``source.http.cache_dir`` (also from several hosts on NFS) never write into each other's download; a
  second run waits for the lock and then takes the first run's verified file;
* taken from ``source.http.cache_dir`` when already there (no request; the cached file is verified
  like a download, and refetched when it does not pass);
* otherwise downloaded to ``<name>.part`` (only ever written by the lock holder) with a tqdm progress
  bar on stderr, resuming a ``.part`` left by an interrupted run with an HTTP Range request
  (servers that ignore Range send the whole file, which is then refetched),
  retried ``source.http.retries`` times with exponential backoff on connection
  errors, timeouts, 5xx and truncated transfers, all within ``source.http.deadline_s`` (waiting for
  another run's download included; ``source.http.timeout_s`` only bounds each read);
* verified (sha256 from ``source.http.checksums`` ``{filename: sha256}`` when given, and always the
  signature of the format its name promises: GRIB for ``.grib``/``.grb*`` names, NetCDF classic or HDF5
  for every other name, which the ``raw`` rule opens as NetCDF; an HTML page or another format is
  refused) and only then renamed to its final name. A failed verification removes the ``.part``;
  nothing is cached.

With ``source.http.opendap: true`` nothing is downloaded: the OPeNDAP URLs are opened
lazily and only the domain subset is read when the raw file is written.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sys
import time
from pathlib import Path
from typing import Iterator, Mapping

import requests
import urllib3
from tqdm import tqdm

from precipmodes.errors import DownloadError
from precipmodes.io.netcdf import sha256_file
from precipmodes.io.owned import hostname, remove_owned
from precipmodes.io.sources.files import GRIB_SUFFIXES, open_paths
from precipmodes.io.sources.urls import check_url, download_plan, period_urls, resolve
from precipmodes.logs import log

#: what a file must start with, by the format its name promises (the ``raw`` rule's reader: cfgrib for
#: GRIB names, netCDF4 for every other name)
NETCDF_SIGNATURES = (b"CDF\x01", b"CDF\x02", b"CDF\x05", b"\x89HDF\r\n\x1a\n")
GRIB_SIGNATURES = (b"GRIB",)
BLOCK = 1 << 16  # at most this much per read; a read returns what has arrived, so the deadline is checked
LOCK_POLL_S = 0.5  # how often a waiting run tries the lock again


class _Retryable(Exception):
    """A transfer problem worth another attempt (the .part file is kept for resuming)."""


def expected_format(name: str) -> tuple[str, tuple[bytes, ...]]:
    """(format, signatures) a file called ``name`` must have: what the ``raw`` rule will open it as."""
    if name.lower().endswith(GRIB_SUFFIXES):
        return "GRIB", GRIB_SIGNATURES
    return "NetCDF (classic or NetCDF-4/HDF5)", NETCDF_SIGNATURES


def _problem(path: Path, name: str, expected: str | None) -> str | None:
    """Why ``path`` is not a good copy of file ``name`` (checksum ``expected`` when known, the signature of
    the format the name promises, a NetCDF that opens), or None when it is."""
    if expected:
        actual = sha256_file(path)
        if actual.lower() != expected.lower():
            return (f"checksum mismatch for {name}: expected sha256 {expected.lower()}, got {actual}; if the "
                    "file changed upstream, update source.http.checksums")
    with open(path, "rb") as handle:
        head = handle.read(8)
    kind, signatures = expected_format(name)
    if not head.startswith(signatures):
        what = "an HTML/XML page" if head.lstrip().startswith(b"<") else f"not a {kind} file"
        return f"the downloaded file is {what} (starts with {head!r}), but its name promises {kind}; check the URL"
    if signatures is NETCDF_SIGNATURES:
        return _unreadable(path)
    return None


def _unreadable(path: Path) -> str | None:
    """Why a NetCDF/HDF5 file cannot be opened (e.g. cut short by a server that sent no Content-Length, so
    the transfer looked complete), or None when it opens."""
    import netCDF4

    try:
        netCDF4.Dataset(path).close()
    except OSError as exc:
        return f"the downloaded file cannot be opened as NetCDF ({exc}); it is probably truncated"
    return None


def _lock_holder(lock: Path) -> str:
    """Who holds ``lock`` as its holder wrote it ("host <name> pid <n>"), for messages."""
    try:
        host, pid = lock.read_text().split()
    except (OSError, ValueError):
        return "another process"
    return f"host {host} pid {pid}"


def _try_lock(lock: Path) -> int | None:
    """An open descriptor of ``lock`` holding its exclusive flock, or None while another process holds it.

    The holder removes the lock file when done, so a lock taken on a file that was meanwhile removed
    (or replaced) is let go and taken again on the file now at ``lock``.
    """
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return None
        raise DownloadError(f"{lock}: cannot lock files in source.http.cache_dir {str(lock.parent)!r} ({exc}); "
                            "put the cache on a file system with file locks (a local disk, NFS)") from exc
    try:
        current = os.stat(lock)
    except FileNotFoundError:
        current = None
    opened = os.fstat(fd)
    if current is None or (current.st_dev, current.st_ino) != (opened.st_dev, opened.st_ino):
        os.close(fd)
        return _try_lock(lock)
    return fd


@contextlib.contextmanager
def _writer_lock(final: Path, deadline: float) -> Iterator[str | None]:
    """Hold the one-writer lock of ``final`` (``.<name>.lock`` beside it), waiting for another writer
    until ``deadline`` (time.monotonic). Yields None when held, else who still holds it at the deadline."""
    lock = final.with_name(f".{final.name}.lock")
    fd = _try_lock(lock)
    if fd is None:
        log.info("http: %s is being downloaded by %s (lock %s); waiting for it", final, _lock_holder(lock), lock)
    while fd is None and time.monotonic() < deadline:
        time.sleep(min(LOCK_POLL_S, max(deadline - time.monotonic(), 0.0)))
        fd = _try_lock(lock)
    if fd is None:
        yield _lock_holder(lock)
        return
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{hostname()} {os.getpid()}\n".encode())
        yield None
    finally:
        remove_owned(lock, declared=[lock])  # still ours: removed before the flock is let go
        os.close(fd)


def _deadline_error(url: str, part: Path, deadline_s: float, received: int, written: int,
                    total: int | None) -> DownloadError:
    """The DownloadError of a file not complete at source.http.deadline_s: ``received`` bytes in the last
    attempt, ``written`` (of ``total``, when known) in the partial file ``part``."""
    of = f" of {total}" if total is not None else ""
    kept = ", which is kept (a rerun resumes it)" if written else ""
    return DownloadError(f"{url}: not complete after source.http.deadline_s = {deadline_s:g} s: {received} bytes "
                         f"received in the last attempt, {written}{of} bytes in the partial file {part}{kept}; "
                         "raise source.http.deadline_s for a slow server")


def _fetch(url: str, part: Path, timeout: float, deadline: float, deadline_s: float) -> None:
    """Download ``url`` into ``part``, resuming it with a Range request when it exists, giving up with a
    DownloadError at ``deadline`` (time.monotonic)."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={offset}-"} if offset else {})}
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _deadline_error(url, part, deadline_s, 0, offset, None)
    try:
        response = requests.get(url, stream=True, timeout=min(timeout, remaining), headers=headers)
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise _Retryable(f"cannot connect ({type(exc).__name__}: {exc})") from exc
    with response:
        status = response.status_code
        if status == 416:
            remove_owned(part, declared=[part])
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
        received = 0
        complete = False
        try:
            with open(part, "ab" if offset else "wb") as handle, tqdm(
                    total=total, initial=offset, unit="B", unit_scale=True, desc=part.name[:-5],
                    file=sys.stderr, mininterval=1.0) as bar:
                while time.monotonic() < deadline:
                    block = response.raw.read1(BLOCK, decode_content=True)  # what has arrived, b"" at the end
                    if not block:
                        complete = True
                        break
                    handle.write(block)
                    received += len(block)
                    bar.update(len(block))
        except (urllib3.exceptions.HTTPError, requests.RequestException) as exc:
            raise _Retryable(f"connection lost after {received} bytes received ({type(exc).__name__}); "
                             f"{offset + received}{'' if total is None else f' of {total}'} bytes in {part.name}"
                             ) from exc
        if not complete:
            raise _deadline_error(url, part, deadline_s, received, offset + received, total)
        if total is not None and offset + received < total:
            raise _Retryable(f"connection closed after {offset + received} of {total} bytes")


def _download(url: str, final: Path, http: Mapping, checksum: str | None, deadline: float) -> None:
    """Download ``url`` to ``final`` through ``<name>.part`` (resumed), verify it, rename it into place.
    The caller holds the writer lock of ``final``."""
    part = final.with_name(final.name + ".part")
    retries, timeout, backoff = http["retries"], http["timeout_s"], http["backoff_s"]
    for attempt in range(retries + 1):
        try:
            log.info("http: fetching %s%s", url, f" (resuming at {part.stat().st_size} bytes)"
                     if part.exists() else "")
            _fetch(url, part, timeout, deadline, http["deadline_s"])
            break
        except _Retryable as exc:
            wait = backoff * 2 ** attempt
            if attempt == retries or time.monotonic() + wait >= deadline:
                kept = f"; the partial file {part} is kept and a rerun resumes it" if part.exists() else ""
                limit = "" if attempt == retries else f" (source.http.deadline_s = {http['deadline_s']:g} s)"
                raise DownloadError(f"{url}: download failed after {attempt + 1} attempt(s){limit}: {exc}{kept}"
                                    ) from exc
            log.warning("http: %s: %s; retrying in %.1f s", url, exc, wait)
            time.sleep(wait)
    problem = _problem(part, final.name, checksum)
    if problem:
        remove_owned(part, declared=[part])
        raise DownloadError(f"{url}: {problem}; the download was removed, rerun to fetch it again (nothing was "
                            f"saved as {final})")
    os.replace(part, final)
    log.info("http: saved %s (%d bytes)", final, final.stat().st_size)


def download_files(*, url: str, output: str | os.PathLike, http: Mapping, checksum: str | None = None) -> Path:
    """Rule download: ``output`` (a file in ``source.http.cache_dir``, named as :func:`download_plan` says),
    the cached local copy of ``url``, downloading and verifying it if needed.

    ``http``: the complete ``source.http`` options (``retries``, ``timeout_s``: the limit of each read,
    ``deadline_s``: the limit for the whole file, ``backoff_s``: the first wait between retries in seconds,
    doubling each retry); ``checksum``: the sha256 the file must have (``source.http.checksums``), None to
    check only that it has the format its name promises.

    Another process downloading the same file (another run sharing the cache) is waited for, and its
    verified file used; when it is still at it after ``deadline_s`` and the file is not there, a
    DownloadError names it. A file this call did not write is never removed.
    """
    check_url(url, "url")
    final = Path(output)
    deadline = time.monotonic() + http["deadline_s"]
    final.parent.mkdir(parents=True, exist_ok=True)
    with _writer_lock(final, deadline) as holder:
        problem = _problem(final, final.name, checksum) if final.exists() else None
        if final.exists() and problem is None:
            log.info("http: %s from the cache", final)
            return final
        if holder is not None:
            raise DownloadError(f"{url}: {final} is being downloaded by {holder} (another run sharing "
                                f"source.http.cache_dir) and was not done within source.http.deadline_s = "
                                f"{http['deadline_s']:g} s; rerun when it is done, or raise source.http.deadline_s")
        if problem:
            log.warning("http: cached %s: %s; fetching it again (it is replaced once the new copy is verified)",
                        final, problem)
        _download(url, final, http, checksum, deadline)
    return final


def _settings(source: Mapping, spec: Mapping) -> dict:
    # http has no lon_convention / lat_order options: the files' own conventions are detected ("auto")
    return {**source, "variable": spec["variable"], "units": source["units"] or spec.get("units"),
            "lon_convention": "auto", "lat_order": "auto"}


def downloaded_files(source: Mapping) -> tuple[list[str], dict]:
    """The downloaded files of ``source`` (not ``opendap``) and the options to read them with
    (:func:`precipmodes.io.sources.files.open_paths`); refuses files not downloaded yet. Makes no download."""
    settings = _settings(source, resolve(source))
    plan = download_plan(source)
    absent = [path for path in plan if not Path(path).is_file()]
    if absent:
        raise DownloadError(f"{absent[0]}: not downloaded (from {plan[absent[0]]}); the workflow's download rule "
                            "fetches it (run snakemake), or call precipmodes.io.sources.http.download_files")
    return list(plan), settings


def open_http(source: Mapping, domain: Mapping):
    """Canonical raw dataset (lazy) of ``source``: the downloaded files in ``source.http.cache_dir``, or with
    ``source.http.opendap`` the OPeNDAP URLs, of which only the domain is read. Makes no download."""
    if source["opendap"]:
        spec = resolve(source)
        template = spec.get("opendap_template")
        if not template:
            raise DownloadError(f"source.http.opendap: preset {source['preset']!r} has no OPeNDAP endpoint; "
                                "set source.http.opendap: false to download the files, or give an OPeNDAP "
                                "source.http.url_template")
        urls = period_urls(template, spec["period"], source["years"])
        return open_paths(urls, _settings(source, spec), domain, origin=f"OPeNDAP {urls[0]}", error=DownloadError)
    paths, settings = downloaded_files(source)
    return open_paths(paths, settings, domain)
