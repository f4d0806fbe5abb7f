"""Conda environments (envs/*.yaml) agree with pyproject.toml, every rule uses one, and lint passes.

Conda cannot reach its channels from the test machines, so the environments are checked
against pyproject.toml rather than created: the same packages (every run-time dependency
of pyproject is in some env; every env package is a pyproject dependency) and compatible pins
(an exact pin must be the same exact pin; a lower bound must be at least pyproject's).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from helpers.workflow import REPO
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

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
    """``{rule name: (rule file name, rule text)}`` of every rule (and checkpoint) in workflow/rules/*.smk."""
    blocks = {}
    for path in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        parts = re.split(r"^(?:rule|checkpoint) (\w+):\n", path.read_text(), flags=re.M)
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
            # accumulate_threads: resources.accumulate_partition.threads, spread over the last round's partitions
            assert re.search(rf"{key}\s*(rule_resources\(\"|accumulate_threads$)", body, re.M), \
                f"{filename}: rule {name}: {key} not from config"


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


def _precipmodes_file(module: str) -> Path | None:
    base = REPO / "workflow" / Path(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _import_time_nodes(node: ast.AST):
    """The nodes that run when a module is imported: everything but the bodies of functions."""
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield child
            yield from _import_time_nodes(child)


def _imports(path: Path, module: str | None) -> set[str]:
    """Absolute names of the modules ``path`` imports when it is imported or run (not the lazy imports
    inside functions, e.g. numba in precipmodes.linalg.hals, sklearn behind ``precipmodes.NMF``: a rule whose job
    calls them has them in its env anyway); ``module`` is its own dotted name, None for a rule script."""
    found = set()
    package = module if module and path.name == "__init__.py" else (module or "").rpartition(".")[0]
    for node in _import_time_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else [])) \
                if node.level else node.module
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names if _precipmodes_file(f"{base}.{alias.name}")}
    return found


def third_party_imports(script: Path) -> set[str]:
    """Top-level names of the third-party modules a rule script imports, directly or through the precipmodes
    modules it imports (followed to the end)."""
    names, seen, queue = set(), set(), [(script, None)]
    while queue:
        path, module = queue.pop()
        for name in _imports(path, module):
            top = name.split(".")[0]
            if top != "precipmodes":
                names.add(top)
                continue
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
                dotted = ".".join(parts[:depth])
                if dotted not in seen and (file := _precipmodes_file(dotted)):
                    seen.add(dotted)
                    queue.append((file, dotted))
    return {name for name in names if name not in sys.stdlib_module_names and name != "__future__"}


def test_every_import_of_a_rule_script_is_in_the_rules_conda_env():
    """A rule's job runs in its conda env (``--sdm conda``): every third-party module its script imports,
    through the package too, must come from a package of that env (not from the head environment that
    Snakemake happens to put on sys.path)."""
    from importlib.metadata import packages_distributions

    distributions = packages_distributions()
    figures = third_party_imports(REPO / "workflow" / "scripts" / "figures.py")
    assert {"matplotlib", "cartopy", "threadpoolctl", "xarray"} <= figures  # through precipmodes.plots, rulescript
    problems, checked = [], 0
    for name, (filename, body) in rule_blocks().items():
        script = re.search(r"script:\s*\n\s*\"([^\"]+)\"", body)
        env = re.search(r"conda:\s*\n\s*\"([^\"]+)\"", body)
        if not script:
            continue
        env_path = (REPO / "workflow" / "rules" / env.group(1)).resolve()
        packages = set(env_specs(env_path))
        for module in sorted(third_party_imports((REPO / "workflow" / "rules" / script.group(1)).resolve())):
            dists = {normalise(d) for d in distributions.get(module, [])}
            if not dists:
                problems.append(f"rule {name}: imports {module}, which no installed distribution provides")
            elif not dists & packages:
                problems.append(f"rule {name} ({filename}): imports {module} ({', '.join(sorted(dists))}), "
                                f"not in {env_path.name}")
        checked += 1
    assert checked >= 15
    assert not problems, "\n".join(problems)
