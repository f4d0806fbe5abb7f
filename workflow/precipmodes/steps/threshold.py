"""Rule threshold: totals.nc + land_mask.nc -> selection.nc (the arithmetic is
:mod:`precipmodes.preprocess.threshold`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from precipmodes.io.netcdf import open_netcdf, write_netcdf
from precipmodes.logs import log, timed
from precipmodes.preprocess.landmask import land_of
from precipmodes.preprocess.threshold import select_windows

TIME_CHUNK = 64


def threshold_files(*, totals: str | os.PathLike, land_mask: str | os.PathLike, output: str | os.PathLike,
                    threshold: Mapping, config: Mapping | None = None) -> Path:
    """Rule threshold: totals.nc + land_mask.nc -> selection.nc; returns ``output``.

    ``totals``: window totals ``precip(time, lat, lon)`` mm; ``land_mask``: the land mask on the same
    grid; ``output``: selection.nc to write, ``wet_area_fraction(time)`` (0..1) and ``kept(time)`` (0/1);
    ``threshold``: the validated ``threshold`` section (``wet_mm`` mm, ``min_wet_fraction``);
    ``config`` (optional): the whole config, digested into the provenance.
    """
    with timed("threshold"):
        windows = open_netcdf(totals, chunks={"time": TIME_CHUNK})
        land = land_of(open_netcdf(land_mask), windows, str(land_mask), str(totals))
        selection = select_windows(windows, land, float(threshold["wet_mm"]),
                                   float(threshold["min_wet_fraction"]), origin=str(totals))
        log.info("threshold: %d of %d windows kept (wet > %s mm on >= %s of %d land cells)",
                 selection.attrs["n_kept"], selection.attrs["n_windows"], threshold["wet_mm"],
                 threshold["min_wet_fraction"], selection.attrs["n_land_cells"])
        return write_netcdf(selection, output, inputs=[totals, land_mask], config=config,
                            step="threshold: wet-area fraction and kept windows")
