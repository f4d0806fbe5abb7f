"""Map figures: SVD modes, Hilbert modes, NMF bases, land mask, test reconstructions, demo truth match.

Every function takes xarray objects with their lat/lon (and mode/component/time)
coordinates and returns a matplotlib Figure; saving is :func:`base.save_figure`.
"""

from __future__ import annotations

from typing import Sequence

import cartopy.crs as ccrs
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.ticker import MaxNLocator

from precipmodes.diagnostics.summary import is_centred, variance_label
from precipmodes.plots.base import (PANEL_WIDTH_IN, FigureOptions, draw_map, first_panels, map_axes, map_panels,
                                    new_figure, symmetric_limit)


def svd_modes_figure(svd: xr.Dataset, options: FigureOptions) -> plt.Figure:
    """Panel grid of ``svd.spatial_modes(mode, lat, lon)``: diverging colours, symmetric limits.

    Titles give the singular value σ and the mode's share of the sum of squares (uncentred SVD; of the
    variance when ``svd.center``).
    """
    modes, note = first_panels(svd["spatial_modes"], "mode", options)
    sigma = svd["singular_values"].sel(mode=modes["mode"])
    ratio = svd["explained_variance_ratio"].sel(mode=modes["mode"])
    short = variance_label(is_centred(svd), short=True)
    titles = [f"Mode {int(m)} (σ = {compact(float(s))}, {100 * float(r):.1f}% {short})"
              for m, s, r in zip(modes["mode"].values, sigma.values, ratio.values)]
    limit = symmetric_limit(modes)
    units = svd["spatial_modes"].attrs.get("units", "1")
    return map_panels(modes, "mode", titles, options, cmap="RdBu_r", vmin=-limit, vmax=limit,
                      colorbar_label=f"loading of the unit-norm mode ({units})",
                      suptitle=options.title(f"SVD spatial modes{note}"))


def rotated_modes_figure(svd: xr.Dataset, options: FigureOptions) -> plt.Figure:
    """Panel grid of ``svd.rotated_modes(rotated_mode, lat, lon)`` (varimax/promax), as :func:`svd_modes_figure`.

    Titles give the rotated mode's share of the sum of squares (of the variance when ``svd.center``).
    """
    modes, note = first_panels(svd["rotated_modes"], "rotated_mode", options)
    ratio = svd["rotated_explained_variance_ratio"].sel(rotated_mode=modes["rotated_mode"])
    short = variance_label(is_centred(svd), short=True)
    titles = [f"Rotated {int(m)} ({100 * float(r):.1f}% {short})" for m, r in zip(modes["rotated_mode"].values,
                                                                                ratio.values)]
    limit = symmetric_limit(modes)
    method = svd.attrs.get("rotation_method")
    kaiser = {1: ", Kaiser-normalised", 0: ", raw loadings"}.get(svd.attrs.get("rotation_kaiser"), "")
    how = f"{method} rotation{kaiser}" if method else "rotation"
    return map_panels(modes, "rotated_mode", titles, options, cmap="RdBu_r", vmin=-limit, vmax=limit,
                      colorbar_label="loading of the unit-norm rotated mode (1)",
                      suptitle=options.title(f"Rotated SVD modes ({how}){note}"))


PHASE_LEVELS_DEG = np.arange(-135, 180, 45)  # phase contours every 45 degrees (the +-180 cut left out)


def without_phase_cut(phase: xr.DataArray) -> xr.DataArray:
    """``phase(lat, lon)`` (radians) with NaN at cells next to the +-pi cut, so contours do not bunch along it."""
    values = phase.transpose("lat", "lon").values
    cut = np.zeros(values.shape, dtype=bool)
    for axis in (0, 1):
        jump = np.abs(np.diff(values, axis=axis)) > np.pi
        lo = [slice(None)] * 2
        hi = [slice(None)] * 2
        lo[axis], hi[axis] = slice(0, -1), slice(1, None)
        cut[tuple(lo)] |= jump
        cut[tuple(hi)] |= jump
    return phase.transpose("lat", "lon").where(~cut)


def hilbert_modes_figure(hilbert: xr.Dataset, options: FigureOptions) -> plt.Figure:
    """Panel grid of ``hilbert.amplitude(mode, lat, lon)`` with contours of ``hilbert.phase`` every 45 degrees.

    Titles give the mode's share of the analytic signal's variance. The crest of a mode reaches the
    contours in increasing order of phase (labelled in degrees).
    """
    amplitude, note = first_panels(hilbert["amplitude"], "mode", options)
    modes = amplitude["mode"].values
    ratio = hilbert["explained_variance_ratio"].sel(mode=modes)
    titles = [f"Hilbert mode {int(m)} ({100 * float(r):.1f}% var)" for m, r in zip(modes, ratio.values)]
    phase = hilbert["phase"].sel(mode=modes)

    def contours(ax, i):
        field = np.degrees(without_phase_cut(phase.isel(mode=i)))
        if np.isfinite(field.values).sum() < 4:
            return
        lines = ax.contour(field["lon"].values, field["lat"].values, field.values, levels=PHASE_LEVELS_DEG,
                           colors="k", linewidths=0.6, transform=ccrs.PlateCarree())
        ax.clabel(lines, fontsize=5, fmt="%d")

    return map_panels(amplitude, "mode", titles, options, cmap="YlGnBu", vmin=0.0,
                      vmax=float(amplitude.max()) or 1.0,
                      colorbar_label="amplitude (1); contours: phase (degrees, later where larger)",
                      suptitle=options.title(f"Hilbert (complex) SVD modes{note}"), overlay=contours)


def compact(value: float) -> str:
    """A short number: 3 significant digits, no exponent below 1e6."""
    if abs(value) >= 1e6 or (value != 0 and abs(value) < 1e-3):
        return f"{value:.2e}"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def nmf_scale(nmf: xr.Dataset) -> xr.DataArray:
    """Scale of each NMF component (mm): its mean activation, i.e. the mean amount at the basis peak."""
    return nmf["activations"].mean("time")


def nmf_bases_figure(nmf: xr.Dataset, options: FigureOptions) -> plt.Figure:
    """Panel grid of ``nmf.basis(component, lat, lon)`` (max 1) in a sequential colormap."""
    basis, note = first_panels(nmf["basis"], "component", options)
    scale = nmf_scale(nmf).sel(component=basis["component"])
    units = nmf["activations"].attrs.get("units", "mm")
    titles = [f"Component {int(c)} (scale: {compact(float(s))} {units})"
              for c, s in zip(basis["component"].values, scale.values)]
    return map_panels(basis, "component", titles, options, cmap="YlGnBu", vmin=0.0, vmax=1.0,
                      colorbar_label="basis (normalised to max 1; scale = mean activation)",
                      suptitle=options.title(f"NMF bases{note}"))


def land_mask_figure(land_mask: xr.Dataset, options: FigureOptions, min_fraction: float) -> plt.Figure:
    """Map of ``land_fraction(lat, lon)`` with the outline of the land cells (fraction >= ``min_fraction``)."""
    fig = new_figure(PANEL_WIDTH_IN * 2.2 + 0.6, PANEL_WIDTH_IN * 2.2 * options.aspect + 1.2)
    ax = map_axes(fig, 111, options, left=True, bottom=True)
    mesh = draw_map(ax, land_mask["land_fraction"], cmap="Greens", vmin=0.0, vmax=1.0)
    land = land_mask["land"].astype(float)
    ax.contour(land["lon"].values, land["lat"].values, land.values, levels=[0.5], colors="tab:red",
               linewidths=0.7, transform=ccrs.PlateCarree())
    n_land = int(land_mask["land"].sum())
    method = land_mask.attrs.get("method", "?")
    ax.set_title(f"{n_land} land cells (red outline: fraction ≥ {min_fraction:g})\nmethod: {method}")
    fig.colorbar(mesh, ax=ax, orientation="horizontal", shrink=0.7, pad=0.03).set_label("land fraction (1)")
    fig.suptitle(options.title("Land mask"))
    return fig


def window_label(time) -> str:
    """A window start as 'YYYY-MM-DD HH:MM UTC'."""
    return pd.Timestamp(time).strftime("%Y-%m-%d %H:%M UTC")


def reconstruction_figure(
    original: xr.DataArray,
    reconstructions: dict[str, xr.DataArray],
    rmse: dict[str, xr.DataArray],
    options: FigureOptions,
) -> plt.Figure:
    """Original vs reconstructed maps for a few test windows: one row per window.

    ``original(time, lat, lon)`` and each ``reconstructions[name](time, lat, lon)`` in mm over the
    same chosen windows; ``rmse[name](time)`` in mm goes into the panel titles. One colour scale
    (0 .. 99th percentile of the originals) for the whole figure.
    """
    names = list(reconstructions)
    nrows, ncols = original.sizes["time"], 1 + len(names)
    panel_h = PANEL_WIDTH_IN * options.aspect + 0.35
    fig = new_figure(PANEL_WIDTH_IN * ncols + 0.4, panel_h * nrows + 1.1)
    grid = fig.add_gridspec(nrows, ncols)
    vmax = float(np.nanquantile(original.values, 0.99)) or 1.0
    axes, mesh = [], None
    for row, time in enumerate(original["time"].values):
        panels = [(f"Original {window_label(time)}", original.sel(time=time))]
        panels += [(f"{name} (RMSE {float(rmse[name].sel(time=time)):.2f} mm)",
                    reconstructions[name].sel(time=time)) for name in names]
        for col, (title, field) in enumerate(panels):
            ax = map_axes(fig, grid[row, col], options, left=col == 0, bottom=row == nrows - 1)
            mesh = draw_map(ax, field, cmap="viridis", vmin=0.0, vmax=vmax)
            ax.set_title(title)
            axes.append(ax)
    fig.colorbar(mesh, ax=axes, orientation="horizontal", shrink=0.6, aspect=40, pad=0.02).set_label(
        options.total(original.attrs.get("units", "mm")))
    fig.suptitle(options.title("Test windows: original vs reconstructions"))
    return fig


def demo_match_figure(
    truth: xr.DataArray,
    basis: xr.DataArray,
    matched_component: xr.DataArray,
    correlation: xr.DataArray,
    options: FigureOptions,
    pattern_names: Sequence[str] | None = None,
) -> plt.Figure:
    """True demo patterns (top row) beside their matched NMF components (bottom row).

    ``truth(pattern, lat, lon)`` and ``basis(component, lat, lon)`` both max 1;
    ``matched_component(pattern)`` is the component label matched to each pattern (0 or NaN: none)
    and ``correlation(pattern)`` its match score.
    """
    n = truth.sizes["pattern"]
    panel_h = PANEL_WIDTH_IN * options.aspect + 0.35
    fig = new_figure(PANEL_WIDTH_IN * n + 0.4, panel_h * 2 + 1.1)
    grid = fig.add_gridspec(2, n)
    axes, mesh = [], None
    for i, pattern in enumerate(truth["pattern"].values):
        name = pattern_names[i] if pattern_names is not None else f"pattern {pattern}"
        component = matched_component.sel(pattern=pattern)
        ax = map_axes(fig, grid[0, i], options, left=i == 0, bottom=False)
        mesh = draw_map(ax, truth.sel(pattern=pattern), cmap="YlGnBu", vmin=0.0, vmax=1.0)
        ax.set_title(f"True: {name}")
        axes.append(ax)
        ax = map_axes(fig, grid[1, i], options, left=i == 0, bottom=True)
        if np.isfinite(float(component)) and int(component) in basis["component"].values:
            draw_map(ax, basis.sel(component=int(component)), cmap="YlGnBu", vmin=0.0, vmax=1.0)
            ax.set_title(f"Component {int(component)} (r = {float(correlation.sel(pattern=pattern)):.2f})")
        else:
            ax.set_title("no component matched")
        axes.append(ax)
    fig.colorbar(mesh, ax=axes, orientation="horizontal", shrink=0.6, aspect=40, pad=0.02).set_label(
        "pattern / basis (normalised to max 1)")
    fig.suptitle(options.title("Demo: true patterns (top) vs recovered NMF components (bottom)"))
    return fig



def two_maps(fields: Sequence[tuple[str, xr.DataArray, dict, str]], options: FigureOptions, suptitle: str,
             ncols: int = 2) -> plt.Figure:
    """Maps each with their own colour bar: ``(title, field(lat, lon), pcolormesh kwargs, colour bar label)``."""
    n = len(fields)
    nrows = int(np.ceil(n / ncols))
    panel_h = PANEL_WIDTH_IN * 1.3 * options.aspect + 0.9
    fig = new_figure(PANEL_WIDTH_IN * 1.3 * ncols + 0.6, panel_h * nrows + 0.8)
    grid = fig.add_gridspec(nrows, ncols)
    for i, (title, field, style, label) in enumerate(fields):
        row, col = divmod(i, ncols)
        ax = map_axes(fig, grid[row, col], options, left=col == 0, bottom=True)
        mesh = draw_map(ax, field, **style)
        ax.set_title(title)
        colorbar = fig.colorbar(mesh, ax=ax, orientation="horizontal", shrink=0.85, pad=0.04)
        colorbar.set_label(label)
        colorbar.locator = MaxNLocator(5)
        colorbar.update_ticks()
    fig.suptitle(suptitle)
    return fig


def training_stats_figure(mean: xr.DataArray, std: xr.DataArray, n_windows: int,
                          options: FigureOptions) -> plt.Figure:
    """Mean and standard deviation over the training windows of each cell's total (maps of ``(lat, lon)``)."""
    top = float(np.nanquantile(mean.values, 0.99)) or 1.0
    spread = float(np.nanquantile(std.values, 0.99)) or 1.0
    return two_maps([("Mean", mean, dict(cmap="YlGnBu", vmin=0.0, vmax=top), f"mean {options.total()}"),
                     ("Standard deviation", std, dict(cmap="magma_r", vmin=0.0, vmax=spread),
                      f"standard deviation of the {options.total()}")],
                    options, options.title(f"Training totals: mean and spread over {n_windows} windows"))


def regression_figure(maps: xr.DataArray, dim: str, kind: str, options: FigureOptions) -> plt.Figure:
    """Modes (components) as regression maps (mm per standard deviation of the coefficient) or correlation
    maps (1) of the training totals with their coefficients, ``maps(dim, lat, lon)``."""
    shown, note = first_panels(maps, dim, options)
    word = "Mode" if dim == "mode" else "Component"
    titles = [f"{word} {int(m)}" for m in shown[dim].values]
    if kind == "regression":
        limit = symmetric_limit(shown)
        label = f"{options.total()} per standard deviation of the coefficient"
        what = "training totals regressed on\neach mode's coefficient"
    else:
        limit, label = 1.0, "correlation of the cell's total with the coefficient (1)"
        what = "correlation of the training totals\nwith each mode's coefficient"
    return map_panels(shown, dim, titles, options, cmap="RdBu_r", vmin=-limit, vmax=limit, colorbar_label=label,
                      suptitle=options.title(f"SVD modes as {kind} maps{note}:\n{what}"))


def local_share_figure(share: xr.DataArray, centred: bool, options: FigureOptions) -> plt.Figure:
    """``share(mode, lat, lon)``: the part of each cell's sum of squares (variance when centred) reproduced by
    the first k modes, one panel per k."""
    shown, note = first_panels(share, "mode", options)
    measure = "variance" if centred else "sum of squares"
    titles = [f"first {int(k)} mode{'s' if int(k) > 1 else ''}" for k in shown["mode"].values]
    return map_panels(shown, "mode", titles, options, cmap="viridis", vmin=0.0, vmax=1.0,
                      colorbar_label=f"local share of the cell's {measure} (1)",
                      suptitle=options.title(f"Local share of the {measure}\nreproduced by the first k SVD modes"
                                             f"{'' if centred else ' (uncentred SVD)'}{note}"))


def cell_skill_figure(skill: xr.DataArray, options: FigureOptions) -> plt.Figure:
    """``skill(method, lat, lon)``: 1 - MSE / MSE_climatology per cell over the test windows."""
    maps = {str(method): skill.sel({"method": method}) for method in skill["method"].values}  # sel's own method=
    fields = [(f"{method} (median {float(field.median()):.2f})", field, dict(cmap="RdBu_r", vmin=-1.0, vmax=1.0),
               "skill 1 - MSE / MSE_climatology (1; < 0 worse)") for method, field in maps.items()]
    return two_maps(fields, options, options.title(
        "Test period: skill of each cell's reconstruction\nagainst the monthly climatology"))


def svd_nmf_figure(svd: xr.Dataset, nmf: xr.Dataset, centred: bool, options: FigureOptions) -> plt.Figure:
    """SVD mode k (left, diverging) beside NMF component k (right, sequential), one row per k."""
    n = min(svd.sizes["mode"], nmf.sizes["component"], max(1, options.max_panels // 2))
    panel_h = PANEL_WIDTH_IN * options.aspect + 0.35
    fig = new_figure(PANEL_WIDTH_IN * 2 + 0.6, panel_h * n + 1.3)
    grid = fig.add_gridspec(n, 2)
    modes = svd["spatial_modes"].isel(mode=slice(0, n))
    limit = symmetric_limit(modes)
    ratio = svd["explained_variance_ratio"].values
    scale = nmf_scale(nmf)
    short = "var" if centred else "of sum of squares"
    left_axes, right_axes, meshes = [], [], [None, None]
    for k in range(n):
        ax = map_axes(fig, grid[k, 0], options, left=True, bottom=k == n - 1)
        meshes[0] = draw_map(ax, modes.isel(mode=k), cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(f"SVD mode {k + 1} ({100 * float(ratio[k]):.1f}% {short})", fontsize=7.5)
        left_axes.append(ax)
        ax = map_axes(fig, grid[k, 1], options, left=False, bottom=k == n - 1)
        meshes[1] = draw_map(ax, nmf["basis"].isel(component=k), cmap="YlGnBu", vmin=0.0, vmax=1.0)
        ax.set_title(f"NMF component {k + 1} (scale {compact(float(scale.isel(component=k)))} mm)", fontsize=7.5)
        right_axes.append(ax)
    fig.colorbar(meshes[0], ax=left_axes, orientation="horizontal", shrink=0.8, pad=0.02).set_label(
        "SVD loading (unit-norm mode, 1)")
    fig.colorbar(meshes[1], ax=right_axes, orientation="horizontal", shrink=0.8, pad=0.02).set_label(
        "NMF basis (max 1)")
    fig.suptitle(options.title(f"SVD modes beside NMF components (first {n})"))
    return fig
