"""From the user's files to an experiment's train.nc: the workflow beside CDO and a five-line xarray script.

    .venv/bin/python benchmarks/bench_prepare.py [--years 3 10] [--cores 2] [--nlat 160] [--nlon 200]
        [--layout maps|cdo|tiles] [--no-xarray] [--workdir DIR]

Generates, for each ``--years``, input unlike the demo: hourly precipitation rates (float32, ``mm/hr``,
0.1 mm steps) on a ``--nlat`` x ``--nlon`` 0.1-degree grid, NaN over an elliptic "sea" around the land,
one NetCDF file per month, zlib level 4, stored as ``--layout`` says (:data:`LAYOUTS`: one shuffled map per
chunk by default, as IMERG or radar archives; ``cdo``: not shuffled; ``tiles``: chunks of a day by a quarter of
the domain). Then, one after
another on the same files:

* the workflow (``source.kind: files`` with a glob, 72-hour windows) up to ``results/e1/train.nc``, with
  ``--cores``;
* ``cdo timselsum,72 -mergetime <files> out.nc``;
* the xarray script: ``open_mfdataset``, ``resample(time="72h").sum()``, ``to_netcdf``.

Prints for each: wall time, the largest process's RSS (``ru_maxrss`` of the run's child processes, via
``/usr/bin/time``) and the bytes written (for the workflow: everything under ``results_dir``), with the
input's bytes and time per year. Then adds the next month's file, rebuilds the index (``snakemake raw.nc``)
and prints the partition jobs a dry run plans (``snakemake -n``). Not a timed test: timings depend on the
machine and its load.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
import yaml

REPO = Path(__file__).resolve().parents[1]
START = "2001-01-01"
XARRAY_SCRIPT = """
import sys, xarray as xr
ds = xr.open_mfdataset(sys.argv[1], combine="by_coords")
ds.resample(time="72h").sum(skipna=False).to_netcdf(sys.argv[2])
"""


#: how the monthly files are stored (``--layout``): netCDF-4 encoding of ``pr`` given the grid
LAYOUTS = {
    # xarray's default for zlib: shuffled, one map per chunk (as IMERG or a radar archive)
    "maps": lambda nlat, nlon: {"zlib": True, "complevel": 4, "shuffle": True, "chunksizes": (1, nlat, nlon)},
    # as `cdo -f nc4 -z zip_4` writes: not shuffled, one map per chunk
    "cdo": lambda nlat, nlon: {"zlib": True, "complevel": 4, "shuffle": False, "chunksizes": (1, nlat, nlon)},
    # tiles of a day by a quarter of the domain (as ERA5-Land from the CDS), shuffled
    "tiles": lambda nlat, nlon: {"zlib": True, "complevel": 4, "shuffle": True,
                                 "chunksizes": (24, (nlat + 1) // 2, (nlon + 1) // 2)},
}


def write_month(path: Path, month: pd.Timestamp, nlat: int, nlon: int, seed: int, layout: str = "maps") -> None:
    """One month of hourly rates (mm/hr, float32, 0.1 mm steps; NaN sea), zlib 4, stored as ``layout``
    (:data:`LAYOUTS`)."""
    times = pd.date_range(month, month + pd.offsets.MonthBegin(), freq="h", inclusive="left")
    rng = np.random.default_rng(seed)
    lat = 30.0 + 0.1 * (np.arange(nlat) + 0.5)
    lon = 128.0 + 0.1 * (np.arange(nlon) + 0.5)
    y, x = np.meshgrid(np.linspace(-1, 1, nlat), np.linspace(-1, 1, nlon), indexing="ij")
    sea = (x / 0.9) ** 2 + (y / 0.8) ** 2 > 1.0
    wet = rng.random((times.size, nlat, nlon), dtype=np.float32) < 0.15
    rate = np.round(rng.exponential(1.5, (times.size, nlat, nlon)).astype(np.float32) * wet, 1)
    rate[:, sea] = np.nan
    da = xr.DataArray(rate, dims=("time", "lat", "lon"), name="pr",
                      coords={"time": times, "lat": lat, "lon": lon}, attrs={"units": "mm/hr"})
    da.to_dataset().to_netcdf(path, encoding={"pr": LAYOUTS[layout](nlat, nlon)})


def make_input(folder: Path, years: int, nlat: int, nlon: int, layout: str = "maps") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, month in enumerate(pd.date_range(START, periods=12 * years, freq="MS")):
        path = folder / f"pr_{month:%Y%m}.nc"
        if not path.exists():  # written beside, then renamed: a generation cut off leaves no half file
            part = path.with_suffix(".part")
            write_month(part, month, nlat, nlon, seed=number, layout=layout)
            part.rename(path)
        paths.append(path)
    return paths


def measured(command: list[str], cwd: Path | None = None) -> tuple[float, float]:
    """``(wall seconds, largest process's RSS in MB)`` of ``command`` (fails loudly)."""
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", *command], cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(command[:4])} ... failed ({done.returncode}):\n{done.stdout[-3000:]}\n"
                         f"{done.stderr[-3000:]}")
    return wall, int(done.stderr.strip().splitlines()[-1]) / 1024


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def config_for(folder: Path, workdir: Path, years: int, nlat: int, nlon: int) -> Path:
    end = pd.Timestamp(START) + pd.DateOffset(years=years)
    split = (pd.Timestamp(START) + (end - pd.Timestamp(START)) * 0.75).floor("D")  # the last quarter tests
    config = {
        "results_dir": "results",  # under --directory (the benchmark's workdir)
        "source": {"kind": "files", "files": {"paths": [str(folder / "pr_*.nc")], "variable": "pr"}},
        "domain": {"lon": [128.0, 128.0 + 0.1 * nlon], "lat": [30.0, 30.0 + 0.1 * nlat], "resolution": None},
        "accumulation": {"hours": 72, "anchor": "first"},
        "experiments": {"e1": {"train": [f"{START}T00:00Z", f"{split:%Y-%m-%d}T00:00Z"],
                               "test": [f"{split:%Y-%m-%d}T00:00Z", f"{end:%Y-%m-%d}T00:00Z"], "n_modes": 5}},
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake(configfile: Path, cores: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(configfile.parent),
            "--configfile", str(REPO / "config" / "config.yaml"), str(configfile), "--cores", cores, *args]


def bench(years: int, args: argparse.Namespace, root: Path) -> None:
    folder = root / (f"input_{years}y" if args.layout == "maps" else f"input_{years}y_{args.layout}")
    paths = make_input(folder, years, args.nlat, args.nlon, args.layout)
    input_bytes = sum(p.stat().st_size for p in paths)
    decoded = years * 8766 * args.nlat * args.nlon * 4
    workdir = root / f"workflow_{years}y"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    configfile = config_for(folder, workdir, years, args.nlat, args.nlon)
    rows = []
    wall, rss = measured(snakemake(configfile, args.cores, "results/e1/train.nc", "--quiet", "rules"))
    rows.append(("workflow to train.nc", wall, rss, tree_bytes(workdir / "results")))
    out = root / f"cdo_{years}y.nc"
    wall, rss = measured(["cdo", "-s", "-O", "timselsum,72", "-mergetime", *map(str, paths), str(out)])
    rows.append(("cdo timselsum,72 -mergetime", wall, rss, out.stat().st_size))
    out.unlink()
    if not args.no_xarray:
        out = root / f"xarray_{years}y.nc"
        wall, rss = measured([sys.executable, "-c", XARRAY_SCRIPT, str(folder / "pr_*.nc"), str(out)])
        rows.append(("xarray open_mfdataset/resample", wall, rss, out.stat().st_size))
        out.unlink()
    print(f"\n{years} year(s): {len(paths)} monthly files ({args.layout}), {args.nlat} x {args.nlon} cells hourly, "
          f"{input_bytes / 1e6:.0f} MB on disk ({decoded / 1e9:.2f} GB as float32), --cores {args.cores}")
    print(f"  {'what':<32s} {'wall s':>8s} {'s/year':>7s} {'max RSS MB':>11s} {'written MB':>11s} {'% input':>8s}")
    for what, wall, rss, written in rows:
        print(f"  {what:<32s} {wall:8.1f} {wall / years:7.1f} {rss:11.0f} {written / 1e6:11.1f} "
              f"{100 * written / input_bytes:8.1f}")
    workflow = rows[0][1]
    print(f"  workflow / cdo: {workflow / rows[1][1]:.2f} x the time"
          + ("" if args.no_xarray else f"; workflow / xarray: {workflow / rows[2][1]:.2f} x the time"))
    # next month's file arrives: the index is rebuilt, a dry run plans only the partitions it touches
    month = pd.Timestamp(START) + pd.DateOffset(years=years)
    write_month(folder / f"pr_{month:%Y%m}.nc", month, args.nlat, args.nlon, seed=10_000, layout=args.layout)
    measured(snakemake(configfile, args.cores, "results/prepared/raw.nc", "--quiet", "rules"))
    dry = subprocess.run(snakemake(configfile, args.cores, "-n", "results/e1/train.nc"), capture_output=True,
                         text=True)
    planned = re.findall(r"wildcards: partition=(\S+)", dry.stdout + dry.stderr)
    print(f"  after adding {month:%Y-%m}: a dry run plans {len(planned)} partition job(s): {', '.join(planned)}")
    (folder / f"pr_{month:%Y%m}.nc").unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, nargs="+", default=[3])
    parser.add_argument("--cores", default="2")
    parser.add_argument("--nlat", type=int, default=160)
    parser.add_argument("--nlon", type=int, default=200)
    parser.add_argument("--layout", choices=sorted(LAYOUTS), default="maps", help="how the files are stored")
    parser.add_argument("--no-xarray", action="store_true", help="leave out the xarray script (9 min at 10 years)")
    parser.add_argument("--workdir", type=Path, default=None, help="kept afterwards when given (input reused)")
    args = parser.parse_args()
    if shutil.which("cdo") is None:
        raise SystemExit("cdo not found: install it (apt-get install cdo, conda install -c conda-forge cdo)")
    root = args.workdir or Path(tempfile.mkdtemp(prefix="precipmodes_bench_prepare_"))
    try:
        for years in args.years:
            bench(years, args, root)
    finally:
        if args.workdir is None:
            shutil.rmtree(root)


if __name__ == "__main__":
    main()
