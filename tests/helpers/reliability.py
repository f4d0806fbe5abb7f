"""Helpers shared by the reliability tests (test_bad_inputs, test_faults, test_determinism).

The tiny demo configuration (tests/configs/tiny.yaml: 3 months, 1-degree grid over Japan, one experiment), a
Snakemake runner that writes it to the workdir, a synthetic files-source writer
(the local HTTP server is conftest.file_server) and the check that a failed run
left nothing partial behind.
"""

from __future__ import annotations

import contextlib
import copy
import shutil
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import xarray as xr
import yaml

from helpers.workflow import REPO, run_snakemake

JST = "+09:00"
PARTS = "results/prepared/totals"  # the partitions' window totals, one file per partition
SELECTION = "results/prepared/selection.nc"  # made from all the partitions: the target that builds them
TINY = yaml.safe_load((REPO / "tests" / "configs" / "tiny.yaml").read_text())


def tiny(**sections) -> dict:
    """A deep copy of TINY with whole top-level sections replaced (``None`` removes one)."""
    config = copy.deepcopy(TINY)
    for key, value in sections.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    return config


def snakemake(workdir: Path, config: dict, targets: list[str], *extra: str, check: bool = True,
              cores: int = 1, timeout: int = 600):
    """Write ``config`` to ``workdir/config.yaml`` and run the workflow for ``targets`` there."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return run_snakemake(workdir, *targets, "--configfile", str(workdir / "config.yaml"),
                         "--cores", str(cores), *extra, check=check, timeout=timeout)


TWO_EXPERIMENTS = {"e1": TINY["experiments"]["e1"], "e2": {**TINY["experiments"]["e1"], "n_modes": 2}}


def with_threads(threads: int, experiments: dict | None = None, **sections) -> dict:
    """TINY with svd/nmf rule threads set (resources section) and optionally other experiments."""
    return tiny(resources={"svd": {"threads": threads}, "nmf": {"threads": threads}},
                **({"experiments": experiments} if experiments else {}), **sections)


def build_tiny_run(workdir: Path) -> Path:
    """The tiny demo run shared by the reliability tests (session fixture ``tiny_run`` in conftest.py):
    e1 (3 modes) and e2 (2 modes, same periods) up to svd.nc and nmf.nc with --cores 2 and rule threads 1.
    Read-only: tests that run snakemake on it work on a copy (:func:`copy_run`)."""
    targets = [f"results/{e}/{name}" for e in TWO_EXPERIMENTS for name in ("svd.nc", "nmf.nc")]
    snakemake(workdir, with_threads(1, TWO_EXPERIMENTS), targets, cores=2)
    return workdir


def copy_run(source: Path, destination: Path) -> Path:
    """Copy a finished workdir (results and Snakemake's metadata, not its locks), keeping mtimes."""
    shutil.copytree(source, destination, symlinks=True,
                    ignore=lambda folder, names: ["locks"] if folder.endswith(".snakemake") else [])
    return destination


def output_text(result) -> str:
    """What the user sees on the terminal: snakemake's stdout and stderr together."""
    return result.stdout + result.stderr


def leftovers(results: Path) -> list[Path]:
    """Temporary files of interrupted writes (write_netcdf's ``.<name>.tmp-<pid>``)."""
    return sorted(p for p in results.rglob("*") if ".tmp-" in p.name) if results.exists() else []


def assert_nothing_partial(workdir: Path, failed: list[str], damaged: list[str] = ()) -> None:
    """No output of the failed rule, no temporary file, and every NetCDF left in results/ (except the
    ``damaged`` inputs a test broke on purpose) opens and reads."""
    results = workdir / "results"
    for target in failed:
        assert not (workdir / target).exists(), f"{target} was left behind by a failed run"
        assert not (workdir / (target + ".json")).exists(), f"{target}.json was left behind"
    assert leftovers(results) == [], f"temporary files left: {leftovers(results)}"
    for path in sorted(results.rglob("*.nc")) if results.exists() else []:
        if any(path == workdir / name for name in damaged):
            continue
        with xr.open_dataset(path) as ds:  # a truncated file would fail here
            ds.load()


def data_vars(path: Path) -> dict[str, np.ndarray]:
    """Every data variable (and coordinate) of a NetCDF file as numpy arrays (attributes ignored)."""
    with xr.open_dataset(path) as ds:
        return {str(name): var.values.copy() for name, var in ds.variables.items()}


def assert_same_data(a: Path, b: Path, rtol: float = 0.0, atol: float = 0.0) -> None:
    """Same variables, shapes and values (NaN == NaN); exact unless tolerances are given."""
    left, right = data_vars(a), data_vars(b)
    assert sorted(left) == sorted(right), f"{a.name}: variables differ"
    for name in left:
        x, y = left[name], right[name]
        assert x.shape == y.shape and x.dtype == y.dtype, f"{a.name}:{name} shape/dtype differs"
        if x.dtype.kind in "fc" and (rtol or atol):
            np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, equal_nan=True, err_msg=f"{a.name}:{name}")
        else:
            np.testing.assert_array_equal(x, y, err_msg=f"{a.name}:{name}")


def precip_file(path: Path, *, days: int = 12, variable: str = "precip", units: str | None = "mm",
                values=None, times=None, lat=None, lon=None) -> Path:
    """A small daily precipitation NetCDF over the TINY domain (1-degree cell centres)."""
    lat = np.arange(30.5, 46.0, 1.0) if lat is None else np.asarray(lat)
    lon = np.arange(128.5, 148.0, 1.0) if lon is None else np.asarray(lon)
    times = pd.date_range("2006-01-01", periods=days, freq="D").values if times is None else np.asarray(times)
    if values is None:
        values = np.random.default_rng(0).gamma(0.6, 4.0, (len(times), lat.size, lon.size))
    da = xr.DataArray(np.asarray(values, dtype=np.float32), dims=("time", "lat", "lon"),
                      coords={"time": times, "lat": lat, "lon": lon}, name=variable)
    if units is not None:
        da.attrs["units"] = units
    path.parent.mkdir(parents=True, exist_ok=True)
    da.to_dataset().to_netcdf(path)
    return path


def files_source(*paths: Path | str, variable: str = "precip", **extra) -> dict:
    """A ``source`` section of kind files."""
    return {"kind": "files", "files": {"paths": [str(p) for p in paths], "variable": variable, **extra}}


def http_source(url_template: str, **extra) -> dict:
    """A ``source`` section of kind http (downloads into the default cache_dir unless given)."""
    return {"kind": "http", "http": {"url_template": url_template, "years": [2006, 2006], "variable": "precip",
                                     "retries": 0, "backoff_s": 0, "timeout_s": 10, **extra}}


@contextlib.contextmanager
def prepared_totals(prepared: Path) -> Iterator[xr.Dataset]:
    """A run's window totals, loaded: the partitions' files under ``prepared`` (``<results_dir>/prepared``)
    read as one dataset, as the rules read them."""
    from precipmodes.steps.totals import open_totals

    with open_totals(sorted((prepared / "totals").glob("*.nc"))) as totals:
        yield totals.load()
