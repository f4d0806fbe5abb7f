"""Wet-area threshold: keep the windows where enough of the land is wet.

A land cell is *wet* in a window when its total exceeds ``threshold.wet_mm``
(default 0: "rain occurred", as the seed). The wet-area fraction of a window is
(wet land cells) / (land cells with data in that window); a window is kept when
the fraction is >= ``threshold.min_wet_fraction``. A window without any land
data has fraction NaN and is not kept. The totals are read in blocks of windows
(dask), so memory is flat in the record length.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from precipmodes.errors import InputDataError


def wet_area_fraction(precip: xr.DataArray, land: xr.DataArray, wet_mm: float) -> xr.DataArray:
    """Fraction (0..1) of land cells with data whose total exceeds ``wet_mm``, per window.

    ``precip(time, lat, lon)`` in mm (numpy or dask), ``land(lat, lon)`` boolean.
    Returns ``wet_area_fraction(time)`` float64 (lazy if ``precip`` is); NaN without land data.
    """
    valid = (precip.notnull() & land).sum(("lat", "lon"))
    wet = ((precip > wet_mm) & land).sum(("lat", "lon"))
    fraction = (wet / valid.where(valid > 0)).rename("wet_area_fraction")
    fraction.attrs = {"long_name": f"fraction of land cells with data whose total exceeds {wet_mm} mm",
                      "units": "1"}
    return fraction


def select_windows(totals: xr.Dataset, land: xr.DataArray, wet_mm: float = 0.0,
                   min_wet_fraction: float = 0.2, origin: str = "totals") -> xr.Dataset:
    """``wet_area_fraction(time)`` for every window and ``kept(time)`` (int8 0/1).

    Raises InputDataError naming both thresholds and the best fraction seen when
    no window is kept.
    """
    return selection(wet_area_fraction(totals["precip"], land, wet_mm).compute(), totals, land, wet_mm,
                     min_wet_fraction, origin)


def selection(fraction: xr.DataArray, totals: xr.Dataset, land: xr.DataArray, wet_mm: float = 0.0,
              min_wet_fraction: float = 0.2, origin: str = "totals") -> xr.Dataset:
    """:func:`select_windows` from the windows' :func:`wet_area_fraction` ``fraction(time)``, computed already
    (e.g. a block of windows at a time); ``totals`` gives the windows' ``time`` and ``time_bnds`` (its
    ``precip`` is not read)."""
    kept = (fraction >= min_wet_fraction).fillna(False)
    n_kept = int(kept.sum())
    if n_kept == 0:
        best = float(fraction.max()) if fraction.notnull().any() else float("nan")
        raise InputDataError(
            f"{origin}: no window passes the threshold: threshold.min_wet_fraction={min_wet_fraction} of land "
            f"wetter than threshold.wet_mm={wet_mm} mm; the best wet-area fraction seen is {best:.4f} "
            f"(of {fraction.size} windows); lower threshold.min_wet_fraction or threshold.wet_mm"
        )
    out = xr.Dataset(
        {
            "wet_area_fraction": fraction.astype(np.float32),
            "kept": kept.astype(np.int8).assign_attrs(
                long_name=f"1 where wet_area_fraction >= {min_wet_fraction}", flag_values=np.int8([0, 1]),
                flag_meanings="dropped kept"),
        },
        coords={"time": totals["time"]},
    )
    if "time_bnds" in totals:
        out["time_bnds"] = totals["time_bnds"]
    out.attrs.update(threshold_wet_mm=float(wet_mm), threshold_min_wet_fraction=float(min_wet_fraction),
                     n_windows=int(fraction.size), n_kept=n_kept, n_land_cells=int(land.sum()))
    return out
