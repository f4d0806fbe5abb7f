"""Rule accumulate_partition's file side: :func:`accumulate_files`, which opens a partition's steps (through the index
of the source's files, or from the NetCDF file) and writes their window totals
(:func:`precipmodes.steps.windowtotals.accumulate`).

Reading is mostly zlib decompression, which netCDF-C/HDF5 run under one lock per process, so
threads take turns. :class:`~precipmodes.io.readers.ReaderProcesses` reads and sums the blocks in worker
processes instead (each opens the file itself and sends back only the window totals); the rule uses them
when it has more than one thread and the input is large (:data:`READER_PROCESSES_MIN_MB`).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import xarray as xr

from precipmodes.config import iso_utc
from precipmodes.errors import InputDataError
from precipmodes.io.encoding import chunk_row_bytes, chunk_sizes
from precipmodes.io.netcdf import chunk_cache, input_row_bytes, open_netcdf, stream_cache_bytes, write_netcdf
from precipmodes.io.readers import ReaderProcesses
from precipmodes.io.sources import ALREADY_ACCUMULATED_ATTR
from precipmodes.io.sources.values import DeferredChecks, ValuesRefused, check_window_totals, step_limit
from precipmodes.logs import log, timed
from precipmodes.preprocess.windows import WindowPlan, partition_months, partition_ranges, record_plan
from precipmodes.steps.partitions import read_record
from precipmodes.steps.windowtotals import BLOCK_MB, accumulate

#: decoded input size (MB) from which accumulate_files reads in worker processes when given more than
#: one thread; below it, starting the processes costs more than it saves
READER_PROCESSES_MIN_MB = 256.0


def accumulate_files(*, input_path: str | os.PathLike, output_path: str | os.PathLike, accumulation: Mapping,
                     config: Mapping | None = None, block_mb: float = BLOCK_MB, processes: int = 1,
                     plausibility: Mapping | None = None, partition: str | None = None, months: int | None = None,
                     check_while_summing: bool = True) -> Path:
    """Rule accumulate_partition: ``input_path`` (raw.nc, its index or upscaled.nc) -> window totals NetCDF.

    Parameters
    ----------
    input_path : path
        Canonical ``precip(time, lat, lon)``, mm per source step, with ``time_bnds``; or the index of the
        source's files (:mod:`precipmodes.io.sources.index`), through which only the files holding the
        partition are read (their values checked as they are).
    output_path : path
        ``precip(time, lat, lon)`` mm per window, ``time_bnds``, ``completeness(time)``.
    accumulation : mapping
        The validated ``accumulation`` section (``hours``, ``anchor``, ``min_completeness``,
        ``partition_months``).
    config : mapping, optional
        The whole config, digested into the provenance.
    block_mb : float
        Size of the blocks of whole windows read at a time (MB of input), which bounds memory.
    plausibility : mapping, optional
        ``source.max_window_mm`` and ``source.implausible`` (:func:`precipmodes.io.sources.plausibility`): each
        window total is checked as it is written (:func:`~precipmodes.io.sources.values.check_window_totals`).
    processes : int
        Reader processes (:class:`~precipmodes.io.readers.ReaderProcesses`) when more than 1 and a NetCDF
        input is at least :data:`READER_PROCESSES_MIN_MB` decoded; else the blocks are read in this process.
    partition : str, optional
        A label of :func:`~precipmodes.preprocess.windows.partition_ranges` (the windows of the record
        anchored as the whole record is): only its windows; None: the whole record.
    months : int, optional
        Months per partition as planned (:func:`~precipmodes.steps.partitions.partition_plan`, on the source's grid); None: from
        ``accumulation.partition_months`` and this input's grid.
    check_while_summing : bool
        Through an index, check the values on the blocks the sums read (one read of the files; needs
        dask's threaded scheduler, where the blocks are read in this process); False: in a pass of their
        own first (a dask cluster).

    Returns
    -------
    pathlib.Path
        ``output_path``.
    """
    hours = int(accumulation["hours"])
    origin = str(input_path)
    with timed(f"accumulate ({hours} h{'' if partition is None else ', partition ' + partition})"):
        coords, step, cells = read_record(input_path)
        span = _partition_steps(coords, step, cells, accumulation, partition, months, origin)
        raw, readers, checks = _open_input(input_path, coords, span, processes, plausibility, check_while_summing)
        with readers or contextlib.nullcontext():
            totals = accumulate(raw, hours, span.anchor, float(accumulation["min_completeness"]), block_mb=block_mb,
                                origin=origin, readers=readers, step=step, partition=partition is not None,
                                checks=checks)
            if span.rule is not None:
                totals.attrs["accumulation_anchor_rule"] = span.rule
            return _write_totals(totals, output_path, input_path=input_path, source_attrs=raw.attrs, config=config,
                                 plausibility=plausibility, checks=checks, hours=hours, partition=partition)


@dataclass(frozen=True)
class _StepRange:
    """The record's steps ``[i0, i1)`` a job totals, the anchor it gives
    :func:`~precipmodes.steps.windowtotals.accumulate`, how that anchor was chosen (None: accumulate chooses
    it) and the record's windows (None: not planned here)."""

    i0: int
    i1: int
    anchor: str
    rule: str | None = None
    plan: WindowPlan | None = None


def _partition_steps(coords: xr.Dataset, step: np.timedelta64 | None, cells: int, accumulation: Mapping,
                     partition: str | None, months: int | None, origin: str) -> _StepRange:
    """The steps of ``partition`` (:func:`~precipmodes.preprocess.windows.partition_ranges` of the windows of
    the record ``coords``, anchored as the whole record is; ``months`` per partition, None: from
    ``accumulation.partition_months`` and the record's ``cells``), or the whole record: ``partition`` None,
    or ``step`` None (already accumulated totals)."""
    if step is None or partition is None:
        return _StepRange(0, coords.sizes["time"], accumulation["anchor"])
    anchor_time, rule, plan = record_plan(coords["time"].values, step, accumulation, origin)
    if months is None:
        months = partition_months(accumulation["partition_months"], step, cells)
    ranges = partition_ranges(plan, months)
    if partition not in ranges:
        raise InputDataError(f"{origin}: no partition {partition!r} in the record (it has "
                             f"{', '.join(ranges)}); run snakemake again, which plans the partitions anew")
    i0, i1 = ranges[partition]
    return _StepRange(i0, i1, iso_utc(anchor_time) + "Z", rule, plan)


def _open_input(input_path: str | os.PathLike, coords: xr.Dataset, span: _StepRange, processes: int,
                plausibility: Mapping | None,
                check_while_summing: bool) -> tuple[xr.Dataset, ReaderProcesses | None, DeferredChecks | None]:
    """The canonical dataset (lazy) of the steps ``span`` of the input (``coords``: its coordinates and attributes),
    the reader processes that read it (None: read in this process) and the checks of its values on the
    blocks the sums read (None: checked as read, or nothing to check)."""
    from precipmodes.io.sources.index import is_index

    if is_index(coords):
        raw, checks = _read_through_index(input_path, span, plausibility, check_while_summing)
        return raw, None, checks
    raw, readers = _open_file(input_path, span, processes)
    return raw, readers, None


def _read_through_index(input_path: str | os.PathLike, span: _StepRange, plausibility: Mapping | None,
                        check_while_summing: bool) -> tuple[xr.Dataset, DeferredChecks | None]:
    """The steps ``span`` read through the index ``input_path`` (:mod:`precipmodes.io.sources.index`): from the
    files holding them only, or generated (the demo); with the checks of the files' values on the blocks
    the sums read when ``check_while_summing`` (else they are checked as read, in a pass of their own)."""
    from precipmodes.io.sources.index import is_generated, read_index

    with open_netcdf(input_path) as index:
        index = index.load()
    # the values are checked on the blocks the sums read (one read of the files, not two); chunks
    # cut at the window starts, so that no chunk is decompressed for two blocks
    raw = read_index(index, span.i0, span.i1, origin=str(input_path), check_values=not check_while_summing,
                     cuts=None if span.plan is None else span.plan.first)
    checks = (_value_checks(raw, index, span.i0, span.i1, plausibility)
              if check_while_summing and not is_generated(index) else None)
    return raw, checks


def _open_file(input_path: str | os.PathLike, span: _StepRange,
               processes: int) -> tuple[xr.Dataset, ReaderProcesses | None]:
    """The steps ``span`` of the NetCDF file ``input_path`` (lazy), and
    :class:`~precipmodes.io.readers.ReaderProcesses` reading it when ``processes`` > 1 and the decoded input is
    at least :data:`READER_PROCESSES_MIN_MB`."""
    # netCDF-C caches 64 MiB per variable and file by default; the stream needs two rows of chunks of
    # each (stream_cache_bytes): 1 year of hourly 320 x 400 maps on 2 threads,
    # 457-466 -> 380-415 MiB peak (bench_accumulate_cdo)
    input_cache = stream_cache_bytes(input_row_bytes(input_path))
    with chunk_cache(input_cache):
        raw = open_netcdf(input_path)
    input_mb = raw["precip"].size * raw["precip"].dtype.itemsize / 1e6
    readers = None
    if processes > 1 and input_mb >= READER_PROCESSES_MIN_MB and _readable_by_readers(raw):
        readers = ReaderProcesses(input_path, processes, input_cache, offset=span.i0)
        log.info("accumulate: reading %.0f MB (decoded) in %d reader processes", input_mb, processes)
    return raw.isel(time=slice(span.i0, span.i1)), readers


def _write_totals(totals: xr.Dataset, output_path: str | os.PathLike, *, input_path: str | os.PathLike,
                  source_attrs: Mapping, config: Mapping | None, plausibility: Mapping | None,
                  checks: DeferredChecks | None, hours: int, partition: str | None) -> Path:
    """Write the window ``totals`` of ``input_path`` (``source_attrs``: the attributes of its dataset) to
    ``output_path``, each total checked as it is written
    (:func:`~precipmodes.io.sources.values.check_window_totals` with ``plausibility``); with ``checks``
    the input's values are judged once every block is read (a refusal recorded: ``checks.refuse``)."""
    verify = None
    if checks is not None:
        blocks = totals.attrs.pop("n_blocks_read")
        verify = lambda: checks.judge(blocks)  # noqa: E731
    origin = f"{input_path} ({source_attrs['source']})" if "source" in source_attrs else str(input_path)
    totals = check_window_totals(totals, plausibility, origin)
    log.info("accumulate: %d windows of %d h kept, %d dropped (min_completeness %s), anchor %s",
             totals.attrs["n_windows"], hours, totals.attrs["n_windows_dropped"],
             totals.attrs["min_completeness"], totals.attrs.get("accumulation_anchor", "(passed through)"))
    precip = totals["precip"]
    output_row = chunk_row_bytes(precip.shape, chunk_sizes(precip.shape, precip.dims), precip.dtype.itemsize)
    try:
        with chunk_cache(stream_cache_bytes(output_row)):
            return write_netcdf(totals, output_path, inputs=[input_path], config=config, verify=verify,
                                step=f"accumulate: {hours}-hour totals from {Path(input_path).name}"
                                     + ("" if partition is None else f", partition {partition}"))
    except ValuesRefused:
        checks.refuse()
        raise


def _value_checks(raw: xr.Dataset, index: xr.Dataset, i0: int, i1: int,
                  plausibility: Mapping | None) -> DeferredChecks:
    """The checks of the values of steps ``[i0, i1)`` of ``index`` (``raw``: read unchecked) on the blocks
    the sums read, with the messages of :func:`~precipmodes.io.sources.values.judge_values` naming the files
    and the source's config key."""
    from precipmodes.io.sources.files import paths_origin
    from precipmodes.io.sources.index import step_files

    bounds = raw["time_bnds"].values
    limit = step_limit(plausibility, (bounds[:, 1] - bounds[:, 0]) / np.timedelta64(1, "s"))
    files, key = step_files(index, i0, i1)
    return DeferredChecks(raw["precip"], limit, plausibility, files, paths_origin(list(dict.fromkeys(files))), key)


def _readable_by_readers(raw: xr.Dataset) -> bool:
    """Whether reader processes give what xarray reads: ``precip`` decoded to float32 and stored as
    float32 unpacked, or as int16 packed with float32 scale_factor/add_offset (CF packing, as E-OBS
    ships), and not already window totals."""
    encoding = raw["precip"].encoding
    packing = [encoding[key] for key in ("scale_factor", "add_offset") if key in encoding]
    stored = encoding.get("dtype")
    return (raw["precip"].dtype == np.float32 and ALREADY_ACCUMULATED_ATTR not in raw.attrs
            and ((stored == np.float32 and not packing)
                 or (stored == np.int16 and all(np.asarray(v).dtype == np.float32 for v in packing))))
