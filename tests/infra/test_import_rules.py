"""Who imports whom in the package, who touches files, and how long modules and functions are (issue #26).

Every module of ``workflow/precipmodes`` is parsed with :mod:`ast` (nothing is imported) and checked:

* ``linalg/`` imports no xarray and nothing of precipmodes outside ``linalg/``: array kernels only.
* Only ``io/``, ``steps/``, the commands (``cli.py``, ``schemadoc.py``) and ``plots/`` (the figures rule reads
  the results and saves the PNGs: files) touch files. Elsewhere no module imports a file-level library
  (:data:`FILE_MODULES`) or :mod:`precipmodes.io`, calls ``open()``, an xarray/numpy reader or writer
  (:data:`FILE_CALLS`, :data:`NUMPY_FILE_CALLS`), or a ``Path``/``os`` write or removal
  (:data:`FILE_METHODS`, :data:`OS_FILE_CALLS`).
* No module is over :data:`MAX_MODULE_LINES` lines and no function (method, nested function) over
  :data:`MAX_FUNCTION_LINES`, but for the entries of :data:`LONG_MODULES` / :data:`LONG_FUNCTIONS`, each
  with the reason it is not split yet.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "workflow" / "precipmodes"
FILE_TOUCHING = ("io", "steps", "plots", "cli.py", "schemadoc.py")  # first part of the path under PACKAGE
FILE_MODULES = {"netCDF4", "h5netcdf", "h5py", "shutil", "tempfile", "glob", "zarr", "precipmodes.io"}
FILE_CALLS = {"open_dataset", "open_mfdataset", "open_dataarray", "open_zarr", "load_dataset", "load_dataarray",
              "to_netcdf", "to_zarr"}
NUMPY_FILE_CALLS = {"load", "save", "savez", "savez_compressed", "savetxt", "loadtxt", "fromfile", "tofile"}
FILE_METHODS = {"write_text", "write_bytes", "unlink", "mkdir", "rmdir", "touch", "savefig"}
OS_FILE_CALLS = {"remove", "unlink", "rename", "replace", "makedirs", "mkdir", "rmdir", "removedirs", "open"}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
#: modules over MAX_MODULE_LINES, with why they are not split yet
LONG_MODULES: dict[str, str] = {}
#: functions over MAX_FUNCTION_LINES ("module path::qualified name"), with why they are not split yet
LONG_FUNCTIONS: dict[str, str] = {}


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def name_of(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def imported(tree: ast.AST, path: Path) -> list[tuple[int, str]]:
    """``(line, absolute module)`` of every import of the module at ``path`` (relative ones resolved)."""
    here = ["precipmodes", *path.relative_to(PACKAGE).with_suffix("").parts]
    if here[-1] == "__init__":
        here = here[:-1] + ["__init__"]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = here[:len(here) - node.level] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.append((node.lineno, module))
            # `from precipmodes import io` / `from precipmodes.io import netcdf` name submodules too
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@pytest.mark.parametrize("path", [p for p in modules() if name_of(p).startswith("linalg/")], ids=name_of)
def test_linalg_imports_no_xarray_and_no_other_subpackage(path):
    bad = [f"line {line}: {module}" for line, module in imported(parsed(path), path)
           if within(module, "xarray") or (within(module, "precipmodes") and not within(module, "precipmodes.linalg"))]
    assert not bad, f"{name_of(path)} is an array kernel module: {bad}"


def file_uses(tree: ast.AST, path: Path) -> list[str]:
    """What in ``tree`` touches files: imports of :data:`FILE_MODULES`, the calls named in the module docstring."""
    found = [f"line {line}: import {module}" for line, module in imported(tree, path)
             if any(within(module, name) for name in FILE_MODULES)]
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == "open":
            found.append(f"line {node.lineno}: open()")
        elif isinstance(func, ast.Attribute):
            owner = func.value.id if isinstance(func.value, ast.Name) else None
            if (func.attr in FILE_CALLS or func.attr in FILE_METHODS
                    or (owner in ("np", "numpy") and func.attr in NUMPY_FILE_CALLS)
                    or (owner == "os" and func.attr in OS_FILE_CALLS)
                    or (owner in ("xr", "xarray") and func.attr.startswith("open_"))):
                found.append(f"line {node.lineno}: {owner + '.' if owner else '.'}{func.attr}()")
    return found


@pytest.mark.parametrize("path", [p for p in modules() if name_of(p).split("/")[0] not in FILE_TOUCHING],
                         ids=name_of)
def test_only_io_and_steps_touch_files(path):
    found = file_uses(parsed(path), path)
    assert not found, f"{name_of(path)} touches files (move that part to io/ or steps/): {found}"


def test_the_file_rule_sees_what_io_does():
    """The rule is not vacuous: the modules that do write and read files are caught by it."""
    for name in ("io/netcdf.py", "io/owned.py", "io/archive.py", "steps/overview.py"):
        assert file_uses(parsed(PACKAGE / name), PACKAGE / name), name


def test_no_module_too_long():
    long = {name_of(p): n for p in modules() if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert set(long) <= set(LONG_MODULES), {name: n for name, n in long.items() if name not in LONG_MODULES}
    assert set(LONG_MODULES) <= set(long), f"split, drop from LONG_MODULES: {set(LONG_MODULES) - set(long)}"


def functions(tree: ast.AST, prefix: str = ""):
    """``(qualified name, lines)`` of every function and method in ``tree``, nested ones included."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield prefix + node.name, node.end_lineno - node.lineno + 1
            yield from functions(node, prefix + node.name + ".")
        elif isinstance(node, ast.ClassDef):
            yield from functions(node, prefix + node.name + ".")
        else:
            yield from functions(node, prefix)


def test_no_function_too_long():
    long = {f"{name_of(p)}::{name}": n for p in modules() for name, n in functions(parsed(p)) if n > MAX_FUNCTION_LINES}
    assert set(long) <= set(LONG_FUNCTIONS), {name: n for name, n in long.items() if name not in LONG_FUNCTIONS}
    assert set(LONG_FUNCTIONS) <= set(long), f"split, drop from LONG_FUNCTIONS: {set(LONG_FUNCTIONS) - set(long)}"
