"""Conda environments (envs/*.yaml) agree with pyproject.toml, every rule uses one, and lint passes.

Conda cannot reach its channels from the test machines, so the environments are checked
against pyproject.toml rather than created: the same packages (every run-time dependency
of pyproject is in some env; every env package is a pyproject dependency) and compatible pins
(an exact pin must be the same exact pin; a lower bound must be at least pyproject's).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from conftest import REPO

#: pyproject dependencies only the process that runs Snakemake needs (not the rule jobs)
HEAD_ONLY = {"snakemake", "snakemake-executor-plugin-slurm", "snakemake-executor-plugin-slurm-jobstep", "pygments"}
ENVS = sorted((REPO / "envs").glob("*.yaml"))


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject_requirements() -> dict[str, Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {normalise(Requirement(r).name): Requirement(r) for r in project["dependencies"]}


def env_specs(path) -> dict[str, SpecifierSet]:
    """Packages of a conda env file (conda and pip sections) with their version specifiers."""
    env = yaml.safe_load(path.read_text())
    specs = {}
    for entry in env["dependencies"]:
        for item in entry["pip"] if isinstance(entry, dict) else [entry]:
            match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(.*)", item.strip())
            name, spec = match.groups()
            spec = re.sub(r"^=(?=\d)", "==", spec)  # conda's "=1.2" means "==1.2.*"; accept it as ==
            specs[normalise(name)] = SpecifierSet(spec)
    return specs


def compatible(env_spec: SpecifierSet, wanted: SpecifierSet) -> str | None:
    """None if every version ``env_spec`` allows at its bounds also satisfies ``wanted``, else why not."""
    pins = {s.version for s in wanted if s.operator == "=="}
    env_pins = {s.version for s in env_spec if s.operator == "=="}
    if pins and env_pins != pins:
        return f"pyproject pins =={pins.pop()}, env has '{env_spec or 'no pin'}'"
    if env_pins and not all(Version(v) in wanted for v in env_pins):
        return f"env pin {env_spec} outside pyproject's '{wanted}'"
    lows = [Version(s.version) for s in env_spec if s.operator in (">=", ">")]
    wanted_lows = [Version(s.version) for s in wanted if s.operator in (">=", ">")]
    if wanted_lows and not env_pins and not (lows and max(lows) >= max(wanted_lows)):
        return f"pyproject needs '{wanted}', env allows '{env_spec or 'any version'}'"
    return None


def test_envs_exist_and_parse():
    assert {p.name for p in ENVS} >= {"core.yaml", "figures.yaml"}
    for path in ENVS:
        env = yaml.safe_load(path.read_text())
        assert env["channels"][0] == "conda-forge", path.name
        assert "python" in env_specs(path), path.name


def test_envs_and_pyproject_have_the_same_packages():
    required = pyproject_requirements()
    in_envs = {}
    for path in ENVS:
        for name in env_specs(path):
            in_envs.setdefault(name, []).append(path.name)
    missing = set(required) - HEAD_ONLY - set(in_envs)
    unknown = set(in_envs) - set(required) - {"python", "pip"}
    assert not missing, f"pyproject dependencies in no env: {sorted(missing)}"
    assert not unknown, f"env packages pyproject does not list: {sorted(unknown)}"


def test_env_pins_are_compatible_with_pyproject_and_each_other():
    required = pyproject_requirements()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    problems, seen = [], {}
    for path in ENVS:
        for name, spec in env_specs(path).items():
            wanted = (SpecifierSet(project["requires-python"]) if name == "python"
                      else required[name].specifier if name in required else None)
            if wanted is not None and (why := compatible(spec, wanted)):
                problems.append(f"{path.name}: {name}: {why}")
            if seen.setdefault(name, (path.name, str(spec)))[1] != str(spec):
                problems.append(f"{name}: {seen[name][0]} says '{seen[name][1]}', {path.name} says '{spec}'")
    assert problems == []


def test_compatibility_check_can_fail():
    assert compatible(SpecifierSet("==2026.7.0"), SpecifierSet("==2026.8.0"))
    assert compatible(SpecifierSet(">=1.20"), SpecifierSet(">=1.26"))
    assert compatible(SpecifierSet(""), SpecifierSet(">=1.26"))
    assert compatible(SpecifierSet(">=1.26"), SpecifierSet(">=1.26")) is None
    assert compatible(SpecifierSet("==2026.8.0"), SpecifierSet("==2026.8.0")) is None


def rule_blocks() -> dict[str, tuple[str, str]]:
    """``{rule name: (rule file name, rule text)}`` of every rule in workflow/rules/*.smk."""
    blocks = {}
    for path in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        parts = re.split(r"^rule (\w+):\n", path.read_text(), flags=re.M)
        for name, body in zip(parts[1::2], parts[2::2]):
            blocks[name] = (path.name, re.split(r"^\S", body, maxsplit=1, flags=re.M)[0])
    return blocks


def test_every_job_rule_has_an_env_threads_and_resources_from_config():
    jobs = {name: block for name, block in rule_blocks().items() if re.search(r"^\s+(script|shell):", block[1], re.M)}
    assert {"raw", "archive_experiment"} <= set(jobs)
    for name, (filename, body) in jobs.items():
        env = re.search(r"conda:\s*\n\s*\"([^\"]+)\"", body)
        assert env, f"{filename}: rule {name} has no conda: directive"
        assert (REPO / "workflow" / "rules" / env.group(1)).resolve().parent == REPO / "envs", (name, env.group(1))
        assert (REPO / "workflow" / "rules" / env.group(1)).resolve().is_file(), (name, env.group(1))
        for key in ("threads:", "mem_mb=", "runtime="):
            assert re.search(rf"{key}\s*rule_resources\(\"", body), f"{filename}: rule {name}: {key} not from config"


def test_snakemake_lint_passes(tmp_path):
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
                             "--directory", str(tmp_path), "--lint"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]


def test_report_dependencies_are_declared():
    """`snakemake --report` imports pygments and jinja2; a plain `pip install -e .` must bring both."""
    requirements = pyproject_requirements()
    assert "pygments" in requirements
    from importlib.metadata import requires

    assert any(normalise(Requirement(r).name) == "jinja2" for r in requires("snakemake")), "snakemake lost jinja2"
