"""Rule split: the partitions' totals -> train.nc, test.nc, on the land cells and windows that the land_mask and
threshold rules keep too (the split is :mod:`precipmodes.preprocess.split`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

from precipmodes.io.netcdf import write_netcdf
from precipmodes.logs import log, timed
from precipmodes.preprocess.landmask import land_of
from precipmodes.preprocess.split import describe, split_experiment
from precipmodes.steps.threshold import TIME_CHUNK, kept_windows
from precipmodes.steps.totals import open_totals, totals_origin


def split_files(*, totals: Sequence[str | os.PathLike], grid: str | os.PathLike, train: str | os.PathLike,
                test: str | os.PathLike, name: str, experiment: Mapping, coverage: Mapping, threshold: Mapping,
                land_mask: Mapping, config: Mapping | None = None) -> tuple[Path, Path]:
    """Rule split: the partitions' totals -> train.nc, test.nc of experiment ``name``.

    Parameters
    ----------
    totals : paths
        The partitions' window totals ``precip(time, lat, lon)`` mm, in time order.
    grid : path
        The gridded input (raw.nc, its index or upscaled.nc), on whose grid the land cells are made.
    train, test : path
        The outputs: land-only ``precip(cell, time)`` float32 mm with coverage variables.
    name, experiment : str, mapping
        The experiment's name and its config fields (``train``, ``test``, optional ``months``).
    coverage, threshold, land_mask : mapping
        The validated ``coverage`` (``min_cell_fraction``, ``min_window_fraction``), ``threshold`` and
        ``land_mask`` sections: the land cells and kept windows are those of land_mask.nc and selection.nc,
        made here by the same function (:func:`~precipmodes.steps.threshold.kept_windows`), so that the
        experiments do not wait for those two rules.
    config : mapping, optional
        The whole config, digested into the provenance.

    Returns
    -------
    tuple of pathlib.Path
        ``(train, test)``.
    """
    with timed(f"split ({name})"):
        selected, mask, sources = kept_windows(totals, grid, threshold, land_mask)
        with open_totals(totals, chunks={"time": TIME_CHUNK}) as windows:
            land = land_of(mask, windows, f"the land mask of {Path(grid).name}", totals_origin(totals))
            parts = split_experiment(windows, land, selected, name, experiment, coverage)
            for part, path in (("train", train), ("test", test)):
                log.info("split %s: %s", name, describe(parts[part]))
                write_netcdf(parts[part], path, inputs=[*totals, *sources], config=config,
                             step=f"split: {part} windows of experiment {name}")
    return Path(train), Path(test)
