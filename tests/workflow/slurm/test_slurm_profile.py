"""The SLURM profile and the large-run resources file (no scheduler needed)."""

from __future__ import annotations

import re

import yaml
from helpers.workflow import REPO

from precipmodes.config import validate_config
from precipmodes.io.configfile import load_config

PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
LARGE = REPO / "profiles" / "slurm" / "resources-1km-20y.yaml"


def resource_keys_used() -> set[str]:
    """Keys rules look up with rule_resources("<key>", ...) in workflow/rules/*.smk."""
    text = "".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    return set(re.findall(r'rule_resources\("(\w+)"', text))


def test_profile_uses_the_slurm_executor_with_the_measured_settings():
    profile = yaml.safe_load(PROFILE.read_text())
    assert profile["executor"] == "slurm"
    assert profile["slurm-init-seconds-before-status-checks"] <= 5  # the default 40 s slows short jobs
    assert {"slurm_partition", "slurm_account", "mem_mb", "runtime"} <= set(profile["default-resources"])
    assert profile["max-threads"] >= 1 and profile["latency-wait"] >= 5


def test_large_run_resources_validate_and_fit_the_profile():
    base = load_config(REPO / "config" / "config.yaml")
    large = yaml.safe_load(LARGE.read_text())
    config = validate_config({**base, **large}, origin=str(LARGE))
    table = config["resources"]
    assert set(table) - {"default"} <= resource_keys_used(), "resources for rules that do not exist"
    assert {"accumulate_partition", "svd", "nmf"} <= set(table)
    max_threads = yaml.safe_load(PROFILE.read_text())["max-threads"]
    assert all(entry.get("threads", 1) <= max_threads for entry in table.values())


def test_readme_resource_table_matches_the_rules_and_the_large_run_file():
    """The docs' HPC page (docs/hpc.md, 'Running on SLURM / HPC') states each rule's defaults and the 1 km
    values; keep them true."""
    text = "".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    defaults = {(key, what): int(value) for key, what, value in
                re.findall(r'rule_resources\("(\w+)", "(threads|mem_mb|runtime)", (\d+)\)', text)}
    large = yaml.safe_load(LARGE.read_text())["resources"]
    readme = (REPO / "docs" / "hpc.md").read_text()
    rows = re.findall(r"^\| (\w+)[^|]* \| (\d+) / (\d+) / (\d+) \| (?:(\d+) / (\d+) / (\d+)|-) \|$", readme, re.M)
    assert {row[0] for row in rows} == {key for key, _ in defaults}
    for key, *values in rows:
        for what, value in zip(("threads", "mem_mb", "runtime"), values[:3]):
            assert defaults[(key, what)] == int(value), (key, what)
        if values[3]:
            assert [large[key][w] for w in ("threads", "mem_mb", "runtime")] == [int(v) for v in values[3:]], key
