"""Shared test fixtures.

Real data files live in ../shared/data (beside the repository); tests that need
them skip with a reason when the folder is absent (a user's clone), but under
CI (CI=true) a missing folder is an error, so those tests always run there.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from helpers.workflow import REPO, SHARED_DATA, require, run_snakemake


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of real precipitation files (../shared/data)."""
    require(SHARED_DATA.is_dir(), f"{SHARED_DATA} not found (real-data tests need ../shared/data)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The tiny demo (tests/configs/tiny.yaml, two experiments) up to svd.nc and nmf.nc, built once per session;
    see reliability_helpers.build_tiny_run. Read-only: tests work on a copy (reliability_helpers.copy_run)."""
    from helpers.reliability import build_tiny_run

    return build_tiny_run(tmp_path_factory.mktemp("tiny_run"))


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """One end-to-end run of the DEFAULT config (the offline demo) with `--cores 2`, shared by the
    tests that inspect its outputs. Runs with the network cut off (unshare -n) where possible.
    Returns the working directory (results/ inside)."""

    workdir = tmp_path_factory.mktemp("demo_run")
    start = time.perf_counter()
    run_snakemake(workdir, "--cores", "2", timeout=1200, offline=True)
    (workdir / "wall_seconds.txt").write_text(f"{time.perf_counter() - start:.1f}\n")
    # the demo run's own timing table: a later run in this folder (snakemake archive) writes the table of its jobs
    (workdir / "demo_timings.tsv").write_text((workdir / "results" / "logs" / "timings.tsv").read_text())
    return workdir


# ------------------------------------------------------------------ parallel test runs (pytest-xdist)
# `bash tests/run_tests.sh` runs `-n 2 --dist loadgroup` (pytest < 9.2: pyproject; tests/infra/test_test_groups.py
# checks that the groups take effect). The groups come from the folders: the files of one folder under
# tests/workflow/ (demo_run/, tiny_run/, slurm/) are one group and run on one worker, so a session fixture that
# builds a whole workflow run (demo_run, tiny_run) is built once, not once per worker, and the SLURM tests never
# share the one-node cluster with each other. Every other file is a group of its own. The folder groups (the
# longest) are collected first, so that the workers do not end on one of them.
GROUPED = Path(__file__).resolve().parent / "workflow"


def xdist_group_of(path: Path) -> str:
    """The xdist group of the test file at ``path``: its folder's name in tests/workflow/<group>/, else its stem."""
    path = Path(path).resolve()
    return path.parent.name if path.parent.parent == GROUPED else path.stem


def folder_groups() -> list[str]:
    """The folder groups (tests/workflow/<group>/), in the order they are collected."""
    return sorted(folder.name for folder in GROUPED.iterdir() if folder.is_dir() and any(folder.glob("test_*.py")))


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    if not hasattr(config, "workerinput"):  # a serial run keeps pytest's own order and needs no groups
        return
    first = folder_groups()
    for item in items:
        item.add_marker(pytest.mark.xdist_group(xdist_group_of(item.path)))
    items.sort(key=lambda item: first.index(group) if (group := xdist_group_of(item.path)) in first else len(first))
