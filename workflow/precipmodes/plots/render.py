"""File edge of the figures: open the workflow's NetCDF outputs, draw, save PNGs; key-number summary.

One function per figure rule; each takes input paths, output paths and
:class:`~.base.FigureOptions` and writes PNGs of exactly figsize x dpi pixels.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import xarray as xr

from precipmodes.config import parse_range
from precipmodes.diagnostics import fields
from precipmodes.diagnostics.summary import METHODS, is_centred, key_numbers, overall_rmse
from precipmodes.errors import InputDataError
from precipmodes.grid import unstack_cells
from precipmodes.io.netcdf import open_netcdf
from precipmodes.io.owned import temp_path
from precipmodes.logs import log, timed
from precipmodes.plots.base import FigureOptions, new_figure, require_vars, save_figure, use_offline_coastlines
from precipmodes.plots.maps import (cell_skill_figure, demo_match_figure, hilbert_modes_figure, land_mask_figure,
                                    local_share_figure, nmf_bases_figure, reconstruction_figure, regression_figure,
                                    rotated_modes_figure, svd_modes_figure, svd_nmf_figure, training_stats_figure)
from precipmodes.plots.series import (coefficient_spectra_figure, coefficients_figure, rank_choice_figure, rmse_figure,
                                      seasonal_cycle_figure, spectrum_figure, wet_fraction_figure,
                                      window_coefficients_figure, window_step, with_gaps)

# evaluation.nc variables the figures read (written by precipmodes.diagnostics.evaluate)
EVALUATION_VARS = ["svd_coefficients", "nmf_coefficients", "svd_reconstruction", "nmf_reconstruction",
                   "climatology_reconstruction", "svd_rmse", "nmf_rmse", "climatology_rmse"]


def _open(path, names: Sequence[str]) -> xr.Dataset:
    ds = open_netcdf(path)
    require_vars(ds, names, str(path))
    return ds


def draw_modes(svd_path, nmf_path, outputs: Mapping[str, str], options: FigureOptions) -> None:
    """svd_modes.png, nmf_bases.png and spectrum.png from svd.nc and nmf.nc."""
    use_offline_coastlines(options.coastline_resolution)
    svd = _open(svd_path, ["spatial_modes", "singular_values", "explained_variance_ratio", "north_error", "separated"])
    nmf = _open(nmf_path, ["basis", "activations"])
    with timed("figures: modes"):
        save_figure(svd_modes_figure(svd, options), outputs["svd_modes"], options.dpi)
        save_figure(nmf_bases_figure(nmf, options), outputs["nmf_bases"], options.dpi)
        save_figure(spectrum_figure(svd, options), outputs["spectrum"], options.dpi)


def draw_fields(train_path, svd_path, nmf_path, outputs: Mapping[str, str], options: FigureOptions) -> None:
    """training_stats.png, mode_regression.png, mode_correlation.png, local_variance.png and svd_vs_nmf.png
    from train.nc, svd.nc and nmf.nc (:mod:`precipmodes.diagnostics.fields`)."""
    use_offline_coastlines(options.coastline_resolution)
    train = _open(train_path, ["precip"])
    svd = _open(svd_path, ["spatial_modes", "temporal_coefficients", "explained_variance_ratio"])
    nmf = _open(nmf_path, ["basis", "activations"])
    lat, lon = svd["lat"], svd["lon"]
    with timed("figures: fields"):
        matrix = train["precip"].load()
        mean, std = fields.training_moments(matrix)
        save_figure(training_stats_figure(unstack_cells(mean, lat, lon), unstack_cells(std, lat, lon),
                                          matrix.sizes["time"], options), outputs["training_stats"], options.dpi)
        regression, correlation = fields.regression_maps(matrix, svd["temporal_coefficients"], "mode")
        for name, maps in (("regression", regression), ("correlation", correlation)):
            save_figure(regression_figure(unstack_cells(maps, lat, lon), "mode", name, options),
                        outputs[f"mode_{name}"], options.dpi)
        share = unstack_cells(fields.local_share(matrix, svd), lat, lon)
        save_figure(local_share_figure(share, is_centred(svd), options), outputs["local_variance"],
                    options.dpi)
        save_figure(svd_nmf_figure(svd, nmf, is_centred(svd), options), outputs["svd_vs_nmf"],
                    options.dpi)


def draw_rotated(svd_path, output: str, options: FigureOptions) -> None:
    """rotated_modes.png from svd.nc (written when ``svd.rotation.method`` is not ``none``)."""
    use_offline_coastlines(options.coastline_resolution)
    svd = _open(svd_path, ["rotated_modes", "rotated_explained_variance_ratio"])
    with timed("figures: rotated modes"):
        save_figure(rotated_modes_figure(svd, options), output, options.dpi)


def draw_rank(rank_selection_path, output: str, options: FigureOptions, nmf_path=None) -> None:
    """rank_choice.png from rank_selection.nc (experiments with ``rank_selection``); with ``nmf_path``
    (nmf.nc of an ARD fit, ``nmf.ard``) the relevance curve beside the cross-validation."""
    ranks = _open(rank_selection_path, ["cv_rmse"])
    nmf = _open(nmf_path, ["relevance"]) if nmf_path else None
    with timed("figures: rank choice"):
        save_figure(rank_choice_figure(ranks, options, nmf), output, options.dpi)


def draw_hilbert(hilbert_path, output: str, options: FigureOptions) -> None:
    """hilbert_modes.png from hilbert.nc (written when ``svd.hilbert.n_modes`` > 0)."""
    use_offline_coastlines(options.coastline_resolution)
    hilbert = _open(hilbert_path, ["amplitude", "phase", "explained_variance_ratio"])
    with timed("figures: Hilbert modes"):
        save_figure(hilbert_modes_figure(hilbert, options), output, options.dpi)


def draw_series(svd_path, nmf_path, selection_path, outputs: Mapping[str, str], options: FigureOptions,
                train: Sequence[str]) -> None:
    """svd_coefficients.png, nmf_activations.png, coefficient_spectra.png and seasonal_cycle.png over the
    training period ``train`` (config range),
    with NaN gaps for the windows selection.nc lists as dropped."""
    svd = _open(svd_path, ["temporal_coefficients"])
    nmf = _open(nmf_path, ["activations"])
    selection = _open(selection_path, ["wet_area_fraction", "kept"])
    start, end = parse_range(list(train))
    with timed("figures: series"):
        coefficients = with_gaps(svd["temporal_coefficients"], selection["time"], start, end)
        activations = with_gaps(nmf["activations"], selection["time"], start, end)
        save_figure(coefficients_figure(coefficients, "mode", "mode", "SVD temporal coefficients", options),
                    outputs["svd_coefficients"], options.dpi)
        save_figure(coefficients_figure(activations, "component", "comp.", "NMF activations", options),
                    outputs["nmf_activations"], options.dpi)
        step = window_step(selection["time"])
        regular = {"SVD temporal coefficients": (coefficients, "mode"), "NMF activations": (activations, "component")}
        spectra = {title: fields.power_spectrum(series.where(series["in_record"], drop=True), dim, step)
                   for title, (series, dim) in regular.items()}
        save_figure(coefficient_spectra_figure(spectra, options), outputs["coefficient_spectra"], options.dpi)
        cycles = {title: fields.seasonal_cycle(series.assign_attrs(units="mm"), dim)
                  for title, (series, dim) in regular.items()}
        save_figure(seasonal_cycle_figure(cycles, options), outputs["seasonal_cycle"], options.dpi)


def draw_selection(land_mask_path, selection_path, outputs: Mapping[str, str], options: FigureOptions,
                   min_fraction: float, min_wet_fraction: float, periods: Mapping[str, Sequence[str]]) -> None:
    """land_mask.png and wet_fraction.png (threshold line, ``periods`` name -> config range shaded)."""
    use_offline_coastlines(options.coastline_resolution)
    land_mask = _open(land_mask_path, ["land_fraction", "land"])
    selection = _open(selection_path, ["wet_area_fraction", "kept"])
    with timed("figures: selection"):
        save_figure(land_mask_figure(land_mask, options, min_fraction), outputs["land_mask"], options.dpi)
        ranges = {name: parse_range(list(bounds)) for name, bounds in periods.items()}
        save_figure(wet_fraction_figure(selection, min_wet_fraction, options, ranges), outputs["wet_fraction"],
                    options.dpi)


def chosen_windows(times: xr.DataArray, indices: Sequence[int], key: str) -> np.ndarray:
    """The window starts at ``indices`` of the test period; out-of-range indices are skipped with a warning."""
    valid = [i for i in indices if 0 <= i < times.size]
    if len(valid) < len(indices):
        log.warning("%s: indices %s are outside the %d test windows; skipped", key,
                    sorted(set(indices) - set(valid)), times.size)
    if not valid:
        raise InputDataError(f"{key}: none of {list(indices)} is a test window index (0..{times.size - 1}); "
                             "choose indices inside the test period")
    return times.values[valid]


def draw_test(evaluation_path, test_path, land_mask_path, selection_path, outputs: Mapping[str, str],
              options: FigureOptions, test_windows: Sequence[int]) -> None:
    """test_reconstructions.png, test_coefficients.png and test_rmse.png from evaluation.nc and test.nc
    (``test_windows``: indices of the test windows to map; RMSE series gapped with selection.nc)."""
    use_offline_coastlines(options.coastline_resolution)
    evaluation = _open(evaluation_path, EVALUATION_VARS)
    test = _open(test_path, ["precip"])
    land_mask = _open(land_mask_path, ["land"])
    key = f"experiments.{options.experiment}.test_windows"
    with timed("figures: test period"):
        times = chosen_windows(evaluation["time"], test_windows, key)
        original = unstack_cells(test["precip"].sel(time=times), land_mask["lat"], land_mask["lon"])
        reconstructions = {name: evaluation[f"{var}_reconstruction"].sel(time=times)
                           for name, var in METHODS.items() if f"{var}_reconstruction" in evaluation}
        rmse = {name: evaluation[f"{var}_rmse"] for name, var in METHODS.items()}
        save_figure(reconstruction_figure(original.transpose("time", "lat", "lon"), reconstructions, rmse, options),
                    outputs["test_reconstructions"], options.dpi)
        save_figure(window_coefficients_figure(evaluation["svd_coefficients"].sel(time=times),
                                               evaluation["nmf_coefficients"].sel(time=times), options),
                    outputs["test_coefficients"], options.dpi)
        overall = {name: overall_rmse(evaluation, var) for name, var in METHODS.items()}
        selection = _open(selection_path, ["kept"])
        start, end = evaluation["time"].values.min(), evaluation["time"].values.max()
        rmse = {name: with_gaps(series, selection["time"], start, end + np.timedelta64(1, "ns"))
                for name, series in rmse.items()}
        save_figure(rmse_figure(rmse, overall, options), outputs["test_rmse"], options.dpi)
        observed = unstack_cells(test["precip"], land_mask["lat"], land_mask["lon"])
        skill = xr.concat([fields.cell_skill(observed, evaluation[f"{var}_reconstruction"],
                                                  evaluation["climatology_reconstruction"])
                           for var in ("svd", "nmf")], dim="method").assign_coords(method=["SVD", "NMF"])
        save_figure(cell_skill_figure(skill, options), outputs["cell_skill"], options.dpi)


def draw_demo(nmf_path, truth_path, evaluation_path, output: str, options: FigureOptions) -> None:
    """demo_match.png: the demo's true patterns beside the matched NMF components and their scores."""
    use_offline_coastlines(options.coastline_resolution)
    nmf = _open(nmf_path, ["basis"])
    truth = _open(truth_path, ["patterns"])
    evaluation = _open(evaluation_path, ["truth_match_component", "truth_match_correlation"])
    names = [str(v) for v in truth["pattern_name"].values] if "pattern_name" in truth else None
    with timed("figures: demo truth match"):
        figure = demo_match_figure(truth["patterns"], nmf["basis"], evaluation["truth_match_component"],
                                   evaluation["truth_match_correlation"], options, names)
        save_figure(figure, output, options.dpi)


def summary_figure(numbers: Mapping, options: FigureOptions) -> "object":
    """A table figure of the key numbers (for the HTML report)."""
    ratio = numbers["explained_variance_percent"]
    measure = numbers["variance_measure"]
    rows = [
        ("SVD modes / land cells", f"{numbers['n_modes']} / {numbers['n_cells']}"),
        (f"{measure}, modes 1-3", ", ".join(f"{ratio[m]:.1f}%" for m in sorted(ratio)[:3])),
        (f"{measure}, all {numbers['n_modes']} modes", f"{numbers['cumulative_explained_variance_percent']:.1f}%"),
        ("training / test windows", f"{numbers['n_training_windows']} / {numbers['n_test_windows']}"),
        ("NMF relative reconstruction error", f"{numbers['nmf_relative_reconstruction_error']:.4f}"),
        ("NMF solver / iterations", f"{numbers['nmf_solver'] or '?'} / {numbers['nmf_iterations']}"),
    ]
    rows += [(f"test RMSE, {name}", f"{value:.3f} mm") for name, value in numbers["test_rmse_mm"].items()]
    if "holdout_skill" in numbers:
        rows.append(("hold-out: observed cells hidden per test window", f"{100 * numbers['holdout_fraction']:g}%"))
        rows += [(f"hold-out skill 1 - MSE/MSE_clim, {name}", f"{value:.3f}")
                 for name, value in numbers["holdout_skill"].items()]
        rows += [(f"hold-out RMSE, {name}", f"{value:.3f} mm") for name, value in numbers["holdout_rmse_mm"].items()]
    if "rank_optimum_rmse_mm" in numbers:
        rows.append((f"best rank-{numbers['n_modes']} fit of the test matrix (RMSE floor)",
                     f"{numbers['rank_optimum_rmse_mm']:.3f} mm"))
    if "svd_clipped_entries" in numbers:
        rows.append(("SVD reconstruction entries < 0 (clipped)",
                     f"{numbers['svd_clipped_entries']} ({numbers['svd_clipped_percent']:.2f}%)"))
    if "n_separated_modes" in numbers:
        rows.append(("modes separated (North, effective N)", f"{numbers['n_separated_modes']}"))
    fig = new_figure(7.0, 0.32 * len(rows) + 0.9)
    ax = fig.subplots()
    ax.axis("off")
    table = ax.table(cellText=rows, colLabels=["quantity", "value"], loc="center", cellLoc="left",
                     colWidths=[0.65, 0.35])
    table.scale(1, 1.3)
    fig.suptitle(options.title("Key numbers"))
    return fig


def write_summary(svd_path, nmf_path, evaluation_path, json_path, png_path, options: FigureOptions) -> dict:
    """summary.json (key numbers, machine-readable) and summary.png (the same as a table)."""
    svd = _open(svd_path, ["explained_variance_ratio"])
    nmf = _open(nmf_path, ["reconstruction_error"])
    evaluation = _open(evaluation_path, ["svd_rmse", "nmf_rmse", "climatology_rmse"])
    numbers = key_numbers(svd, nmf, evaluation)
    json_path = Path(json_path)
    tmp = temp_path(json_path)
    tmp.write_text(json.dumps({"experiment": options.experiment, "synthetic": options.synthetic, **numbers},
                              indent=2))
    os.replace(tmp, json_path)
    save_figure(summary_figure(numbers, options), png_path, options.dpi)
    return numbers
