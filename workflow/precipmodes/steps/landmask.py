"""Rule land_mask: the land fraction by the configured method, checked and written (the fields are
:mod:`precipmodes.preprocess.landmask`)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import xarray as xr

from precipmodes.errors import ConfigError, InputDataError
from precipmodes.io.globe import globe_land_fraction
from precipmodes.io.landmask import open_streamed, read_mask_file
from precipmodes.io.netcdf import open_netcdf, write_netcdf
from precipmodes.logs import log, timed
from precipmodes.preprocess.landmask import (FROM_DATA, data_nan_fraction, globe_source, land_mask_dataset,
                                             land_of_grid)
from precipmodes.steps.totals import open_partitions, totals_origin

# auto: the largest share of the cells with data that may be wholly sea by global_land_mask for the NaN
# pattern to count as a coastline (E-OBS Iberia: 0 of 328; Stage IV regridded off the Carolinas: 30 %)
AUTO_MAX_SEA_SHARE = 0.1


def land_fraction_for(grid: xr.Dataset, settings: Mapping, origin: str = "input",
                      observed: xr.DataArray | None = None) -> tuple[xr.DataArray, str, str]:
    """Land fraction on the grid of ``grid`` (a canonical dataset, or the index of one) by
    ``settings['method']``. ``observed(lat, lon)``: the totals' count of input steps with a value per
    cell (``n_observed_steps`` of the totals), from which ``data_nan`` is taken (no pass over the data);
    without it ``data_nan`` reads ``grid['precip']``.

    Returns ``(land_fraction(lat, lon), method used, source description)``.
    """
    method = settings["method"]
    if method not in ("auto", "data_nan", "global_land_mask", "file"):
        raise ConfigError(f"land_mask.method: unknown method {method!r}; use auto, data_nan, global_land_mask "
                          f"or file")
    lat, lon = grid["lat"], grid["lon"]
    if method == "file":
        return read_mask_file(settings["path"], lat, lon), "file", f"file {settings['path']}"
    if method == "auto" and "seed_land" in grid:
        seed = grid["seed_land"].astype(np.float32).fillna(0.0).transpose("lat", "lon").load()
        return seed.clip(0, 1), "seed_land", f"variable seed_land of {origin} (the seed's land mask)"
    if method in FROM_DATA:
        fraction = (data_nan_fraction(grid["precip"]) if observed is None
                    else (observed > 0).astype(np.float32).assign_coords(lat=lat, lon=lon))
        if not fraction.any():
            raise InputDataError(f"{origin}: precip is NaN at every cell and time step; there is no data "
                                 f"to mask (check the source)")
        nan_source = f"NaN pattern of {origin}: sea = cells missing at every time step"
        if method == "data_nan":
            return fraction, "data_nan", nan_source
    subsamples = int(settings["subsamples"])
    globe = globe_land_fraction(lat, lon, subsamples)
    if method == "auto" and not fraction.all():
        seen = fraction > 0
        sea = int((seen & (globe == 0)).sum())
        share = sea / int(seen.sum())
        if share <= AUTO_MAX_SEA_SHARE:
            return fraction, "data_nan", nan_source
        log.warning("land_mask.method auto: %d of %d cells with data in %s (%.0f %%, more than %.0f %%) are wholly "
                    "sea by global_land_mask, so the NaN pattern marks where the instrument sees, not the coast; "
                    "land = cells with data that global_land_mask calls land. To take every cell with data as "
                    "land, set land_mask.method: data_nan", sea, int(seen.sum()), origin, 100 * share,
                    100 * AUTO_MAX_SEA_SHARE)
        return (globe.where(seen, 0.0), "global_land_mask_where_observed",
                f"{globe_source(subsamples)}, where {origin} has data (cells missing at every time step: no data)")
    return globe, "global_land_mask", globe_source(subsamples)


def land_mask_of(grid: str | os.PathLike, land_mask: Mapping, record: xr.Dataset | None = None,
                 record_origin: str = "totals") -> tuple[xr.Dataset, str, str]:
    """The land mask (:func:`~precipmodes.preprocess.landmask.land_mask_dataset`: ``land_fraction`` and
    ``land`` on the grid of ``grid``, raw.nc, its index or upscaled.nc) by the complete ``land_mask`` config
    section, with the method used and what it was made from. ``record``: the partitions' record
    (:func:`~precipmodes.steps.totals.open_partitions`, named ``record_origin`` in messages), whose
    ``n_observed_steps`` gives the methods of :data:`~precipmodes.preprocess.landmask.FROM_DATA`
    (:func:`land_fraction_for`); without it those read the grid's values (streamed)."""
    grid = Path(grid)
    record = record if land_mask["method"] in FROM_DATA else None
    with (open_netcdf(grid) if record is not None else open_streamed(grid)) as data:
        observed = (None if record is None
                    else land_of_grid(record["n_observed_steps"], data, record_origin, grid))
        fraction, method, source = land_fraction_for(data, land_mask, origin=grid.name, observed=observed)
        ds = land_mask_dataset(fraction, float(land_mask["min_fraction"]), method, source, land_mask["method"])
        ds["lat"].attrs, ds["lon"].attrs = dict(data["lat"].attrs), dict(data["lon"].attrs)
    return ds, method, source


def land_mask_files(*, grid: str | os.PathLike, output: str | os.PathLike, land_mask: Mapping,
                    config: Mapping | None = None, totals: Sequence[str | os.PathLike] | None = None) -> Path:
    """Rule land_mask: :func:`land_mask_of` ``grid`` by the complete ``land_mask`` config section (from the
    partitions' ``totals`` for the methods that take the land from the data), written to ``output``
    (NetCDF); ``config``, optional, is the whole config, digested into the provenance."""
    with timed(f"land_mask ({land_mask['method']})"), \
            (open_partitions(totals) if totals else contextlib.nullcontext((None, None))) as (record, _):
        ds, method, source = land_mask_of(grid, land_mask, record, totals_origin(totals) if totals else "totals")
        log.info("land mask: %d of %d cells are land (method %s)", ds.attrs["n_land_cells"], ds.attrs["n_cells"],
                 method)
        return write_netcdf(ds, output, step=f"land_mask: method {method} ({source})", config=config,
                            inputs=mask_inputs(grid, land_mask, method) + list(totals or []))


def mask_inputs(grid: str | os.PathLike, land_mask: Mapping, method: str) -> list:
    """The files a land mask made by :func:`land_mask_of` with ``method`` comes from, for the provenance:
    ``grid``, and the mask file of ``land_mask.path`` when the method is ``file``."""
    return [grid] + ([land_mask["path"]] if method == "file" else [])
