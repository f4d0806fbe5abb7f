"""Config layers as Snakemake users expect them (dry runs: `snakemake -n`, no rule runs).

The base is the default demo config when no --configfile is given, else the --configfile files
merged in order (a user's config replaces the demo's); --config key=value layers over the base.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from helpers.workflow import REPO, run_snakemake
from helpers.reliability import files_source, precip_file, tiny

pytestmark = pytest.mark.workflow


def job_counts(result) -> dict[str, int]:
    """``{rule: jobs}`` from the "Job stats" table of a dry run."""
    table = (result.stdout + result.stderr).split("Job stats:")[1].split("total")[0]
    return {line.split()[0]: int(line.split()[1]) for line in table.splitlines()[3:] if line.strip()}


def dry_run(workdir: Path, *args: str, check: bool = True):
    return run_snakemake(workdir, "-n", *args, check=check, timeout=300)


def write(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def test_config_on_the_command_line_layers_over_the_default_demo(tmp_path):
    result = dry_run(tmp_path, "--config", 'nmf={"solver": "sklearn"}')
    jobs = job_counts(result)
    assert jobs["demo_truth"] == 1 and jobs["nmf"] == 1  # the demo's source and its experiment 'seed'
    assert "results/seed/nmf.nc" in result.stdout
    bad = dry_run(tmp_path, "--config", 'nmf={"solver": "qr"}', check=False)
    text = bad.stdout + bad.stderr
    assert bad.returncode != 0
    assert (f"invalid config from {REPO}/config/config.yaml (the default demo config) with --config nmf:\n"
            "  nmf.solver: 'qr' is not allowed") in text
    assert "is a required property" not in text  # the default's domain, experiments... are all there


def test_a_later_layer_switches_the_source_kind(tmp_path):
    data = precip_file(tmp_path / "in.nc", days=90)
    files = json.dumps(files_source(data))
    result = dry_run(tmp_path, "--config", f"source={files}")
    jobs = job_counts(result)
    assert "demo_truth" not in jobs and jobs["raw"] == 1
    assert str(data) in result.stdout  # raw reads the file (its input)


def test_one_configfile_replaces_the_demo_and_several_merge_in_order(tmp_path):
    data = precip_file(tmp_path / "in.nc", days=90)
    mine = write(tmp_path / "mine.yaml", tiny(source=files_source(data), accumulation={"anchor": "first"}))
    alone = dry_run(tmp_path, "--configfile", str(mine))
    assert "demo_truth" not in job_counts(alone)
    assert "results/e1/svd.nc" in alone.stdout and "results/seed/" not in alone.stdout  # nothing of the demo's

    e2 = {**tiny()["experiments"]["e1"], "n_modes": 2}
    more = write(tmp_path / "more.yaml", {"experiments": {"e2": e2}, "source": {"kind": "demo"}})
    merged = dry_run(tmp_path, "--configfile", str(mine), str(more))
    jobs = job_counts(merged)
    assert jobs["svd"] == 2 and jobs["demo_truth"] == 1  # e1 from mine.yaml, e2 and the kind from more.yaml
    assert "results/e2/svd.nc" in merged.stdout and "results/seed/" not in merged.stdout

    over = dry_run(tmp_path, "--configfile", str(mine), "--config", "experiments={}", check=False)
    assert "results/e1/svd.nc" in over.stdout  # --config merges into the base: {} adds nothing


def test_validation_errors_name_the_files_given(tmp_path):
    a = write(tmp_path / "a.yaml", tiny())
    b = write(tmp_path / "b.yaml", {"svd": {"method": "qr"}})
    result = dry_run(tmp_path, "--configfile", str(a), str(b), check=False)
    text = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"invalid config from {a}, {b}:\n  svd.method: 'qr' is not allowed" in text


def test_numbers_inside_config_on_the_command_line_are_numbers(tmp_path):
    """Snakemake reads `--config key={...}` with YAML's base loader (every value inside a string): the
    schema's numbers are accepted as numbers, and a too large accumulation.hours is refused naming the key."""
    result = dry_run(tmp_path, "--config", 'accumulation={"min_completeness": 0.9, "hours": 24}',
                     'domain={"lon": [129, 147], "lat": [31, 45], "resolution": 0.5}')
    assert job_counts(result)["threshold"] == 1
    bad = dry_run(tmp_path, "--config", 'accumulation={"hours": 6e12}', check=False)
    text = bad.stdout + bad.stderr
    assert bad.returncode != 0
    assert "accumulation.hours: 6000000000000 is greater than the maximum of 8784" in text, text[-2000:]
    assert "OverflowError" not in text

