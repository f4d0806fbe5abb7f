"""Incremental reruns: changing or adding an experiment reruns only split (dry-run job stats).

Builds a tiny demo workflow for real (3 months, 1-degree grid) up to the train/test
matrices, then edits the config and asks Snakemake what it would rerun.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.workflow

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
BASE = {
    "source": {"kind": "demo", "demo": {"start": "2006-01-01T00:00+09:00", "end": "2006-04-01T00:00+09:00"}},
    "domain": {"lon": [128.0, 148.0], "lat": [30.0, 46.0], "resolution": [1.0, 1.0]},
    "experiments": {"e1": {"train": ["2006-01-01T00:00+09:00", "2006-03-01T00:00+09:00"],
                           "test": ["2006-03-01T00:00+09:00", "2006-04-01T00:00+09:00"], "n_modes": 3}},
}
E2 = {"train": ["2006-02-01T00:00+09:00", "2006-03-01T00:00+09:00"],
      "test": ["2006-01-01T00:00+09:00", "2006-02-01T00:00+09:00"], "n_modes": 2}


def snakemake(repo: Path, workdir: Path, config: dict, targets: list[str], *extra: str) -> str:
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    cmd = [SNAKEMAKE, *targets, "-s", str(repo / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "--cores", "2", *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def planned_jobs(repo, workdir, config, targets) -> dict[str, int]:
    """Rule -> job count from the dry run's "Job stats" table (empty when nothing to do)."""
    text = snakemake(repo, workdir, config, targets, "--dry-run", "--quiet", "rules")
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:", 1)[1]
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)\s*$", table, flags=re.M))
    jobs.pop("total", None)
    return {rule: int(count) for rule, count in jobs.items()}


def targets(*experiments):
    return [f"results/{e}/{part}.nc" for e in experiments for part in ("train", "test")]


def test_experiment_changes_rerun_only_split(repo, tmp_path):
    snakemake(repo, tmp_path, BASE, targets("e1"))
    assert (tmp_path / "results/e1/train.nc").is_file()
    assert planned_jobs(repo, tmp_path, BASE, targets("e1")) == {}

    moved = yaml.safe_load(yaml.safe_dump(BASE))
    moved["experiments"]["e1"]["test"][0] = "2006-03-02T00:00+09:00"
    assert planned_jobs(repo, tmp_path, moved, targets("e1")) == {"split": 1}

    added = yaml.safe_load(yaml.safe_dump(BASE))
    added["experiments"]["e2"] = E2
    assert planned_jobs(repo, tmp_path, added, targets("e1", "e2")) == {"split": 1}
    summary = snakemake(repo, tmp_path, added, targets("e1", "e2"), "--summary")
    plans = {line.split("\t")[0]: line.split("\t")[-1] for line in summary.splitlines() if "\t" in line}
    prepared = {path: plan for path, plan in plans.items() if path.startswith("results/prepared/")}
    assert {"results/prepared/raw.nc", "results/prepared/land_mask.nc", "results/prepared/selection.nc"} <= set(prepared)
    assert any(path.startswith("results/prepared/totals/") for path in prepared), prepared  # the partitions
    assert set(prepared.values()) == {"no update"}, prepared
    assert plans["results/e2/train.nc"] == "update pending" and plans["results/e1/train.nc"] == "no update"

    # control: a threshold change does rerun threshold and every split, not the upstream rules
    wetter = yaml.safe_load(yaml.safe_dump(BASE))
    wetter["threshold"] = {"min_wet_fraction": 0.3}
    jobs = planned_jobs(repo, tmp_path, wetter, targets("e1"))
    assert jobs == {"threshold": 1, "split": 1}

    # n_modes and test_windows are not split's business: neither reruns it
    for field, value in (("n_modes", 2), ("test_windows", [0])):
        changed = yaml.safe_load(yaml.safe_dump(BASE))
        changed["experiments"]["e1"][field] = value
        assert planned_jobs(repo, tmp_path, changed, targets("e1")) == {}, field


def test_n_modes_reruns_the_decomposition_not_the_data_selection(repo, tmp_path):
    """Each rule's params carry only what it uses: n_modes reruns svd/nmf and what reads them,
    not split or figures_selection; a dask cluster change (where blocks run) reruns nothing."""
    selection_figures = [f"results/e1/figures/{name}.png" for name in ("land_mask", "wet_fraction")]
    wanted = ["results/e1/svd.nc", "results/e1/nmf.nc", *selection_figures]
    snakemake(repo, tmp_path, BASE, wanted)
    changed = yaml.safe_load(yaml.safe_dump(BASE))
    changed["experiments"]["e1"]["n_modes"] = 2
    assert planned_jobs(repo, tmp_path, changed, wanted) == {"svd": 1, "nmf": 1}
    moved = {**BASE, "dask": {"cluster": "local"}}
    assert planned_jobs(repo, tmp_path, moved, wanted) == {}
