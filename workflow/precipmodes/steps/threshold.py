"""Rule threshold: the partitions' totals -> selection.nc, on the land cells that the land_mask rule finds too
(the arithmetic is :mod:`precipmodes.preprocess.threshold`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import xarray as xr

from precipmodes.io.netcdf import write_netcdf
from precipmodes.logs import log, timed
from precipmodes.preprocess.landmask import land_of
from precipmodes.preprocess.threshold import selection, wet_area_fraction
from precipmodes.steps.landmask import land_mask_of, mask_inputs
from precipmodes.steps.totals import open_partitions, precip_blocks, totals_origin

TIME_CHUNK = 64  # windows read at a time


def threshold_files(*, totals: Sequence[str | os.PathLike], grid: str | os.PathLike, output: str | os.PathLike,
                    threshold: Mapping, land_mask: Mapping, config: Mapping | None = None) -> Path:
    """Rule threshold: the partitions' totals -> selection.nc; returns ``output``.

    ``totals``: the partitions' files of window totals ``precip(time, lat, lon)`` mm, in time order, read
    :data:`TIME_CHUNK` windows at a time (:func:`~precipmodes.steps.totals.open_partitions`); ``grid``: the
    gridded input (raw.nc, its index or upscaled.nc) and ``land_mask``: the validated ``land_mask`` section,
    from which the land cells are made as the land_mask rule makes them
    (:func:`~precipmodes.steps.landmask.land_mask_of`; so the two rules run side by side, not one after the
    other); ``output``: selection.nc to write, ``wet_area_fraction(time)`` (0..1) and ``kept(time)`` (0/1);
    ``threshold``: the validated ``threshold`` section (``wet_mm`` mm, ``min_wet_fraction``);
    ``config`` (optional): the whole config, digested into the provenance.
    """
    with timed("threshold"):
        origin = totals_origin(totals)
        with open_partitions(totals) as (record, partitions):
            mask, method, _ = land_mask_of(grid, land_mask, record, origin)
            wet, fractions = float(threshold["wet_mm"]), []
            for path, part in zip(totals, partitions):
                land = land_of(mask, part, f"the land mask of {Path(grid).name}", str(path))
                fractions += [wet_area_fraction(block, land, wet) for block in precip_blocks(part, TIME_CHUNK)]
            selected = selection(xr.concat(fractions, dim="time"), record, land, wet,
                                 float(threshold["min_wet_fraction"]), origin=origin)
        log.info("threshold: %d of %d windows kept (wet > %s mm on >= %s of %d land cells, land mask by %s)",
                 selected.attrs["n_kept"], selected.attrs["n_windows"], threshold["wet_mm"],
                 threshold["min_wet_fraction"], selected.attrs["n_land_cells"], method)
        return write_netcdf(selected, output, inputs=[*totals, *mask_inputs(grid, land_mask, method)], config=config,
                            step="threshold: wet-area fraction and kept windows")
