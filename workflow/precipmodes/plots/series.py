"""Time-series and spectrum figures: coefficients with gaps, spectrum, wet-area fraction, RMSE, bar charts.

Every function takes xarray objects with coordinates (``time`` as naive UTC
datetime64, ``mode``/``component`` labels) and returns a matplotlib Figure.
"""

from __future__ import annotations

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.ticker import MaxNLocator

from precipmodes.diagnostics.summary import is_centred, variance_label
from precipmodes.plots.base import FigureOptions, first_panels, new_figure
from precipmodes.plots.maps import window_label


def window_step(times: xr.DataArray) -> np.timedelta64:
    """The regular spacing of window starts: the smallest positive difference of ``times``."""
    diffs = np.diff(np.unique(times.values))
    if diffs.size == 0:
        return np.timedelta64(72, "h")
    return diffs[diffs > np.timedelta64(0, "ns")].min()


def break_at_record_gaps(series: xr.DataArray, step: np.timedelta64) -> xr.DataArray:
    """``series(..., time)`` with a NaN point one ``step`` after every window whose successor starts more
    than one ``step`` later (a gap in the record, e.g. the months between E-OBS winters), so a plotted
    line breaks there instead of bridging the gap. Coordinate ``in_record(time)``: False at those points.
    """
    times = series["time"].values
    gaps = np.flatnonzero(np.diff(times) > step)
    axis = np.union1d(times, times[gaps] + step)
    out = series.reindex(time=axis)
    return out.assign_coords(in_record=("time", np.isin(axis, times)))


def with_gaps(series: xr.DataArray, all_windows: xr.DataArray, start=None, end=None) -> xr.DataArray:
    """``series(..., time)`` on the windows of the record ``all_windows`` (e.g. selection.nc ``time``),
    restricted to ``[start, end)``: NaN wherever a window was dropped (months, threshold, coverage), and a
    NaN break point (``in_record`` False) where the record itself has a gap (:func:`break_at_record_gaps`).
    """
    axis = np.unique(all_windows.values)
    if start is not None:
        axis = axis[axis >= np.datetime64(pd.Timestamp(start))]
    if end is not None:
        axis = axis[axis < np.datetime64(pd.Timestamp(end))]
    return break_at_record_gaps(series.reindex(time=axis), window_step(all_windows))


def _time_axis(ax) -> None:
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def coefficients_figure(coefficients: xr.DataArray, dim: str, label: str, ylabel: str,
                        options: FigureOptions) -> plt.Figure:
    """One small line panel per mode/component of ``coefficients(dim, time)`` (already gapped with NaN); the
    y label names the units (``units`` attribute, mm)."""
    shown, note = first_panels(coefficients, dim, options)
    n = shown.sizes[dim]
    fig = new_figure(9.0, 0.62 * n + 1.3)
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
    times = shown["time"].values
    units = coefficients.attrs.get("units", "mm")
    for ax, index in zip(axes, shown[dim].values):
        ax.plot(times, shown.sel({dim: index}).values, lw=0.7, color="tab:blue")
        ax.axhline(0.0, color="0.6", lw=0.4)
        ax.set_ylabel(f"{label} {int(index)}\n({units})", rotation=0, ha="right", va="center")
        ax.tick_params(axis="y", labelsize=6)
        ax.margins(x=0)
    _time_axis(axes[-1])
    axes[-1].set_xlabel("window start (UTC); gaps = windows dropped (months, threshold, coverage) "
                        "or missing from the record")
    in_record = shown["in_record"].values if "in_record" in shown.coords else np.ones(times.size, bool)
    dropped = int((np.isnan(shown.isel({dim: 0}).values) & in_record).sum())
    fig.suptitle(options.title(f"{ylabel} over the training period{note}\n"
                               f"{dropped} of {int(in_record.sum())} windows dropped (gaps)"))
    return fig


def spectrum_figure(svd: xr.Dataset, options: FigureOptions) -> plt.Figure:
    """Singular values with North et al. (1982) error bars, and each mode's share (and the cumulative share) of
    the sum of squares - of the variance when ``svd.center`` (the uncentred SVD's mode 1 carries the mean).

    ``north_error(mode)`` is the sampling error of the eigenvalue ``eigenvalues(mode)`` (λ = σ²/N with N
    training windows when the file has no ``eigenvalues``); its relative size δλ/λ is drawn on σ as
    δσ/σ = δλ/(2λ) and on the variance ratio as δλ/λ; ``north_error_effective`` (from the effective sample
    size) is used instead when the file has it. Modes not separated from a neighbour (``separated(mode)``
    false) are drawn in red. With ``eigenvalue_low``/``eigenvalue_high`` (bootstrap) their interval is drawn
    on σ as a grey bar, σ = sqrt(λ N).
    """
    mode = svd["mode"].values
    sigma = svd["singular_values"].values.astype(float)
    ratio = 100 * svd["explained_variance_ratio"].values.astype(float)
    eigenvalues = svd["eigenvalues"] if "eigenvalues" in svd else svd["singular_values"] ** 2 / svd.sizes["time"]
    effective = "north_error_effective" in svd
    error = svd["north_error_effective" if effective else "north_error"]
    relative = error.values.astype(float) / eigenvalues.values.astype(float)
    separated = svd["separated"].values.astype(bool)
    fig = new_figure(10.0, 4.0)
    left, right = fig.subplots(1, 2)
    if "eigenvalue_low" in svd:
        scale = sigma / np.sqrt(eigenvalues.values.astype(float))  # sqrt(N)
        left.vlines(mode, np.sqrt(svd["eigenvalue_low"].values) * scale, np.sqrt(svd["eigenvalue_high"].values) * scale,
                    color="0.6", lw=4, alpha=0.6, label="95% block-bootstrap interval", zorder=1)
    for mask, colour, label in ((separated, "tab:blue", "separated"), (~separated, "tab:red", "not separated (North)")):
        if mask.any():
            left.errorbar(mode[mask], sigma[mask], yerr=sigma[mask] * relative[mask] / 2, fmt="o", ms=3,
                          capsize=2, color=colour, label=label)
    left.set_yscale("log")
    left.set_xlabel("mode")
    left.set_ylabel(f"singular value σ ({svd['singular_values'].attrs.get('units', 'mm')})")
    left.set_title("Singular value spectrum with North error bars" + (" (effective N)" if effective else ""))
    left.legend()
    right.bar(mode, ratio, yerr=ratio * relative, color=np.where(separated, "tab:blue", "tab:red"),
              capsize=1.5, error_kw={"lw": 0.6}, label="per mode")
    measure = variance_label(is_centred(svd))
    right.set_ylabel(f"{measure} per mode (%)")
    right.set_xlabel("mode")
    twin = right.twinx()
    twin.plot(mode, np.cumsum(ratio), "k.-", lw=1, label="cumulative")
    twin.set_ylabel(f"cumulative {measure} (%)")
    twin.set_ylim(0, 100)
    right.set_title(f"{measure[0].upper()}{measure[1:]}: {np.sum(ratio):.1f}% by {mode.size} modes")
    handles = right.get_legend_handles_labels()
    twin_handles = twin.get_legend_handles_labels()
    right.legend(handles[0] + twin_handles[0], handles[1] + twin_handles[1], loc="center right")
    fig.suptitle(options.title("SVD spectrum"))
    return fig


LONG_RECORD_YEARS = 4  # wet_fraction.png: longer records get yearly summaries instead of every window's line


def wet_fraction_figure(selection: xr.Dataset, min_wet_fraction: float, options: FigureOptions,
                        periods: dict[str, tuple] | None = None) -> plt.Figure:
    """``wet_area_fraction(time)`` of every window, kept windows vs dropped, the threshold line,
    and the ``periods`` (name -> (start, end)) shaded. Records longer than :data:`LONG_RECORD_YEARS` years
    (a 62-year record has ~7,500 windows) draw the windows as small points under their yearly median and
    quartiles, and a second panel with the number of kept and dropped windows per year."""
    time = selection["time"].values
    fraction = selection["wet_area_fraction"].values
    kept = selection["kept"].values.astype(bool)
    years = (time.max() - time.min()) / np.timedelta64(365, "D") if time.size else 0.0
    long_record = years > LONG_RECORD_YEARS
    fig = new_figure(10.0, 5.4 if long_record else 3.6)
    if long_record:
        ax, counts = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
    else:
        ax, counts = fig.subplots(), None
    if long_record:
        size = (1.0, 2.0)
        frame = pd.DataFrame({"fraction": fraction, "kept": kept}, index=pd.DatetimeIndex(time))
        yearly = frame["fraction"].groupby(frame.index.year)
        middle = pd.to_datetime([f"{year}-07-01" for year in yearly.median().index])
        ax.fill_between(middle, yearly.quantile(0.25).values, yearly.quantile(0.75).values, color="k", alpha=0.15,
                        lw=0, label="yearly quartiles", zorder=4)
        ax.plot(middle, yearly.median().values, color="k", lw=1.2, label="yearly median", zorder=5)
        per_year = frame.groupby(frame.index.year)["kept"].agg(["sum", "count"])
        counts.bar(middle, per_year["sum"].values, width=300, color="tab:blue", label="kept per year")
        counts.bar(middle, (per_year["count"] - per_year["sum"]).values, width=300, bottom=per_year["sum"].values,
                   color="tab:red", label="dropped per year")
        counts.set_ylabel("windows per year")
        _time_axis(counts)
        counts.set_xlabel("window start (UTC)")
    else:
        size = (3.0, 5.0)
        line = break_at_record_gaps(selection["wet_area_fraction"], window_step(selection["time"]))
        ax.plot(line["time"].values, line.values, color="0.75", lw=0.5, zorder=1)
        ax.set_xlabel("window start (UTC)")
    ax.scatter(time[kept], fraction[kept], s=size[0], color="tab:blue", label=f"kept ({kept.sum()})", zorder=2,
               rasterized=True)
    ax.scatter(time[~kept], fraction[~kept], s=size[1], color="tab:red", label=f"dropped ({(~kept).sum()})",
               zorder=3, rasterized=True)
    ax.axhline(min_wet_fraction, color="k", ls="--", lw=1, label=f"threshold {min_wet_fraction:g}")
    for (name, (start, end)), colour in zip((periods or {}).items(), ("tab:green", "tab:orange", "tab:purple")):
        ax.axvspan(pd.Timestamp(start), pd.Timestamp(end), color=colour, alpha=0.08, label=f"{name} period")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("wet fraction of land cells (1)")
    _time_axis(ax)
    fig.legend(loc="outside lower center", ncols=7 if long_record else 5)
    fig.suptitle(options.title(f"Wet-area fraction of each {options.hours}-hour window"))
    return fig


def coefficient_spectra_figure(spectra: dict[str, xr.DataArray], options: FigureOptions) -> plt.Figure:
    """Power spectra ``spectra[title](dim, period)`` (share of variance per period, days) of the SVD
    coefficients and NMF activations, one line per mode/component, log-log, with 1 year marked."""
    fig = new_figure(10.0, 3.8)
    axes = fig.subplots(1, len(spectra), squeeze=False)[0]
    for ax, (title, spectrum) in zip(axes, spectra.items()):
        dim = spectrum.dims[0]
        shown, note = first_panels(spectrum, dim, options)
        for index in shown[dim].values:
            ax.loglog(shown["period"].values, shown.sel({dim: index}).values, lw=0.8,
                      label=f"{'mode' if dim == 'mode' else 'comp.'} {int(index)}")
        period = shown["period"].values
        if period.size and period.max() >= 365:
            ax.axvline(365.25, color="0.5", ls=":", lw=1)
            ax.text(365.25, ax.get_ylim()[1], " 1 year", va="top", fontsize=6, color="0.4")
        ax.invert_xaxis()
        ax.set_xlabel("period (days)")
        ax.set_ylabel("share of the series' variance (1)")
        ax.set_title(f"{title}{note}")
        ax.legend(fontsize=6, ncols=2)
    fig.suptitle(options.title("Power spectra of the training coefficients (dropped windows set to the mean)"))
    return fig


MONTHS = "JFMAMJJASOND"


def seasonal_cycle_figure(cycles: dict[str, tuple[xr.DataArray, xr.DataArray]], options: FigureOptions) -> plt.Figure:
    """Mean (line) and standard error (band) per calendar month of each mode's coefficient / component's
    activation over the training windows: ``cycles[title] = (mean(dim, month), error(dim, month))``."""
    fig = new_figure(10.0, 3.8)
    axes = fig.subplots(1, len(cycles), squeeze=False)[0]
    for ax, (title, (mean, error)) in zip(axes, cycles.items()):
        dim = mean.dims[0]
        shown, note = first_panels(mean, dim, options)
        for index in shown[dim].values:
            m = shown.sel({dim: index}).values
            e = error.sel({dim: index}).values
            line, = ax.plot(np.arange(1, 13), m, "o-", ms=3, lw=1,
                            label=f"{'mode' if dim == 'mode' else 'comp.'} {int(index)}")
            ax.fill_between(np.arange(1, 13), m - e, m + e, color=line.get_color(), alpha=0.2, lw=0)
        ax.axhline(0.0, color="0.6", lw=0.4)
        ax.set_xticks(np.arange(1, 13), list(MONTHS))
        ax.set_xlabel("calendar month of the window start")
        ax.set_ylabel(f"mean coefficient ({mean.attrs.get('units', 'mm')})")
        ax.set_title(f"{title}{note}")
        ax.legend(fontsize=6, ncols=2)
    fig.suptitle(options.title("Mean seasonal cycle of the training coefficients (band: ± 1 standard error)"))
    return fig


def rmse_figure(rmse: dict[str, xr.DataArray], overall: dict[str, float], options: FigureOptions) -> plt.Figure:
    """Per-window RMSE series ``rmse[name](time)`` (mm, gapped with NaN) for each method, overall RMSE in the legend."""
    fig = new_figure(10.0, 3.6)
    ax = fig.subplots()
    for (name, series), colour in zip(rmse.items(), ("tab:blue", "tab:orange", "0.4")):
        ax.plot(series["time"].values, series.values, lw=0.8, color=colour,
                label=f"{name} (overall {overall[name]:.2f} mm)")
    ax.set_ylabel("RMSE per window (mm)")
    ax.set_xlabel("window start (UTC); gaps = windows dropped")
    ax.set_ylim(bottom=0)
    _time_axis(ax)
    ax.legend(loc="upper right")
    fig.suptitle(options.title("Test period: reconstruction RMSE per window"))
    return fig


def window_coefficients_figure(svd_coefficients: xr.DataArray, nmf_coefficients: xr.DataArray,
                             options: FigureOptions) -> plt.Figure:
    """Bar charts of the projection coefficients of the chosen test windows:
    ``svd_coefficients(mode, time)`` (left) and ``nmf_coefficients(component, time)`` (right), one row per window."""
    times = svd_coefficients["time"].values
    fig = new_figure(10.0, 1.9 * times.size + 0.8)
    axes = fig.subplots(times.size, 2, squeeze=False)
    for row, time in enumerate(times):
        a = svd_coefficients.sel(time=time)
        h = nmf_coefficients.sel(time=time)
        left, right = axes[row]
        left.bar(a["mode"].values, a.values, color=np.where(a.values >= 0, "tab:red", "tab:blue"))
        left.axhline(0, color="k", lw=0.5)
        left.set_title(f"SVD coefficients a = Uᵀx, {window_label(time)}")
        right.bar(h["component"].values, h.values, color="tab:green")
        for ax in (left, right):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        right.set_title(f"NMF activations h, {window_label(time)}")
        left.set_ylabel(svd_coefficients.attrs.get("units", "mm"))
        right.set_ylabel(nmf_coefficients.attrs.get("units", "mm"))
    axes[-1, 0].set_xlabel("mode")
    axes[-1, 1].set_xlabel("component")
    fig.suptitle(options.title("Test windows: projection coefficients"))
    return fig


def rank_choice_figure(ranks: xr.Dataset, options: FigureOptions, nmf: xr.Dataset | None = None) -> plt.Figure:
    """Cross-validated RMSE ``cv_rmse(method, rank)`` against rank for SVD and NMF, the best ranks marked
    (attributes ``best_rank_svd``/``best_rank_nmf``), and on a second axis the NMF component stability
    ``nmf_stability(rank)`` (and its least stable component) when rank_selection.nc has it. With an
    ARD nmf.nc (``nmf`` with ``relevance``), the relevance of each candidate component beside it."""
    rank = ranks["rank"].values
    ard = nmf is not None and "relevance" in nmf
    fig = new_figure(13.0 if ard else 8.0, 5.0)
    if ard:
        ax, ax_ard = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
        relevance_panel(ax_ard, nmf)
    else:
        ax = fig.subplots()
    fig.subplots_adjust(bottom=0.3)
    colours = {"svd": "tab:blue", "nmf": "tab:green"}
    for method in ranks["method"].values:
        method = str(method)
        colour = colours.get(method, "k")
        ax.plot(rank, ranks["cv_rmse"].sel({"method": method}).values, "o-", color=colour, ms=4,
                label=f"{method.upper()} CV RMSE")
        best = ranks.attrs.get(f"best_rank_{method}")
        if best is not None:
            ax.axvline(int(best), color=colour, ls="--", lw=1, label=f"{method.upper()} best rank {int(best)}")
    ax.set_xlabel("rank (modes / components)")
    ax.set_ylabel(f"RMSE on held-out entries ({ranks['cv_rmse'].attrs.get('units', 'mm')})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = ax.get_legend_handles_labels()
    if "nmf_stability" in ranks:
        twin = ax.twinx()
        twin.plot(rank, ranks["nmf_stability"].values, "s:", color="tab:purple", ms=4, label="NMF stability (mean)")
        if "nmf_stability_min" in ranks:
            twin.plot(rank, ranks["nmf_stability_min"].values, "v:", color="tab:pink", ms=4,
                      label="NMF stability (least stable component)")
        twin.set_ylim(0, 1.02)
        twin.set_ylabel(f"matched basis correlation over {ranks.attrs.get('stability_seeds', '?')} random inits (1)")
        more = twin.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, frameon=False)
    held = ranks.attrs.get("holdout_fraction")
    ax.set_title("Rank choice: cross-validated error" + (f" ({100 * float(held):g}% of entries held out)"
                                                         if held is not None else "")
                 + (" and NMF stability" if "nmf_stability" in ranks else ""))
    fig.suptitle(options.title("Rank choice"))
    return fig


def relevance_panel(ax, nmf: xr.Dataset) -> None:
    """ARD relevance of each candidate NMF component (descending, log scale) with the pruning threshold."""
    relevance = nmf["relevance"].values
    kept = int(nmf.attrs.get("n_components", (relevance >= nmf.attrs.get("ard_threshold", 0)).sum()))
    candidate = np.arange(1, relevance.size + 1)
    floor = float(nmf.attrs.get("ard_threshold", 1e-3)) / 10  # switched-off components (relevance 0) drawn here
    shown = np.maximum(relevance, floor)
    ax.semilogy(candidate[:kept], shown[:kept], "o-", color="tab:green", ms=4, label=f"kept ({kept})")
    ax.semilogy(candidate[kept:], shown[kept:], "x", color="0.5", ms=5, label="pruned")
    if "ard_threshold" in nmf.attrs:
        ax.axhline(float(nmf.attrs["ard_threshold"]), color="tab:red", ls="--", lw=1, label="ard_threshold")
    ax.set_xlabel("candidate component (by relevance)")
    ax.set_ylabel("ARD relevance (1; 0 drawn at threshold / 10)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"NMF ARD: {kept} of {relevance.size} components kept")
    ax.legend(loc="upper right", frameon=False)
