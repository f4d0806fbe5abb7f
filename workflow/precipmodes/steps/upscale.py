"""Rule upscale: raw.nc (or its index) -> the block-mean upscaled grid (the arithmetic is
:mod:`precipmodes.preprocess.upscale`)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Mapping

import xarray as xr

from precipmodes.io.landmask import open_streamed
from precipmodes.io.netcdf import write_netcdf
from precipmodes.logs import log, timed
from precipmodes.preprocess.upscale import block_means


def _open_raw(raw: Path) -> xr.Dataset:
    """raw.nc streamed (:func:`~precipmodes.io.landmask.open_streamed`), or the files of its index read through
    it (:func:`~precipmodes.io.sources.index.open_steps`: values checked as they are read)."""
    from precipmodes.io.sources.index import is_index, open_steps

    ds = open_streamed(raw)
    if not is_index(ds):
        return ds
    ds.close()
    return open_steps(raw)


def upscale_files(*, raw: str | os.PathLike, output: str | os.PathLike, upscale: Mapping,
                  config: Mapping | None = None) -> Path:
    """Rule upscale: block-mean ``raw`` (raw.nc streamed in time chunks, or read through its index) by the ``upscale`` config
    section's ``factor`` [lon, lat] to ``output`` (NetCDF); ``config``, optional, is the whole config,
    digested into the provenance."""
    raw = Path(raw)
    factor = upscale["factor"]
    with timed(f"upscale {list(factor)}"):
        with _open_raw(raw) as ds, warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)  # all-NaN blocks
            out = block_means(ds, factor, origin=str(raw))
            log.info("upscale: %d x %d -> %d x %d cells (lat x lon)", ds.sizes["lat"], ds.sizes["lon"],
                     out.sizes["lat"], out.sizes["lon"])
            return write_netcdf(out, output, config=config, inputs=[raw],
                                step=f"upscale: block mean of {factor[0]} lon x {factor[1]} lat cells")
