"""The overview of a results folder: per experiment, which outputs exist and its key numbers once complete.

* :func:`results_overview` - every experiment under a results folder: complete or not, cells, windows,
  share of the leading modes, test and hold-out RMSE, skill, where its figures and archive are
  (``precipmodes summary RESULTS_DIR`` and the end of every run)
* :func:`format_overview` - the same as text

The key numbers themselves are :func:`precipmodes.diagnostics.summary.key_numbers`. Light on purpose (no
matplotlib): the Snakefile's onsuccess hook imports it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from precipmodes.diagnostics.summary import key_numbers
from precipmodes.errors import InputDataError
from precipmodes.io.netcdf import open_netcdf

# the files an experiment's decomposition writes, in the order the workflow makes them
EXPERIMENT_FILES = ("train.nc", "test.nc", "svd.nc", "nmf.nc", "evaluation.nc", "summary.json")


# folders of a results folder that are not experiments
NOT_EXPERIMENTS = {"prepared", "logs", "archived"}


LEADING_MODES = 3


@dataclass
class ExperimentOverview:
    """One experiment folder of a results folder: which outputs exist, its key numbers once complete."""

    name: str
    folder: Path
    present: list[str]
    missing: list[str]
    numbers: dict = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)
    archive: str | None = None
    problem: str | None = None

    @property
    def complete(self) -> bool:
        return not self.missing and self.problem is None


def experiment_overview(folder: Path) -> ExperimentOverview:
    """What ``folder`` (``<results_dir>/<experiment>``) holds; key numbers from its NetCDF when all are there."""
    folder = Path(folder)
    present = [name for name in EXPERIMENT_FILES if (folder / name).is_file()]
    missing = [name for name in EXPERIMENT_FILES if name not in present]
    figures = sorted(path.name for path in (folder / "figures").glob("*.png")) if (folder / "figures").is_dir() else []
    overview = ExperimentOverview(folder.name, folder, present, missing, figures=figures)
    receipt = folder.parent / "archived" / f"{folder.name}.json"
    if receipt.is_file():
        try:
            overview.archive = json.loads(receipt.read_text()).get("archive") or None
        except (OSError, ValueError):
            overview.archive = None
    if {"svd.nc", "nmf.nc", "evaluation.nc"} <= set(present):
        try:
            with open_netcdf(folder / "svd.nc") as svd, open_netcdf(folder / "nmf.nc") as nmf, \
                    open_netcdf(folder / "evaluation.nc") as evaluation:
                overview.numbers = key_numbers(svd, nmf, evaluation)
        except (InputDataError, KeyError) as error:
            overview.problem = f"unreadable outputs ({error}); rerun the experiment's rules"
    return overview


def results_overview(results_dir: str | Path, experiments: list[str] | None = None) -> list[ExperimentOverview]:
    """Every experiment folder of ``results_dir`` (or the named ``experiments``, also those not started)."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise InputDataError(f"{results_dir}: no such folder; give the results folder of a run (config key "
                             "results_dir, default results/)")
    if experiments is None:
        experiments = sorted(path.name for path in results_dir.iterdir()
                             if path.is_dir() and path.name not in NOT_EXPERIMENTS and not path.name.startswith(".")
                             and any((path / name).is_file() for name in EXPERIMENT_FILES))
    return [experiment_overview(results_dir / name) for name in experiments]


def _percent_list(ratio: Mapping, n: int = LEADING_MODES) -> str:
    return ", ".join(f"{ratio[m]:.1f}" for m in sorted(ratio, key=int)[:n])


def format_overview(results_dir: str | Path, overviews: list[ExperimentOverview]) -> str:
    """The overview as text for a terminal: one block per experiment, complete ones first in the count."""
    results_dir = Path(results_dir)
    if not overviews:
        return (f"{results_dir}: no experiment results yet (no <experiment>/train.nc, svd.nc, nmf.nc, "
                "evaluation.nc or summary.json); run snakemake with your config first")
    complete = [o.name for o in overviews if o.complete]
    lines = [f"precipmodes summary of {results_dir}: {len(complete)} of {len(overviews)} experiment(s) complete"
             + (f" ({', '.join(complete)})" if complete else "")]
    for o in overviews:
        lines.append("")
        lines.extend(_experiment_lines(o))
    lines.append("")
    lines.append("report (all experiments, figures with captions): snakemake --report report.html "
                 "[--configfile <your config>]")
    return "\n".join(lines)


def _experiment_lines(o: ExperimentOverview) -> list[str]:
    if not o.complete:
        state = o.problem or (f"incomplete: has {', '.join(o.present) or 'nothing'}; missing {', '.join(o.missing)}"
                              " - rerun snakemake to finish it")
        return [f"{o.name}: {state}"]
    n = o.numbers
    ratio = n["explained_variance_percent"]
    measure = "explained variance" if n["svd_centred"] else "share of the sum of squares (uncentred SVD)"
    lines = [f"{o.name}: complete",
             f"  cells: {n['n_cells']} land cells; windows: {n['n_training_windows']} training, "
             f"{n['n_test_windows']} test",
             f"  SVD {measure}, modes 1-{min(LEADING_MODES, len(ratio))}: {_percent_list(ratio)} %; "
             f"all {n['n_modes']} modes: {n['cumulative_explained_variance_percent']:.1f} %",
             "  test RMSE (mm):    " + _methods(n["test_rmse_mm"], "{:.3f}")]
    if "holdout_rmse_mm" in n:
        lines.append(f"  hold-out RMSE (mm, {100 * n['holdout_fraction']:g} % of cells hidden): "
                     + _methods(n["holdout_rmse_mm"], "{:.3f}"))
        lines.append("  hold-out skill 1 - MSE/MSE_climatology: " + _methods(
            {k: v for k, v in n["holdout_skill"].items() if k != "climatology"}, "{:.3f}"))
    lines.append(f"  figures: {len(o.figures)} PNG in {o.folder / 'figures'}; key numbers: {o.folder / 'summary.json'}")
    if o.archive:
        lines.append(f"  archive: {o.archive} (check: precipmodes verify {o.archive})")
    return lines


def _methods(values: Mapping[str, float], fmt: str) -> str:
    return ", ".join(f"{name} {fmt.format(value)}" for name, value in values.items())
