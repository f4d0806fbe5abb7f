"""Shared test fixtures.

Real data files live in ../shared/data (beside the repository); tests that need
them skip with a reason when the folder is absent (a user's clone), but under
CI (CI=true) a missing folder is an error, so those tests always run there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def require(condition: bool, reason: str) -> None:
    """Skip when ``condition`` is false, except under CI where it fails the test."""
    if condition:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of real precipitation files (../shared/data)."""
    require(SHARED_DATA.is_dir(), f"{SHARED_DATA} not found (real-data tests need ../shared/data)")
    return SHARED_DATA


def offline_prefix() -> list[str]:
    """Command prefix that runs a program without any network (a fresh network namespace), if possible."""
    import shutil
    import subprocess

    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    return []


def run_snakemake(workdir: Path, *args: str, timeout: int = 900, offline: bool = False,
                  check: bool = True):
    """Run the workflow's Snakefile in ``workdir`` (a subprocess); return the CompletedProcess.

    With ``check`` a non-zero exit fails the test and shows the tail of the output.
    """
    import subprocess
    import sys

    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
               *args]
    if offline:
        command = offline_prefix() + command
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed ({result.returncode}):\n"
                    f"{result.stdout[-4000:]}\n{result.stderr[-6000:]}")
    return result


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """One end-to-end run of the DEFAULT config (the offline demo) with `--cores 2`, shared by the
    tests that inspect its outputs. Runs with the network cut off (unshare -n) where possible.
    Returns the working directory (results/ inside)."""
    import time

    workdir = tmp_path_factory.mktemp("demo_run")
    start = time.perf_counter()
    run_snakemake(workdir, "--cores", "2", timeout=1200, offline=True)
    (workdir / "wall_seconds.txt").write_text(f"{time.perf_counter() - start:.1f}\n")
    return workdir
