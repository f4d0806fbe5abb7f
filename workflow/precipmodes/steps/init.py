"""``precipmodes init DATA...``: a first config written from the data files themselves.

:func:`describe_data` finds the precipitation variable of each file and inspects it
(:func:`~precipmodes.io.sources.index.inspect_file`: units, grid, time step, gaps, months, NaN);
:func:`config_text` turns that into a commented YAML config that validates and runs as it is: the full
domain, the source grid (``regrid: nearest`` on a spacing near the source's for curvilinear grids), land from
``land_mask.method: auto`` (NaN or global_land_mask, :mod:`precipmodes.preprocess.landmask`), one experiment split at whole years (the last fifth or so for test, the season's
``months`` kept when the record is seasonal). A record shorter than one window, a path that matches nothing,
a file without a recognisable precipitation variable and files that differ are refused (InputDataError).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import xarray as xr
import yaml

from precipmodes.config import section_defaults, validate_config
from precipmodes.errors import InputDataError
from precipmodes.io.sources.files import expand_paths
from precipmodes.io.sources.index import inspect_file

#: variable names taken for precipitation (lower case) when no standard_name/long_name says so
PRECIP_NAMES = ("pr", "precip", "precipitation", "pre", "prcp", "rr", "tp", "rain", "rainfall", "apcp")
_PRECIP_TEXT = re.compile(r"precip|rain", re.IGNORECASE)
#: share of the years (or seasons) of the record that the written experiment tests on
TEST_SHARE = 0.2


def find_variable(path: str | os.PathLike) -> str:
    """The precipitation variable of ``path``: the one gridded (time + 2 dims) numeric variable whose name,
    standard_name or long_name says precipitation or rain. Refuses none or several, listing what the file has."""
    with xr.open_dataset(path, decode_times=False) as ds:
        gridded = {name: var for name, var in ds.data_vars.items()
                   if var.ndim >= 3 and np.issubdtype(var.dtype, np.number)}
        found = [name for name, var in gridded.items()
                 if str(name).lower() in PRECIP_NAMES
                 or _PRECIP_TEXT.search(str(var.attrs.get("standard_name", "")))
                 or _PRECIP_TEXT.search(str(var.attrs.get("long_name", "")))]
        listing = ", ".join(f"{name} {tuple(var.dims)} ({var.attrs.get('long_name') or var.attrs.get('standard_name') or 'no long_name'})"
                            for name, var in ds.data_vars.items()) or "no data variables"
    if len(found) == 1:
        return str(found[0])
    if not found:
        raise InputDataError(f"{path}: no recognisable precipitation variable (a gridded variable with time, named "
                             f"{'/'.join(PRECIP_NAMES)} or with 'precipitation' or 'rain' in its standard_name or "
                             f"long_name); the file has: {listing}. If one of them is precipitation, name it: "
                             "precipmodes init --variable NAME ...")
    raise InputDataError(f"{path}: several precipitation-like variables {found}; name the one to use: "
                         f"precipmodes init --variable NAME ... (the file has: {listing})")


def describe_data(patterns: Sequence[str], variable: str | None = None) -> list[dict]:
    """:func:`inspect_file` of every file the paths/globs ``patterns`` match, in order; refuses a pattern
    that matches nothing (:func:`~precipmodes.io.sources.files.expand_paths`) and files that differ in variable, units, time step or grid."""
    found = []
    for path in expand_paths(list(patterns)):
        name = variable or find_variable(path)
        found.append(inspect_file(path, section_defaults("source.files", {"paths": [str(path)], "variable": name})))
    for key, what in (("variable", "variables"), ("units", "units"), ("step_hours", "time steps (hours)"),
                      ("grid", "grids")):
        values = {repr(info[key] if key != "grid" else {k: v for k, v in info[key].items() if k != "spacing"})
                  for info in found}
        if len(values) > 1:
            listing = "; ".join(f"{info['path']}: {info[key] if key != 'grid' else _grid_text(info)}"
                                for info in found)
            raise InputDataError(f"the files differ in their {what}: {listing}. precipmodes reads the files of one "
                                 "product on one grid together: run precipmodes init on each product separately "
                                 "(one config and results_dir each), or regrid/convert them to one first "
                                 "(e.g. `cdo remapbil`, `cdo chname`)")
    return found


def _grid_text(info: dict) -> str:
    grid = info["grid"]
    kind = "curvilinear" if grid["curvilinear"] else "regular"
    return (f"{kind} {grid['shape'][0]} x {grid['shape'][1]}, lat {grid['lat'][0]:.4g}..{grid['lat'][1]:.4g}, "
            f"lon {grid['lon'][0]:.4g}..{grid['lon'][1]:.4g}")


def _runs(found: list[dict]) -> list[tuple[np.datetime64, np.datetime64]]:
    """The contiguous stretches of the whole record, across files (a file that starts where the previous one
    ends continues its stretch)."""
    runs = sorted((np.datetime64(a, "s"), np.datetime64(b, "s")) for info in found for a, b in info["runs"])
    merged = [runs[0]]
    for start, end in runs[1:]:
        if start == merged[-1][1]:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def season_months(months: Sequence[int]) -> list[int] | None:
    """The months present as one season in calendar order from its first month (e.g. [12, 1, 2]), or None
    when every month is present or the months are not one contiguous block."""
    present = set(months)
    if len(present) == 12:
        return None
    firsts = [m for m in present if (m - 2) % 12 + 1 not in present]
    if len(firsts) != 1:
        return None
    return [(firsts[0] - 1 + k) % 12 + 1 for k in range(len(present))]


def window_starts(runs: list[tuple[np.datetime64, np.datetime64]], step_hours: float,
                  hours: int) -> tuple[np.ndarray, str]:
    """The starts of the complete windows of ``hours`` the workflow will total from a record of ``runs``
    (contiguous stretches, steps of ``step_hours``), anchored as ``accumulation.anchor``'s default chooses, and
    that anchor (ISO, UTC)."""
    from precipmodes.preprocess.windows import record_plan

    step = np.timedelta64(int(round(step_hours * 3600)), "s")
    time = np.concatenate([np.arange(start, end, step) for start, end in runs]).astype("datetime64[ns]")
    accumulation = {**section_defaults("accumulation"), "hours": hours}
    anchor, _, plan = record_plan(time, step, accumulation, "the record")
    return plan.start[plan.kept].astype("datetime64[s]"), str(anchor.astype("datetime64[s]"))[11:16] + " UTC"


def split_at_years(start: np.datetime64, end: np.datetime64, first_month: int, starts: np.ndarray) -> np.datetime64:
    """Where test begins: the first day of ``first_month`` (January, or a season's first month) of the year
    that leaves about the last :data:`TEST_SHARE` of the record's years for test; a record within one such year
    is split at the start of the window (of the complete windows' ``starts``, at least two) nearest its last
    fifth of windows, so that train and test hold whole windows."""
    year0, year1 = int(str(start)[:4]), int(str(end)[:4])
    boundaries = [b for b in (np.datetime64(f"{y:04d}-{first_month:02d}-01", "s") for y in range(year0, year1 + 1))
                  if start < b < end]
    if boundaries:
        years = len(boundaries) + 1
        return boundaries[-max(1, int(round(years * TEST_SHARE)))]
    return starts[max(1, min(starts.size - 1, int(round(starts.size * (1 - TEST_SHARE)))))]


def _name(patterns: Sequence[str], found: list[dict]) -> str:
    stems = [Path(info["path"]).name.split(".")[0] for info in found]
    name = os.path.commonprefix(stems).strip("_-. ") if len(stems) > 1 else stems[0]
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name or found[0]["variable"])


def _domain(found: list[dict]) -> tuple[list[float], list[float], str]:
    grid = found[0]["grid"]
    west, east = grid["lon"]
    note = "the files' full extent (cell centres)"
    spacing = grid["spacing"][0] or 0.0
    if east > 180:
        if west >= 180:
            west, east = west - 360, east - 360
            note += ", written in -180..180"
        elif east - west + spacing >= 360 - 1e-6:
            west, east = -180.0, 180.0
            note = "the whole globe (the files' 0..360 longitudes are read as -180..180)"
        else:
            note += ", across the 180° meridian (longitudes past 180 kept)"
    return [round(west, 6), round(east, 6)], [round(v, 6) for v in grid["lat"]], note


def _require_windows(found: list[dict], runs: list, hours: int) -> tuple[int, int, np.ndarray]:
    """``(hours of the longest stretch without gaps, hours of the record, starts of its complete windows)`` of
    the record of ``found`` (``runs``: its stretches; :func:`window_starts`); InputDataError when it holds no
    window of ``hours``, or only one (nothing to test on)."""
    info = found[0]
    longest = max(int((end - start) // np.timedelta64(1, "h")) for start, end in runs)
    span = int((runs[-1][1] - runs[0][0]) // np.timedelta64(1, "h"))
    if longest < hours:
        what = (f"the record is {span} hours" if len(runs) == 1 else
                f"the record's longest stretch without gaps is {longest} hours (of {len(runs)} stretches)")
        raise InputDataError(
            f"{', '.join(str(f['path']) for f in found)}: {what}, shorter than one window of "
            f"accumulation.hours={hours}: there is no window to total, and lowering accumulation.min_completeness "
            f"would invent totals from part of a window. Give more data (more files or a longer record), or "
            f"shorten the window: precipmodes init --hours N (N <= {longest}; accumulation.hours in the config)")
    if span < 2 * hours:
        shorter = (f"shorten the window: precipmodes init --hours N (N <= {span // 2})"
                   if span // 2 >= info["step_hours"] else "a window cannot be shorter than the time step")
        raise InputDataError(
            f"{', '.join(str(f['path']) for f in found)}: the record is {span} hours, one window of "
            f"accumulation.hours={hours}: an experiment needs windows to train on and later ones to test on. "
            f"Give more data (more files or a longer record), or {shorter}")
    starts, anchor = window_starts(runs, info["step_hours"], hours)
    if starts.size < 2:
        raise InputDataError(
            f"{', '.join(str(f['path']) for f in found)}: the record holds {starts.size} complete window(s) of "
            f"accumulation.hours={hours} (windows start at {anchor}, accumulation.anchor auto): an experiment "
            f"needs windows to train on and later ones to test on. Give more data (more files or a longer "
            f"record), or shorten the window: precipmodes init --hours N")
    return longest, span, starts


def _grid_lines(grid: dict, lon: list, lat: list, domain_note: str, nan_cells: int, cells: int,
                n_modes: int) -> tuple[list[str], int]:
    """The config lines of the source's regridding, the domain and the land mask, and ``n_modes`` (at most the
    cells of a regridded curvilinear grid)."""
    lines = []
    resolution = "null  # null keeps the source grid"
    if grid["curvilinear"]:
        step = float(f"{min(grid['spacing']):.2g}")
        cells = max(1, round((lon[1] - lon[0]) / step)) * max(1, round((lat[1] - lat[0]) / step))
        n_modes = min(n_modes, cells)
        lines += ["    # curvilinear (2-D lat/lon) grid: regridded by nearest neighbour onto domain.resolution",
                  "    regrid: nearest"]
        resolution = (f"{step}  # degrees, near the source spacing ({grid['spacing'][0]:.3g} x "
                      f"{grid['spacing'][1]:.3g} deg); cells outside the files' footprint are NaN")
    lines += ["domain:", f"  # {domain_note}", f"  lon: {lon}", f"  lat: {lat}", f"  resolution: {resolution}"]
    if nan_cells:
        lines += ["land_mask:", f"  # the field is NaN on {nan_cells} of {cells} cells. auto: cells with data are "
                  "land if the NaN follows the coast (global_land_mask), else (an instrument's reach) the cells "
                  "with data that global_land_mask calls land; data_nan: every cell with data is land",
                  "  method: auto"]
    else:
        lines += ["# land_mask.method: auto (no NaN in the field: land from global_land_mask, offline; "
                  "cells outside a regridded footprint are NaN and count as no data)"]
    return lines, n_modes


def config_text(patterns: Sequence[str], found: list[dict], hours: int | None = None) -> str:
    """The commented YAML config for the inspected files ``found`` (:func:`describe_data`) of ``patterns``;
    refuses (InputDataError) a record without a contiguous stretch as long as one window."""
    default_hours = section_defaults("accumulation")["hours"]
    hours = hours or default_hours
    info = found[0]
    runs = _runs(found)
    longest, span, starts = _require_windows(found, runs, hours)
    months = sorted({m for f in found for m in f["months"]})
    season = season_months(months)
    split = split_at_years(runs[0][0], runs[-1][1], season[0] if season else 1, starts)
    name = _name(patterns, found)
    lon, lat, domain_note = _domain(found)
    grid = info["grid"]
    nan_cells = max(f["nan_cells"] for f in found)
    cells = grid["shape"][0] * grid["shape"][1]
    # complete windows inside train (the selection may drop some)
    train_windows = int(np.count_nonzero(starts + np.timedelta64(hours, "h") <= split))
    n_modes = int(min(section_defaults("experiments.main")["n_modes"], max(1, cells - nan_cells),
                      max(1, train_windows)))
    paths = [os.path.abspath(p) for p in patterns]
    gaps = len(runs) - 1
    lines = [
        f"# Written by `precipmodes init` from {len(found)} file(s): variable {info['variable']!r} "
        f"({info['units']}, {info['dtype']}), one step = {info['step_hours']:g} h, stamps mark the "
        f"{info['time_label']} of a step",
        f"# record {str(runs[0][0])[:16]} .. {str(runs[-1][1])[:16]} UTC ({span} hours), "
        + (f"{gaps} gap(s): {len(runs)} stretches without gaps, the longest {longest} hours" if gaps
           else "no gaps"),
        f"# months present: {months}" + (f" (a season: {season})" if season else ""),
        f"# grid: {_grid_text(info)}; {nan_cells} of {cells} cells NaN in the first step",
        "# Every key: config/README.md. Check the values below, then run: snakemake --cores 2 --configfile THIS_FILE",
        "",
        "# one results folder per data set",
        f"results_dir: results/{name}",
        "source:",
        "  kind: files",
        "  files:",
        f"    paths: {yaml.safe_dump(paths, default_flow_style=True, width=10**6).strip()}",
        f"    variable: {yaml.safe_dump(info['variable']).splitlines()[0]}",
    ]
    grid_lines, n_modes = _grid_lines(grid, lon, lat, domain_note, nan_cells, cells, n_modes)
    lines += grid_lines
    if hours != default_hours:
        lines += ["accumulation:", f"  hours: {hours}  # length of a window (default {default_hours})"]
    else:
        lines += [f"# accumulation.hours: {default_hours} (default): windows of {hours} hours"]
    years = "whole years" if season is None else f"whole seasons (split where the season starts, month {season[0]})"
    lines += ["experiments:",
              f"  # train on the record up to {str(split)[:10]}, test on the rest (about the last fifth, at "
              f"{years})",
              "  main:",
              f"    train: [\"{str(runs[0][0])}Z\", \"{str(split)}Z\"]",
              f"    test: [\"{str(split)}Z\", \"{str(runs[-1][1])}Z\"]",
              f"    n_modes: {n_modes}"]
    if season:
        lines += [f"    months: {season}  # windows start in the months the record holds"]
    text = "\n".join(lines) + "\n"
    validate_config(yaml.safe_load(text), origin="the config precipmodes init wrote")
    return text


def init_config(patterns: Sequence[str], output: str | os.PathLike | None = None, variable: str | None = None,
                hours: int | None = None) -> str:
    """Inspect the files of ``patterns`` and return the commented config (:func:`config_text`); written to
    ``output`` when given (an existing file is refused)."""
    text = config_text(patterns, describe_data(patterns, variable), hours)
    if output is not None:
        if Path(output).exists():
            raise InputDataError(f"{output}: exists; precipmodes init does not overwrite a config: choose another "
                                 "name with -o, or move the file away")
        Path(output).write_text(text)
    return text
