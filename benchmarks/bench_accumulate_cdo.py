"""accumulate vs CDO `timselsum,72` on the same hourly NetCDF, side by side.

    .venv/bin/python benchmarks/bench_accumulate_cdo.py [--years 1] [--workdir /tmp/precipmodes_bench]

Generates (once) a synthetic hourly canonical file at 0.05 deg over Japan (320 x 400
cells, sea NaN, ~75 % dry steps, 0.1 mm quantised, zlib level 4, one map per chunk)
in --workdir (never the repo), then times in fresh processes
  * precipmodes.steps.accumulate.accumulate_files (72 h, anchor = first step; writes zlib-compressed NetCDF4),
  * cdo -s timselsum,72 (writes uncompressed NetCDF4, so it does less work),
checks both give the same totals, and prints the times and the ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import netCDF4
import numpy as np
import psutil

NLAT, NLON = 320, 400
LAT0, LON0, DLAT, DLON = 30.025, 128.025, 0.05, 0.05
POOL = 240  # distinct random hourly fields, cycled


def make_hourly_input(path: Path, years: int, seed: int = 0) -> Path:
    """Canonical hourly precip(time, lat, lon) for ``years`` x 8760 hours, written month by month."""
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:NLAT, 0:NLON] / np.array([NLAT, NLON])[:, None, None]
    sea = (xx - 0.7 * yy - 0.15) ** 2 / 0.35**2 + (yy - 0.53) ** 2 / 0.94**2 > 0.15  # a diagonal 'island'
    pool = np.round(rng.exponential(1.5, (POOL, NLAT, NLON)) * (rng.random((POOL, NLAT, NLON)) < 0.25), 1)
    pool = pool.astype(np.float32)
    pool[:, sea] = np.nan
    steps = 8760 * years
    tmp = path.with_name(path.name + ".part")
    with netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
        nc.Conventions = "CF-1.8"
        nc.title = f"synthetic hourly precipitation benchmark input ({years} years)"
        nc.createDimension("time", None)
        nc.createDimension("nv", 2)
        nc.createDimension("lat", NLAT)
        nc.createDimension("lon", NLON)
        t = nc.createVariable("time", "f8", ("time",))
        t.units, t.calendar, t.bounds, t.standard_name = "hours since 2006-01-01 00:00:00", "proleptic_gregorian", "time_bnds", "time"
        tb = nc.createVariable("time_bnds", "f8", ("time", "nv"))
        lat = nc.createVariable("lat", "f8", ("lat",))
        lat.units, lat.standard_name = "degrees_north", "latitude"
        lon = nc.createVariable("lon", "f8", ("lon",))
        lon.units, lon.standard_name = "degrees_east", "longitude"
        lat[:] = LAT0 + DLAT * np.arange(NLAT)
        lon[:] = LON0 + DLON * np.arange(NLON)
        p = nc.createVariable("precip", "f4", ("time", "lat", "lon"), zlib=True, complevel=4, shuffle=True,
                              chunksizes=(1, NLAT, NLON), fill_value=np.float32(np.nan))
        p.units, p.standard_name, p.cell_methods = "mm", "lwe_thickness_of_precipitation_amount", "time: sum"
        for i0 in range(0, steps, 744):
            i1 = min(steps, i0 + 744)
            hours = np.arange(i0, i1, dtype=float)
            t[i0:i1] = hours
            tb[i0:i1] = np.stack([hours, hours + 1], axis=1)
            p[i0:i1] = pool[(np.arange(i0, i1) * 7919) % POOL]
    os.replace(tmp, path)
    return path


def timed_run(cmd: list[str]) -> tuple[float, float, float]:
    """(wall seconds, peak RSS MiB of the largest process, peak summed PSS MiB of the tree) of ``cmd``.

    Run under /usr/bin/time, which forks ``cmd`` from its own small process (a child forked straight
    from this, possibly large, Python process would inherit our RSS as its ru_maxrss high-water mark
    on Linux) and reports the largest single process's peak. Reader processes run beside the main one,
    so the tree's memory is also sampled every 50 ms: the sum of each process's PSS (its private pages
    plus its share of the pages it shares, e.g. the imported libraries), which does not count twice what
    forked processes share.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        start = time.perf_counter()
        proc = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", report.name, *cmd])
        peak_pss = 0
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            total = 0
            try:
                tree = root.children(recursive=True)
            except psutil.NoSuchProcess:
                break
            for member in tree:
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    total += member.memory_full_info().pss
            peak_pss = max(peak_pss, total)
            time.sleep(0.05)
        wall = time.perf_counter() - start
        if proc.returncode:
            raise SystemExit(f"{cmd[:3]} failed with status {proc.returncode}")
        max_rss_kib = int(report.read().split()[-1])
    return wall, max_rss_kib / 1024, peak_pss / 2**20


def accumulate_command(src: Path, dst: Path, hours: int = 72, block_mb: float | None = None,
                       threads: int = 1, cluster: str = "threads") -> list[str]:
    """accumulate_files in a fresh process as the rule runs it: dask with ``threads`` workers on
    ``dask.cluster``; on the threaded scheduler as many reader processes (workflow/scripts/accumulate.py)."""
    block = "" if block_mb is None else f", block_mb={block_mb}"
    processes = threads if cluster == "threads" else 1
    code = ("import sys; from precipmodes.steps import parallel; from precipmodes.steps.accumulate import accumulate_files\n"
            "if __name__ == '__main__':\n"
            f"    with parallel.dask_cluster({{'cluster': {cluster!r}}}, {threads}, 4000):\n"
            "        accumulate_files(input_path=sys.argv[1], output_path=sys.argv[2], "
            f"accumulation={{'hours': {hours}, 'anchor': 'first', 'min_completeness': 1.0}}{block}, "
            f"processes={processes})")
    return [sys.executable, "-c", code, str(src), str(dst)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/precipmodes_bench"))
    parser.add_argument("--block-mb", type=float, default=None,
                        help="accumulate_files' block_mb (default: its own default)")
    parser.add_argument("--threads", type=int, default=2,
                        help="the rule's threads (default 2, the accumulate rule's default): dask workers and, "
                             "on the threaded scheduler, reader processes")
    parser.add_argument("--cluster", choices=("threads", "local"), default="threads",
                        help="dask.cluster of the run (local: one worker process per thread)")
    args = parser.parse_args()
    for tool, package in (("cdo", "cdo"), ("/usr/bin/time", "time")):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: install the Debian package {package}")
    t0 = time.perf_counter()
    src = make_hourly_input(args.workdir / f"hourly_{args.years}y.nc", args.years)
    print(f"input {src} ({src.stat().st_size / 2**20:.0f} MiB on disk, {8760 * args.years} hourly maps of "
          f"{NLAT} x {NLON}; ready in {time.perf_counter() - t0:.0f} s)")
    ours, cdo = args.workdir / "totals_precipmodes.nc", args.workdir / "totals_cdo.nc"
    for stale in (ours, cdo):
        stale.unlink(missing_ok=True)
    wall_cdo, rss_cdo, pss_cdo = timed_run(["cdo", "-s", "timselsum,72", str(src), str(cdo)])
    wall_ours, rss_ours, pss_ours = timed_run(accumulate_command(src, ours, block_mb=args.block_mb,
                                                                 threads=args.threads, cluster=args.cluster))
    with netCDF4.Dataset(ours) as a, netCDF4.Dataset(cdo) as b:
        n = a["precip"].shape[0]
        for k in (0, n // 2, n - 1):
            np.testing.assert_allclose(a["precip"][k].filled(np.nan), b["precip"][k].filled(np.nan),
                                       rtol=1e-5, atol=1e-3, equal_nan=True)
        print(f"same totals: {n} windows (CDO also writes the incomplete last window: {b['precip'].shape[0]})")
    print("                           wall   peak RSS (largest process)   peak PSS (all processes)")
    print(f"precipmodes accumulate : {wall_ours:7.1f} s  {rss_ours:8.0f} MiB {pss_ours:25.0f} MiB   "
          f"({args.cluster}, {args.threads} thread(s))")
    print(f"cdo timselsum,72       : {wall_cdo:7.1f} s  {rss_cdo:8.0f} MiB {pss_cdo:25.0f} MiB")
    print(f"ratio cdo / precipmodes: {wall_cdo / wall_ours:.2f}x  (> 1: precipmodes is faster)")


if __name__ == "__main__":
    main()
