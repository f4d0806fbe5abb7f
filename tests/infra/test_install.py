"""The package installs from a wheel, not only in editable mode.

A wheel is built from a copy of the sources (pip's ordinary build, so the checkout gains no build/ or
egg-info) and installed into a fresh virtual environment; that environment sees the scientific stack of
the one running the tests (a ``.pth`` line, so nothing is downloaded again) but precipmodes only from the
wheel, installed read-only. There ``precipmodes --version``, the config schema (shipped as package data)
and the README's API snippet on real E-OBS data must work, and numba's compile cache must land in the user
cache folder, not beside the read-only package.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from helpers.workflow import REPO

pytestmark = pytest.mark.workflow


def readme_api_snippet() -> str:
    """The first Python block under the README's API heading."""
    text = (REPO / "README.md").read_text()
    section = re.search(r"^## [^\n]*API[^\n]*\n(.*?)(?=^## )", text, re.S | re.M)
    assert section, "README.md has no '## ... API' section"
    block = re.search(r"```python\n(.*?)```", section.group(1), re.S)
    assert block, "README.md's API section has no ```python block"
    return block.group(1)


def build_wheel(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "workflow" / "precipmodes", source / "workflow" / "precipmodes",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp_path / "dist"
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--disable-pip-version-check",
                             "-w", str(dist), str(source)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = dist.glob("precipmodes-*.whl")
    return wheel


def make_read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


@pytest.fixture(scope="module")
def installed(tmp_path_factory, shared_data):
    """(python, bin folder, installed package folder, environment) of a fresh venv with the wheel installed."""
    tmp_path = tmp_path_factory.mktemp("install")
    wheel = build_wheel(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    result = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                             "--no-index", "--quiet", "--disable-pip-version-check", str(wheel)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # the stack of the running environment, appended after the venv's own site-packages (a path line in a
    # .pth file: the running environment's own .pth files, such as an editable precipmodes, are not run)
    stack = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "zz_test_stack.pth").write_text("".join(f"{p}\n" for p in sorted(stack)))
    package = site / "precipmodes"
    make_read_only(package)
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "NUMBA_CACHE_DIR")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    work = tmp_path / "work"
    work.mkdir()
    (work / "eobs.nc").symlink_to(shared_data / "eobs_iberia_pr_djf_1982-2002.nc")
    yield python, venv / "bin", package, env, work
    for path in [package, *package.rglob("*")]:  # let pytest remove its temporary folder
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def test_version_from_the_wheel(installed):
    python, bin_dir, package, env, work = installed
    result = subprocess.run([str(bin_dir / "precipmodes"), "--version"], capture_output=True, text=True, env=env,
                            cwd=work, timeout=120)
    assert result.returncode == 0, result.stderr
    from precipmodes import __version__
    assert result.stdout.strip() == f"precipmodes {__version__}"


def test_schema_ships_with_the_package(installed):
    python, bin_dir, package, env, work = installed
    script = ("import precipmodes, precipmodes.config as c; print(precipmodes.__file__); "
              "print(c.section_defaults('nmf')['solver']); print(sorted(c.load_schema()['properties'])[:3])")
    result = subprocess.run([str(python), "-c", script], capture_output=True, text=True, env=env, cwd=work,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    origin, solver, keys = result.stdout.splitlines()
    assert Path(origin).parent == package, f"precipmodes imported from {origin}, not from the wheel"
    assert solver == "hals"
    assert keys == "['accumulation', 'archive_dir', 'coverage']"


def test_readme_api_snippet_runs_from_the_wheel(installed):
    """The README's snippet as a user pastes it, on E-OBS (``eobs.nc`` with ``pr``, NaN over the sea); the
    NMF fit compiles the numba kernel, whose cache goes to $XDG_CACHE_HOME/precipmodes/numba."""
    python, bin_dir, package, env, work = installed
    script = "import precipmodes; print(precipmodes.__file__)\n" + readme_api_snippet()
    result = subprocess.run([str(python), "-c", script], capture_output=True, text=True, env=env, cwd=work,
                            timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    assert Path(result.stdout.splitlines()[0]).parent == package
    cache = Path(env["XDG_CACHE_HOME"]) / "precipmodes" / "numba"
    assert any(cache.rglob("*.nbi")), f"no numba index in {cache}: {sorted(cache.rglob('*'))}"
    assert not list(package.rglob("*.nbi")), "numba wrote its cache beside the installed package"
