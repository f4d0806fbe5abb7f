"""Snakemake runs in the background, and the processes of their rules, for tests that stop or kill them."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from helpers.workflow import REPO


def start_snakemake(workdir: Path, config: dict, targets: list[str], *extra: str) -> subprocess.Popen:
    """Snakemake in the background (own process group), config written to workdir/config.yaml."""
    import yaml

    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
               *targets, "--configfile", str(workdir / "config.yaml"), "--cores", "1", *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def wait_for(condition, what: str, process: subprocess.Popen, timeout: float = 300, every: float = 0.02):
    """Poll ``condition()`` until it returns something truthy; fail if ``process`` ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if process.poll() is not None:
            pytest.fail(f"snakemake ended before {what}:\n{process.stdout.read()[-4000:]}")
        time.sleep(every)
    pytest.fail(f"timed out waiting for {what}")


def rule_process(snakemake_process: subprocess.Popen, script: str) -> psutil.Process | None:
    """The python process running the rule script ``script`` (e.g. 'accumulate.py') under snakemake."""
    try:
        children = psutil.Process(snakemake_process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return None
    for child in children:
        try:
            if any(part.endswith(script) for part in child.cmdline()):
                return child
        except psutil.NoSuchProcess:
            continue
    return None
