"""Rule split: the partitions' totals + land_mask.nc + selection.nc -> train.nc, test.nc (the split is
:mod:`precipmodes.preprocess.split`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

from precipmodes.io.netcdf import open_netcdf, write_netcdf
from precipmodes.logs import log, timed
from precipmodes.preprocess.landmask import land_of
from precipmodes.preprocess.split import describe, split_experiment
from precipmodes.steps.threshold import TIME_CHUNK
from precipmodes.steps.totals import open_totals, totals_origin


def split_files(*, totals: Sequence[str | os.PathLike], land_mask: str | os.PathLike, selection: str | os.PathLike,
                train: str | os.PathLike, test: str | os.PathLike, name: str, experiment: Mapping,
                coverage: Mapping, config: Mapping | None = None) -> tuple[Path, Path]:
    """Rule split: the partitions' totals + land_mask.nc + selection.nc -> train.nc, test.nc of experiment ``name``.

    Parameters
    ----------
    totals, land_mask, selection : path
        Window totals ``precip(time, lat, lon)`` mm, the land mask and the threshold's ``kept(time)``.
    train, test : path
        The outputs: land-only ``precip(cell, time)`` float32 mm with coverage variables.
    name, experiment : str, mapping
        The experiment's name and its config fields (``train``, ``test``, optional ``months``).
    coverage : mapping
        The validated ``coverage`` section (``min_cell_fraction``, ``min_window_fraction``).
    config : mapping, optional
        The whole config, digested into the provenance.

    Returns
    -------
    tuple of pathlib.Path
        ``(train, test)``.
    """
    with timed(f"split ({name})"):
        with open_totals(totals, chunks={"time": TIME_CHUNK}) as windows:
            origin = totals_origin(totals)
            land = land_of(open_netcdf(land_mask), windows, str(land_mask), origin)
            parts = split_experiment(windows, land, open_netcdf(selection), name, experiment, coverage)
            inputs = [*totals, land_mask, selection]
            for part, path in (("train", train), ("test", test)):
                log.info("split %s: %s", name, describe(parts[part]))
                write_netcdf(parts[part], path, inputs=inputs, config=config,
                             step=f"split: {part} windows of experiment {name}")
    return Path(train), Path(test)
