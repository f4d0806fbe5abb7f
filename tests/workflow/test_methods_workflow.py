"""The Hilbert SVD (svd.hilbert) and ARD-NMF (nmf.ard) through `snakemake` on the tiny demo: hilbert.nc
(CF-valid), its figure, nmf.nc's relevance beside rank_choice, and the messages a user meets on bad settings."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.reliability import TINY, copy_run, output_text, snakemake, tiny

from precipmodes.io.netcdf import open_netcdf

pytestmark = pytest.mark.workflow

K_MAX = 6
HILBERT_MODES = 2
TARGETS = ["results/e1/hilbert.nc", "results/e1/nmf.nc", "results/e1/evaluation.nc",
           "results/e1/figures/hilbert_modes.png", "results/e1/figures/rank_choice.png"]


def methods_config(hilbert: dict | None = None, n_modes: int = K_MAX) -> dict:
    return tiny(experiments={"e1": {**TINY["experiments"]["e1"], "n_modes": n_modes, "rank_selection": [2, 3]}},
                svd={"hilbert": hilbert or {"n_modes": HILBERT_MODES}}, nmf={"ard": True, "stability_seeds": 0})


@pytest.fixture(scope="module")
def methods_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("methods_run")
    snakemake(workdir, methods_config(), TARGETS, cores=2, timeout=900)
    return workdir


def test_hilbert_nc_holds_amplitude_phase_and_complex_scores(methods_run):
    ds = open_netcdf(methods_run / "results" / "e1" / "hilbert.nc")
    train = open_netcdf(methods_run / "results" / "e1" / "train.nc")
    assert ds["amplitude"].dims == ("mode", "lat", "lon") and ds.sizes["mode"] == HILBERT_MODES
    assert ds["phase"].attrs["units"] == "rad" and float(np.abs(ds["phase"]).max()) <= np.pi + 1e-12
    assert ds["scores_real"].dims == ("mode", "time") and ds["scores_imag"].attrs["units"] == "mm"
    np.testing.assert_array_equal(ds["time"].values, train["time"].values)
    # every fitted window's complex score; unit-norm amplitude over the land cells
    used = ds["run"].values > 0
    assert used.sum() == ds.attrs["n_windows"] >= 3
    assert np.isfinite(ds["scores_real"].values[:, used]).all()
    np.testing.assert_allclose((ds["amplitude"] ** 2).sum(("lat", "lon")), 1.0, rtol=1e-6)
    ratio = ds["explained_variance_ratio"].values
    assert (np.diff(ratio) <= 0).all() and ratio.sum() < 1
    assert ds.attrs["padding"] == "exp" and ds.attrs["experiment"] == "e1"
    assert (methods_run / "results" / "e1" / "figures" / "hilbert_modes.png").stat().st_size > 10_000


def test_hilbert_nc_passes_the_cf_checker(methods_run):
    pytest.importorskip("compliance_checker.runner")
    from helpers.cf import LEVELS, cf_failures

    assert cf_failures(methods_run / "results" / "e1" / "hilbert.nc", LEVELS) == []


def test_nmf_nc_holds_the_ard_relevance_and_the_kept_count(methods_run):
    nmf = open_netcdf(methods_run / "results" / "e1" / "nmf.nc")
    assert nmf.attrs["ard"] == 1 and nmf.attrs["n_components_max"] == K_MAX
    assert nmf.sizes["candidate"] == K_MAX and nmf.attrs["n_components"] == nmf.sizes["component"] <= K_MAX
    relevance = nmf["relevance"].values
    assert (np.diff(relevance) <= 0).all()
    assert (relevance[: nmf.sizes["component"]] >= nmf.attrs["ard_threshold"]).all()
    assert (methods_run / "results" / "e1" / "figures" / "rank_choice.png").stat().st_size > 10_000
    evaluation = open_netcdf(methods_run / "results" / "e1" / "evaluation.nc")  # the test period on the kept ones
    assert evaluation.sizes["component"] == nmf.sizes["component"]
    assert np.isfinite(evaluation["nmf_rmse"].values).all()


def test_more_hilbert_modes_than_windows_names_the_config_key(methods_run, tmp_path):
    workdir = copy_run(methods_run, tmp_path / "run")
    result = snakemake(workdir, methods_config({"n_modes": 500}), ["results/e1/hilbert.nc"], check=False)
    assert result.returncode != 0
    text = output_text(result)
    assert "svd.hilbert.n_modes" in text and "n_modes = 500" in text


def test_ard_with_one_component_names_the_config_key(methods_run, tmp_path):
    workdir = copy_run(methods_run, tmp_path / "run")
    result = snakemake(workdir, methods_config(n_modes=1), ["results/e1/nmf.nc"], check=False)
    assert result.returncode != 0
    assert "experiments.e1.n_modes: NMF ard: n_components = 1" in output_text(result)
