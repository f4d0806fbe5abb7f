"""The ``precipmodes`` console script.

    precipmodes init data/*.nc -o my.yaml                       # a commented config from the files; exit 2 if
                                                                # they cannot make one (the message says why)
    precipmodes verify archive/<experiment> [more folders...]   # exit 1 if anything is missing/extra/altered/unsafe
    precipmodes summary results/                                # every experiment: cells, windows, variance,
                                                                # RMSE, skill, figures; exit 1 if none complete
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from precipmodes import __version__
from precipmodes.errors import PrecipModesError
from precipmodes.io.manifest import verify_archive
from precipmodes.steps.init import init_config
from precipmodes.steps.overview import format_overview, results_overview


def _init(args: argparse.Namespace) -> int:
    text = init_config(args.data, args.output, args.variable, args.hours)
    if args.output is None:
        print(text, end="")
    else:
        print(f"wrote {args.output}; check it, then: snakemake --cores 2 --configfile {args.output}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    status = 0
    for folder in args.archive_dirs:
        result = verify_archive(folder)
        print(result.report())
        status = status or (0 if result.ok else 1)
    return status


def _summary(args: argparse.Namespace) -> int:
    overviews = results_overview(args.results_dir)
    print(format_overview(args.results_dir, overviews))
    return 0 if any(overview.complete for overview in overviews) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="precipmodes", description="precipmodes workflow tools")
    parser.add_argument("--version", action="version", version=f"precipmodes {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    init = commands.add_parser(
        "init", help="inspect data files and write a commented config that runs as it is",
        description="Inspect NetCDF/GRIB/Zarr files (the precipitation variable, units, regular or curvilinear "
                    "grid, time step and extent, gaps, months present, NaN cells) and write a commented config: "
                    "results_dir named after the data, source.kind files, the full domain, land from NaN when "
                    "the field has NaN, one experiment split at whole years (the last fifth or so for test, "
                    "the season kept with months). Exits 2 with the reason when the files cannot make one "
                    "(no match, no precipitation variable, files that differ, a record shorter than a window).")
    init.add_argument("data", nargs="+", metavar="DATA", help="files or globs (quote globs), e.g. 'data/rr_*.nc'")
    init.add_argument("-o", "--output", help="config file to write (default: print it)")
    init.add_argument("--variable", help="the precipitation variable, when the files' names do not say it")
    init.add_argument("--hours", type=int, help="window length, accumulation.hours (default 72)")
    init.set_defaults(func=_init)
    verify = commands.add_parser(
        "verify", help="re-check an archive's MANIFEST.json and every sha256 and size in it",
        description="Re-check an archive folder: MANIFEST.json against MANIFEST.json.sha256 (an edited "
                    "manifest fails), then every file against its manifest entry; reports missing, extra and "
                    "altered files and unsafe entries (outside the folder, or a symbolic link, never read) "
                    "and exits 1 if there are any.")
    verify.add_argument("archive_dirs", nargs="+", metavar="ARCHIVE_DIR", help="e.g. archive/seed")
    verify.set_defaults(func=_verify)
    summary = commands.add_parser(
        "summary", help="every experiment of a results folder: cells, windows, variance, test RMSE, skill, figures",
        description="List the experiments of a results folder (config results_dir): for each complete one the "
                    "land cells, training and test windows, the share of the leading SVD modes (of the sum of "
                    "squares under the default uncentred SVD, explained variance when svd.center is on), the "
                    "test and hold-out RMSE of SVD, NMF and climatology, the hold-out skill, and where its "
                    "figures, key numbers and archive are; for an unfinished one which outputs it still lacks. "
                    "Exits 1 when no experiment is complete.")
    summary.add_argument("results_dir", metavar="RESULTS_DIR", help="e.g. results")
    summary.set_defaults(func=_summary)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except PrecipModesError as exc:
        print(f"precipmodes {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
