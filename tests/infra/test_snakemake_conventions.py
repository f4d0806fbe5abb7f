"""Snakemake conventions of the workflow's own files: snakefmt-clean rule files and a minimum version.

The rule files of the data preparation (source.smk, preprocess.smk, landmask.smk) are being reshaped by
another change and are formatted with it; every other rule file and the Snakefile are checked here.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import snakemake
from packaging.version import Version

from helpers.workflow import REPO, require

FORMATTED = ["Snakefile", "workflow/rules/archive.smk", "workflow/rules/common.smk", "workflow/rules/decompose.smk",
             "workflow/rules/figures.smk"]


def test_rule_files_are_snakefmt_clean():
    require(importlib.util.find_spec("snakefmt") is not None, "snakefmt not installed (pip install -e '.[test]')")
    result = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "--diff", *FORMATTED], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"run  snakefmt {' '.join(FORMATTED)}\n{(result.stdout + result.stderr)[-6000:]}"


def test_snakefile_states_its_minimum_snakemake_version():
    stated = re.search(r'^min_version\("([\d.]+)"\)$', (REPO / "Snakefile").read_text(), re.M)
    assert stated, "Snakefile: no min_version(...)"
    assert Version(snakemake.__version__) >= Version(stated.group(1))
