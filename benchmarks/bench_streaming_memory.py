"""Peak memory of accumulate / threshold / split at two record lengths (streaming check).

    .venv/bin/python benchmarks/bench_streaming_memory.py [--years 1 4] [--workdir /tmp/precipmodes_bench]

Same synthetic hourly input as bench_accumulate_cdo.py (0.05 deg over Japan, 320 x 400
cells, generated once into --workdir, never the repo). Each step runs in a fresh
process as its rule runs it (accumulate with the rule's default 2 threads, i.e. 2 reader processes);
its peak RSS (largest process, from the kernel) and the peak of the PSS summed over its processes
(sampled every 50 ms) come from bench_accumulate_cdo.timed_run. Flat memory means the peaks barely
change from the short to the long record while the input grows 4x.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_accumulate_cdo import accumulate_command, make_hourly_input, timed_run  # noqa: E402

from precipmodes.io.netcdf import write_netcdf  # noqa: E402

THRESHOLD = "{'wet_mm': 0.0, 'min_wet_fraction': 0.2}"


def land_mask_from_nan(src: Path, dst: Path) -> Path:
    """land = cells with data in the first map (the input's sea is NaN)."""
    with xr.open_dataset(src) as ds:
        land = ds["precip"].isel(time=0).notnull().drop_vars("time")
    mask = xr.Dataset({"land_fraction": land.astype(np.float32), "land": land.astype(np.int8)},
                      attrs={"method": "data_nan", "source": src.name})
    return write_netcdf(mask, dst)


def commands(src: Path, folder: Path, years: int) -> dict[str, list[str]]:
    totals, mask, selection = folder / "totals.nc", folder / "land_mask.nc", folder / "selection.nc"
    end = 2006 + years
    experiment = (f"{{'train': ['2006-01-01T00:00Z', '{end - 1}-10-01T00:00Z'], "
                  f"'test': ['{end - 1}-10-01T00:00Z', '{end}-01-01T00:00Z']}}")
    py = [sys.executable, "-c"]
    return {
        "accumulate": accumulate_command(src, totals, threads=2),
        "threshold": py + ["import sys; from precipmodes.config import section_defaults; "
                           "from precipmodes.steps.threshold import threshold_files; "
                           "threshold_files(totals=[sys.argv[1]], grid=sys.argv[2], output=sys.argv[4], "
                           f"threshold={THRESHOLD}, land_mask=section_defaults('land_mask', "
                           "{'method': 'file', 'path': sys.argv[3]}))",
                           str(totals), str(src), str(mask), str(selection)],
        "split": py + ["import sys; from precipmodes.config import section_defaults; "
                       "from precipmodes.steps.split import split_files; "
                       "split_files(totals=[sys.argv[1]], land_mask=sys.argv[2], selection=sys.argv[3], "
                       f"train=sys.argv[4], test=sys.argv[5], name='bench', experiment={experiment}, "
                       "coverage=section_defaults('coverage'))",
                       str(totals), str(mask), str(selection), str(folder / "train.nc"), str(folder / "test.nc")],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/precipmodes_bench"))
    args = parser.parse_args()
    peaks: dict[str, dict[int, tuple[float, float, float]]] = {}
    for years in args.years:
        src = make_hourly_input(args.workdir / f"hourly_{years}y.nc", years)
        folder = args.workdir / f"stream_{years}y"
        folder.mkdir(parents=True, exist_ok=True)
        land_mask_from_nan(src, folder / "land_mask.nc")
        for step, cmd in commands(src, folder, years).items():
            peaks.setdefault(step, {})[years] = timed_run(cmd)
            wall, rss, pss = peaks[step][years]
            print(f"{years} year(s) {step:10s}: {wall:7.1f} s  peak RSS {rss:6.0f} MiB  peak PSS (all processes) "
                  f"{pss:6.0f} MiB", flush=True)
    first, last = args.years[0], args.years[-1]
    print(f"\n{first} vs {last} years of hourly 320 x 400 maps (input {last / first:.0f}x longer):")
    for step, runs in peaks.items():
        print(f"  {step:10s} peak RSS {runs[first][1]:6.0f} MiB -> {runs[last][1]:6.0f} MiB "
              f"(ratio {runs[last][1] / runs[first][1]:.2f}); peak PSS {runs[first][2]:6.0f} MiB -> "
              f"{runs[last][2]:6.0f} MiB (ratio {runs[last][2] / runs[first][2]:.2f})")


if __name__ == "__main__":
    main()
