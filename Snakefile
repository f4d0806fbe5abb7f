# precipmodes: principal patterns of gridded precipitation.
#   snakemake --cores all                      (default config: the offline synthetic demo)
#   snakemake --cores all --configfile my.yaml (your data; see README "Configuration")
import sys
import time
from pathlib import Path

from snakemake.logging import logger

from precipmodes.archive import remove_stale_archive_temps
from precipmodes.config import layers_origin, refuse_unsafe_folders, validate_config
from precipmodes.errors import ConfigError, PrecipModesError
from precipmodes.logs import write_timing_table
from precipmodes.netcdf import remove_leftovers
from precipmodes.runlock import RunLock, RunLockError, break_stale
from precipmodes.summary import format_overview, results_overview

# Config layers (README "Configuration"): the base is the default demo config when no --configfile is
# given, else the --configfile files merged in order (a user's config replaces the demo's); --config
# key=value layers over that base either way. Snakemake has merged the --configfile files and --config
# into `config` already; the configfile directive loads the default and lays --config over it again.
DEFAULT_CONFIG = f"{workflow.basedir}/config/config.yaml"
if not workflow.overwrite_configfiles:
    configfile: DEFAULT_CONFIG

_origin = layers_origin(workflow.overwrite_configfiles, workflow.config_settings.config, DEFAULT_CONFIG)
try:
    _validated = validate_config(config, origin=_origin, overrides=workflow.config_settings.config)
    refuse_unsafe_folders(_validated, origin=_origin)
except ConfigError as error:
    raise WorkflowError(str(error)) from None
config.clear()
config.update(_validated)


include: "workflow/rules/common.smk"
include: "workflow/rules/source.smk"
include: "workflow/rules/landmask.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/decompose.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/archive.smk"


# One run at a time writes into results_dir: the run lock <results_dir>/.precipmodes.lock (precipmodes.runlock),
# taken in onstart (Snakemake runs no hooks in dry runs, --unlock, --report or inside cluster jobs) and
# given back on success, on error and at exit. On every start of the main process, "nothing to be done"
# included, what killed writes left in the workflow's folders (temp files of ended writers, provenance
# sidecars whose NetCDF is gone, archive folders of ended archive writers) is removed first - unless a live
# run holds the folder (it is that run's).
RUN_LOCK = RunLock(RESULTS)
RUN_STARTED = time.time()  # job logs written since then are this run's (the timing table at the end)
if workflow.is_main_process:
    _holder, _note = break_stale(RESULTS)
    if _note:
        logger.warning(_note)
    if _holder is None:
        remove_leftovers(OWN_FOLDERS)
        remove_stale_archive_temps(ARCHIVE_ROOT)


onstart:
    try:
        _note = RUN_LOCK.acquire()
    except RunLockError as error:
        raise WorkflowError(str(error)) from None
    if _note:
        logger.warning(_note)


# the sidecars of outputs that a failed job left or Snakemake removed, and the failed writers' temp files
onerror:
    try:
        remove_leftovers(OWN_FOLDERS)
    finally:
        RUN_LOCK.release()


# the time each job of this run took (from its log), slowest first, also written to
# <results_dir>/logs/timings.tsv; then the overview of the experiments (precipmodes summary)
onsuccess:
    try:
        write_timing_table(LOGS, since=RUN_STARTED)
        try:
            print(format_overview(RESULTS, results_overview(RESULTS, EXPERIMENTS)), file=sys.stderr)
        except PrecipModesError as error:
            logger.warning(f"precipmodes summary {RESULTS}: {error}")
    finally:
        RUN_LOCK.release()


rule all:
    input:
        final_outputs,
    default_target: True
