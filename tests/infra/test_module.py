"""The workflow used as a Snakemake ``module`` by a user's Snakefile, with the user's own config.

This is how the snakemake-workflows catalogue deploys workflows: a Snakefile of the user declares
``module precipmodes: snakefile: ...; config: config`` and ``use rule * from precipmodes as precipmodes_*``.
The tiny demo (tests/configs/tiny.yaml) must dry-run and run that way, the download rule stay a local rule
under its new name (snakemake#2061: a ``localrules:`` list is lost there, ``localrule: True`` is not), and the
run lock, the clean-up of killed writes and the timing table work through the hooks the user's Snakefile
registers (Snakemake runs no onstart/onsuccess/onerror of a module; docs/hpc.md shows the lines).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.workflow import REPO

pytestmark = pytest.mark.workflow

USER_SNAKEFILE = f"""\
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/precip.yaml"


module precipmodes:
    snakefile:
        {str(REPO / "Snakefile")!r}
    config:
        config


use rule * from precipmodes as precipmodes_*


# Snakemake runs no onstart/onsuccess/onerror of a module: the run lock, the clean-up and the timing table
from precipmodes.steps.runhooks import RunHooks

hooks = RunHooks.from_config(config)


onstart:
    hooks.start()


onsuccess:
    hooks.success()


onerror:
    hooks.error()
"""


def user_snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "snakemake", "--directory", str(workdir), *args], cwd=workdir,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-6000:]
    return result


def local_rules(workdir: Path) -> list[str]:
    script = f"""
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings
with SnakemakeApi(OutputSettings(quiet=None)) as api:
    workflow = api.workflow(resource_settings=ResourceSettings(), snakefile=Path({str(workdir / "Snakefile")!r}),
                            config_settings=ConfigSettings(), workdir=Path({str(workdir)!r}))._workflow
    print(sorted(workflow._localrules))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=workdir)
    assert result.returncode == 0, result.stderr[-4000:]
    return ast.literal_eval(result.stdout.strip().splitlines()[-1])


def test_the_workflow_as_a_module_of_a_users_snakefile(tmp_path):
    workdir = tmp_path / "project"
    (workdir / "config").mkdir(parents=True)
    shutil.copy(REPO / "tests" / "configs" / "tiny.yaml", workdir / "config" / "precip.yaml")
    (workdir / "Snakefile").write_text(USER_SNAKEFILE)

    plan = user_snakemake(workdir, "--cores", "2", "-n")
    assert "precipmodes_svd" in plan.stdout and "precipmodes_all" in plan.stdout
    assert not (workdir / "results").exists()
    assert "precipmodes_download" in local_rules(workdir)

    # what a killed writer left: a temp file of a process that has ended
    prepared = workdir / "results" / "prepared"
    prepared.mkdir(parents=True)
    name = subprocess.run([sys.executable, "-c", "from precipmodes.io.owned import temp_path; "
                           f"print(temp_path({str(prepared / 'raw.nc')!r}))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(name).write_bytes(b"half a file")

    run = user_snakemake(workdir, "--cores", "2")
    assert not Path(name).exists(), "the killed writer's temp file was not cleaned up"
    for output in ("prepared/raw.nc", "e1/svd.nc", "e1/nmf.nc", "e1/evaluation.nc", "e1/figures/svd_modes.png"):
        assert (workdir / "results" / output).is_file(), output
    timings = (workdir / "results" / "logs" / "timings.tsv").read_text().splitlines()
    assert timings[0] == "rule\tlog\tseconds\tshare"
    assert {line.split("\t")[0] for line in timings[1:]} >= {"precipmodes_svd", "precipmodes_nmf", "precipmodes_raw"}
    assert "time per job" in run.stderr
    assert not (workdir / "results" / ".precipmodes.lock").exists(), "the run lock was not given back"
