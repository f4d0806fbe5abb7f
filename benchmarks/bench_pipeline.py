"""The whole pipeline end to end: the default demo, or the demo at the seed's scale, through snakemake.

    .venv/bin/python benchmarks/bench_pipeline.py [--scale default|seed] [--cores 2] [--workdir DIR]

``default``: ``config/config.yaml`` as it is (80 x 80 cells, 10 years 6-hourly). ``seed``: the same
with ``domain.resolution: null``, the seed's 0.0625 x 0.05 deg grid (320 x 320 cells, ~23,400 land
cells), as the seed notebook ran. Each run starts from an empty results folder under ``--workdir``
(never the repository's results/) and runs the default target (rule all: every figure and the
archive). Prints the wall time of the whole run and the per-job table that the workflow writes at the
end (``<results_dir>/logs/timings.tsv``, from each job's own "done in" line). Not a timed test.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SCALES = {"default": {}, "seed": {"domain": {"resolution": None}}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="default")
    parser.add_argument("--cores", default="2")
    parser.add_argument("--workdir", type=Path, default=None, help="kept afterwards when given")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix=f"precipmodes_pipeline_{args.scale}_"))
    workdir.mkdir(parents=True, exist_ok=True)
    # the default config first, this run's changes layered on top (several --configfile merge in order)
    overrides = {**SCALES[args.scale], "results_dir": str(workdir / "results"), "archive_dir": str(workdir / "archive")}
    configfile = workdir / f"{args.scale}.yaml"
    configfile.write_text(yaml.safe_dump(overrides, sort_keys=False))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "snakemake", "--cores", args.cores, "--configfile",
                           str(REPO / "config" / "config.yaml"), str(configfile),
                           "--directory", str(REPO), "--quiet", "rules"], cwd=REPO)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"snakemake failed (status {done.returncode}); logs under {workdir / 'results' / 'logs'}")
    table = (workdir / "results" / "logs" / "timings.tsv").read_text().splitlines()
    rows = [line.split("\t") for line in table[1:]]
    job_time = sum(float(row[2]) for row in rows)
    print(f"{args.scale} demo: {wall:.1f} s wall for {len(rows)} jobs on {args.cores} cores "
          f"({job_time:.1f} s of job time); per job:")
    for rule, log, seconds, share in rows:
        print(f"  {log:<40s} {float(seconds):7.1f} s  {100 * float(share):5.1f} %")
    if args.workdir is None:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
