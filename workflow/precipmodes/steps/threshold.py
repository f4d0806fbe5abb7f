"""Rule threshold: the partitions' totals + land_mask.nc -> selection.nc (the arithmetic is
:mod:`precipmodes.preprocess.threshold`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

from precipmodes.io.netcdf import open_netcdf, write_netcdf
from precipmodes.logs import log, timed
from precipmodes.preprocess.landmask import land_of
from precipmodes.preprocess.threshold import select_windows
from precipmodes.steps.totals import open_totals, totals_origin

TIME_CHUNK = 64


def threshold_files(*, totals: Sequence[str | os.PathLike], land_mask: str | os.PathLike, output: str | os.PathLike,
                    threshold: Mapping, config: Mapping | None = None) -> Path:
    """Rule threshold: the partitions' totals + land_mask.nc -> selection.nc; returns ``output``.

    ``totals``: the partitions' files of window totals ``precip(time, lat, lon)`` mm, in time order
    (:func:`~precipmodes.steps.totals.open_totals`); ``land_mask``: the land mask on the same
    grid; ``output``: selection.nc to write, ``wet_area_fraction(time)`` (0..1) and ``kept(time)`` (0/1);
    ``threshold``: the validated ``threshold`` section (``wet_mm`` mm, ``min_wet_fraction``);
    ``config`` (optional): the whole config, digested into the provenance.
    """
    with timed("threshold"):
        with open_totals(totals, chunks={"time": TIME_CHUNK}) as windows:
            origin = totals_origin(totals)
            land = land_of(open_netcdf(land_mask), windows, str(land_mask), origin)
            selection = select_windows(windows, land, float(threshold["wet_mm"]),
                                       float(threshold["min_wet_fraction"]), origin=origin).load()
        log.info("threshold: %d of %d windows kept (wet > %s mm on >= %s of %d land cells)",
                 selection.attrs["n_kept"], selection.attrs["n_windows"], threshold["wet_mm"],
                 threshold["min_wet_fraction"], selection.attrs["n_land_cells"])
        return write_netcdf(selection, output, inputs=[*totals, land_mask], config=config,
                            step="threshold: wet-area fraction and kept windows")
