"""Demo field: generated block by block (as a partition job sums it) vs eager (whole array in memory).

    .venv/bin/python benchmarks/bench_demo.py [--years 2.5 10] [--workdir /tmp/precipmodes_bench]

Default demo grid (80 x 80 cells, 6-hourly). For each record length, two fresh
processes total the field over time: ``streamed`` writes the demo's index (raw_files, the rule raw's code)
and reads the field through it as a partition does (dask-backed blocks of ~32 MiB,
:func:`precipmodes.io.sources.demo_model.block_steps`); ``eager`` computes the whole array first and then sums it.
Prints wall time and peak RSS (kernel rusage) of each and the ratios.
Both include ~0.9 GiB of global-land-mask's 1/120 deg grid, loaded by the demo for
its real land; streaming keeps the rest flat in record length.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_accumulate_cdo import timed_run  # noqa: E402

from precipmodes.io.configfile import load_config  # noqa: E402
from precipmodes.io.sources import source_options  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

STREAMED = ("import sys, json; from precipmodes.io.sources import raw_files; "
            "from precipmodes.io.sources.index import open_steps; "
            "s, d = json.loads(sys.argv[1]), json.loads(sys.argv[2]); "
            "raw_files(source=s, domain=d, output=sys.argv[3]); "
            "open_steps(sys.argv[3])['precip'].sum('time').compute()")
EAGER = ("import sys, json, numpy as np; from precipmodes.io.sources.demo import demo_dataset; "
         "s, d = json.loads(sys.argv[1]), json.loads(sys.argv[2]); "
         "np.nansum(demo_dataset(s, d)['precip'].values, axis=0)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=float, nargs="+", default=[2.5, 10.0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/precipmodes_bench"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    config = load_config(REPO / "config" / "config.yaml")
    domain = json.dumps(config["domain"])
    print(f"{'years':>6} {'steps':>7} {'MB data':>8} | {'streamed s':>10} {'MiB':>6} | {'eager s':>8} {'MiB':>6} | "
          f"{'time ratio':>10} {'RSS ratio':>9}")
    for years in args.years:
        steps = int(round(years * 365.25 * 4))
        source = source_options(config["source"])  # the demo options, flat
        source["end"] = (pd.Timestamp(source["start"]) + pd.Timedelta(hours=6 * steps)).isoformat()
        results = {}
        for name, code in (("streamed", STREAMED), ("eager", EAGER)):
            out = args.workdir / f"demo_{name}_{years:g}y.nc"
            results[name] = timed_run([sys.executable, "-c", code, json.dumps(source), domain, str(out)])
            out.unlink(missing_ok=True)
        (ts, ms, _), (te, me, _) = results["streamed"], results["eager"]  # wall, peak RSS, (tree PSS)
        print(f"{years:6g} {steps:7d} {steps * 6400 * 4 / 1e6:8.0f} | {ts:10.1f} {ms:6.0f} | {te:8.1f} {me:6.0f} | "
              f"{te / ts:10.2f} {me / ms:9.2f}")


if __name__ == "__main__":
    main()
