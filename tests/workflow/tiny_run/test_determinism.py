"""Determinism of svd.nc and nmf.nc: same config and seed -> identical data variables on rerun; 1 vs 2
threads / dask workers -> equal within a stated tolerance.

Tolerances: a rerun with the same resources must be bit-identical (rtol = atol = 0). 1 vs 2 worker
threads or dask workers may round differently: BLAS picks other kernels and blockings for another
thread count, and a block that crossed to another worker process is a copy at another address (SIMD
alignment). Mode/component counts, coordinates and integer variables must still be equal. For floats:

* svd.nc (direct method: one Gram pass accumulated in float64, one eigensolve, one Rayleigh-Ritz step):
  rtol = 1e-6, atol = 1e-9 x the variable's largest magnitude -- far above the float64 rounding of
  a Gram sum over the windows, so only a real change of the result fails it.
* nmf.nc (iterative, factors in the training matrix's float32): each HALS iteration re-rounds W and H
  to float32, and NMF's flat directions do not damp a rounding difference, so after ``n_iter``
  iterations a factor may differ by about ``n_iter`` ulp of its largest magnitude; the test allows
  ``4 x n_iter x eps(float32) x max|x|`` (eps = 1.19e-7). Measured (tiny config, 2-core Intel Xeon,
  LocalCluster 1 vs 2 workers): 15 iterations, basis max difference 1.08e-6 of its max 1 (the bound
  is 7.2e-6), activations 2.8e-7 relative, reconstruction error 0.1133969 vs 0.1133972; 1 vs 2 threads
  of the threaded scheduler were bit-identical on that machine, not on an AMD EPYC one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers.reliability import TINY, TWO_EXPERIMENTS, assert_same_data, copy_run, data_vars, snakemake, with_threads

from precipmodes.config import section_defaults
from precipmodes.steps import parallel
from precipmodes.steps.decompose import nmf_files, svd_files

pytestmark = pytest.mark.workflow

RTOL = 1e-6
ATOL_OF_MAX = 1e-9
ULP_PER_ITERATION = 4
FIT_EPS = float(np.finfo(np.float32).eps)  # train.nc is float32, so are the NMF factors
OUTPUTS = ("svd.nc", "nmf.nc")


def tolerance(a: Path, b: Path) -> tuple[float, float]:
    """``(rtol, atol as a fraction of max|x|)`` for comparing ``a`` and ``b`` (see the module docstring)."""
    if a.name != "nmf.nc":
        return RTOL, ATOL_OF_MAX
    import xarray as xr

    n_iter = 0
    for path in (a, b):
        with xr.open_dataset(path) as ds:
            n_iter = max(n_iter, int(ds.attrs["n_iter"]))
    return 0.0, ULP_PER_ITERATION * n_iter * FIT_EPS


def assert_close_data(a: Path, b: Path) -> None:
    """Same variables, shapes, dtypes; floats within :func:`tolerance`; the rest exact."""
    left, right = data_vars(a), data_vars(b)
    assert sorted(left) == sorted(right)
    rtol, atol_of_max = tolerance(a, b)
    for name, x in left.items():
        y = right[name]
        assert x.shape == y.shape and x.dtype == y.dtype, f"{a.name}:{name}"
        if x.dtype.kind == "f":
            scale = float(np.nanmax(np.abs(x))) if np.isfinite(x).any() else 0.0
            np.testing.assert_allclose(y, x, rtol=rtol, atol=atol_of_max * scale, equal_nan=True,
                                       err_msg=f"{a.name}:{name}")
        else:
            np.testing.assert_array_equal(x, y, err_msg=f"{a.name}:{name}")


@pytest.fixture(scope="module")
def two_experiments(tiny_run, tmp_path_factory) -> Path:
    """A copy of the shared tiny run: e1 (3 modes) and e2 (2 modes, same periods) built in parallel
    with --cores 2 and rule threads 1."""
    return copy_run(tiny_run, tmp_path_factory.mktemp("determinism") / "work")


def test_parallel_experiments_keep_their_own_outputs(two_experiments, tmp_path):
    for experiment, n in (("e1", 3), ("e2", 2)):
        svd, nmf = (data_vars(two_experiments / f"results/{experiment}/{name}") for name in OUTPUTS)
        assert svd["mode"].tolist() == list(range(1, n + 1))
        assert nmf["component"].tolist() == list(range(1, n + 1))
    # same periods, same matrix; and e2's svd.nc is the 2-mode fit of it (not e1's modes cut to 2: the
    # imputation of the matrix's few gaps depends on the rank), so the parallel runs did not mix inputs
    results = two_experiments / "results"
    assert_same_data(results / "e1/train.nc", results / "e2/train.nc")
    refit = svd_files(train=results / "e1/train.nc", land_mask=results / "prepared/land_mask.nc",
                      output=tmp_path / "svd.nc", svd=section_defaults("svd", TINY.get("svd")), name="e2",
                      experiment=section_defaults("experiments.e2", TWO_EXPERIMENTS["e2"]))
    assert_close_data(results / "e2/svd.nc", refit)


def test_rerun_is_identical_and_two_threads_agree_within_tolerance(two_experiments, tmp_path):
    workdir = two_experiments
    first = tmp_path / "first"
    first.mkdir()
    for name in OUTPUTS:
        shutil.copy2(workdir / "results/e1" / name, first / name)
    targets = [f"results/e1/{name}" for name in OUTPUTS]

    snakemake(workdir, with_threads(1, TWO_EXPERIMENTS), targets, "--forcerun", "svd", "nmf")
    for name in OUTPUTS:
        assert_same_data(first / name, workdir / "results/e1" / name)

    snakemake(workdir, with_threads(2, TWO_EXPERIMENTS), targets, "--forcerun", "svd", "nmf", cores=2)
    log = (workdir / "results/logs/nmf_e1.log").read_text()
    assert "2 worker thread(s)" in log, log
    for name in OUTPUTS:
        assert_close_data(first / name, workdir / "results/e1" / name)


@pytest.mark.parametrize("cluster", ["threads", "local"])
def test_streamed_decomposition_one_vs_two_dask_workers(two_experiments, tmp_path, cluster):
    """The tiny train.nc streamed in 40-cell dask blocks (max_in_memory_mb=0) under 1 and 2 dask workers
    (threaded scheduler, or a LocalCluster of process workers): equal within the stated tolerance,
    and bit-identical when repeated with the same number of workers."""
    prepared = two_experiments / "results"
    train, mask = prepared / "e1/train.nc", prepared / "prepared/land_mask.nc"
    experiment = section_defaults("experiments.e1", TINY["experiments"]["e1"])
    settings = {"svd": section_defaults("svd", {"method": "gram", "cell_chunk": 40}),
                "nmf": section_defaults("nmf", {"max_iter": 200, "cell_chunk": 40, "seed": 0})}
    runs = {}
    for workers in (1, 2, 2) if cluster == "threads" else (1, 2):
        folder = tmp_path / f"{workers}-{len(runs)}"
        with parallel.dask_cluster({"cluster": cluster}, workers, 2000):
            svd_files(train=train, land_mask=mask, output=folder / "svd.nc", svd=settings["svd"], name="e1",
                      experiment=experiment, max_in_memory_mb=0)
            nmf_files(train=train, land_mask=mask, output=folder / "nmf.nc", nmf=settings["nmf"], name="e1",
                      experiment=experiment, max_in_memory_mb=0)
        runs[folder.name] = folder
    one, two = runs["1-0"], runs["2-1"]
    for name in OUTPUTS:
        assert_close_data(one / name, two / name)
        if "2-2" in runs:
            assert_same_data(two / name, runs["2-2"] / name)
