"""Rotated modes, bootstrap significance and hold-out skill on real E-OBS winters, through `snakemake`.

A user-like config: the E-OBS file as a `files` source, land from the data's NaN, 72-hour windows from the
first day, train 1982-1996 / test 1996-2002 winters, 8 modes, varimax rotation and a 30-resample bootstrap on,
rank selection over [2, 8] with the NMF stability of 4 random initialisations.
E-OBS has a few intermittently missing land cells: the fits and projections work around them.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from helpers.workflow import run_snakemake

from precipmodes.decomposition.rotation import rotate
from precipmodes.grid import stack_land
from precipmodes.io.netcdf import open_netcdf

pytestmark = pytest.mark.workflow

EOBS = "eobs_iberia_pr_djf_1982-2002.nc"
N_MODES = 8
RANKS = [2, 8]


@pytest.fixture(scope="module")
def eobs_run(shared_data, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("science_eobs")
    config = {
        "source": {"kind": "files", "files": {"paths": [str(shared_data / EOBS)], "variable": "pr"}},
        "domain": {"lon": [-10.0, 4.5], "lat": [35.0, 44.5]},
        "land_mask": {"method": "data_nan"},
        "accumulation": {"hours": 72, "anchor": "first"},
        "experiments": {"eobs": {"train": ["1982-12-01T00:00Z", "1996-06-01T00:00Z"],
                                 "test": ["1996-06-01T00:00Z", "2002-03-01T00:00Z"], "n_modes": N_MODES,
                                 "rank_selection": RANKS}},
        "svd": {"rotation": {"method": "varimax", "n_modes": N_MODES},
                "bootstrap": {"n": 30, "block_windows": 10, "seed": 0}},
        "nmf": {"max_iter": 1000},
        "evaluation": {"holdout_fraction": 0.2},
        "figures": {"coastline_resolution": "50m", "dpi": 60},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    run_snakemake(workdir, "--configfile", str(workdir / "config.yaml"), "--cores", "2", timeout=1500)
    return workdir / "results" / "eobs"


def test_rotated_modes_in_svd_nc_equal_a_rotation_of_its_modes(eobs_run):
    svd = open_netcdf(eobs_run / "svd.nc")
    assert svd["rotated_modes"].dims == ("rotated_mode", "lat", "lon")
    assert svd["rotated_coefficients"].dims == ("rotated_mode", "time")
    assert svd["rotated_modes"].attrs["units"] == "1" and svd["rotated_coefficients"].attrs["units"] == "mm"
    land = ~np.isnan(svd["spatial_modes"].isel(mode=0, drop=True))
    modes = stack_land(svd["spatial_modes"], land).transpose("cell", "mode")
    again = rotate(modes, svd["singular_values"], svd["temporal_coefficients"], svd.sizes["time"],
                   svd.attrs["total_sum_of_squares"], "varimax", N_MODES)
    stored = stack_land(svd["rotated_modes"], land).transpose("cell", "rotated_mode").values
    np.testing.assert_allclose(stored, again["rotated_modes"].values, atol=1e-6)  # float64 -> NetCDF -> float64
    ratio = svd["rotated_explained_variance_ratio"].values
    assert (np.diff(ratio) <= 0).all()
    assert ratio.sum() == pytest.approx(float(svd["explained_variance_ratio"].sum()), rel=1e-9)
    np.testing.assert_allclose(svd["factor_correlation"].values, np.eye(N_MODES), atol=1e-9)
    assert (eobs_run / "figures" / "rotated_modes.png").stat().st_size > 10_000


def test_bootstrap_and_effective_north_errors_on_eobs(eobs_run):
    svd = open_netcdf(eobs_run / "svd.nc")
    eig = svd["eigenvalues"].values
    low, high = svd["eigenvalue_low"].values, svd["eigenvalue_high"].values
    assert (low[:3] <= eig[:3]).all() and (eig[:3] <= high[:3]).all()
    stability = svd["pattern_stability"].values
    assert ((stability >= 0) & (stability <= 1)).all()
    assert stability[0] > 0.95  # the leading winter-rain pattern is robust to resampling winters
    N = svd.sizes["time"]
    assert (svd["n_effective"].values <= N).all()
    # 72-hour rain totals persist: the leading mode's coefficients are autocorrelated, so N_eff < N
    assert svd["lag1_autocorrelation"].values[0] > 0.2 and svd["n_effective"].values[0] < 0.7 * N
    assert (svd["north_error_effective"] >= svd["north_error"]).all()
    assert svd.attrs["bootstrap_n"] == 30


def test_holdout_skill_rank_optimum_and_clipping_on_eobs(eobs_run):
    ev = open_netcdf(eobs_run / "evaluation.nc")
    for method in ("svd", "nmf"):
        assert 0 < float(ev[f"{method}_skill"]) < 1
        assert float(ev[f"{method}_holdout_rmse_overall"]) < float(ev["climatology_holdout_rmse_overall"])
        assert ev[f"{method}_holdout_rmse"].dims == ("time",)
    assert float(ev["rank_optimum_rmse_overall"]) <= float(ev["svd_rmse_overall"])
    assert int(ev["svd_clipped_entries"]) > 0 and float(ev["svd_reconstruction"].min()) >= 0
    assert ev.attrs["holdout_fraction"] == 0.2
    summary = json.loads((eobs_run / "summary.json").read_text())
    assert summary["holdout_skill"]["SVD"] == pytest.approx(float(ev["svd_skill"]), abs=1e-4)
    assert summary["rank_optimum_rmse_mm"] == pytest.approx(float(ev["rank_optimum_rmse_overall"]), abs=1e-4)
    assert summary["rotation"]["method"] == "varimax" and summary["pattern_stability"]["1"] > 0.95
    print(f"E-OBS: skill SVD {float(ev['svd_skill']):.3f}, NMF {float(ev['nmf_skill']):.3f}; "
          f"RMSE SVD {float(ev['svd_rmse_overall']):.2f} mm, rank-{N_MODES} floor "
          f"{float(ev['rank_optimum_rmse_overall']):.2f} mm; clipped {int(ev['svd_clipped_entries'])}")


def test_rank_choice_with_nmf_stability_on_eobs(eobs_run):
    ranks = open_netcdf(eobs_run / "rank_selection.nc")
    assert ranks["rank"].values.tolist() == RANKS
    stability = ranks["nmf_stability"].values
    assert ((stability > 0) & (stability <= 1 + 1e-12)).all() and ranks.attrs["stability_seeds"] == 4
    assert (ranks["nmf_stability_min"] <= ranks["nmf_stability"]).all()
    assert (eobs_run / "figures" / "rank_choice.png").stat().st_size > 10_000
    print(f"E-OBS NMF stability by rank {RANKS}: {np.round(stability, 3).tolist()}, "
          f"least stable {np.round(ranks['nmf_stability_min'].values, 3).tolist()}")


def test_new_variables_pass_the_cf_checker(eobs_run):
    from helpers.cf import cf_failures

    for name in ("svd.nc", "evaluation.nc", "rank_selection.nc"):
        assert cf_failures(eobs_run / name, levels=("high_priorities", "medium_priorities")) == [], name
