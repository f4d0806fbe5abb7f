# Paths and helpers shared by all .smk files (Snakemake's lint wants functions here); outputs, under
# config results_dir (default results/):
#   <results_dir>/prepared/...        shared preparation (raw.nc: the data, or the index of the files read in
#                                     place; totals/<partition>.nc, land mask, selection)
#   <results_dir>/<experiment>/...    per experiment (split, svd.nc, nmf.nc, evaluation.nc, figures/)
#   <results_dir>/logs/...            one log per job
import functools
import json
import os
import re
from pathlib import Path

from precipmodes.steps.partitions import partition_plan, partition_threads
from precipmodes.plots import experiment_figure_names, figure_files
from precipmodes.preprocess.landmask import FROM_DATA
from precipmodes.config import rule_resources as config_rule_resources
from precipmodes.errors import InputDataError, PrecipModesError
from precipmodes.steps.runhooks import results_folders
from precipmodes.io.sources import fingerprint, local_inputs, missing_message, plausibility, source_options
from precipmodes.io.sources.urls import download_plan

FOLDERS = results_folders(config)  # precipmodes.steps.runhooks: the one home of the folder layout
RESULTS = FOLDERS["results"]
PREPARED = FOLDERS["prepared"]
LOGS = FOLDERS["logs"]
RAW = f"{PREPARED}/raw.nc"
DEMO_TRUTH = f"{PREPARED}/demo_truth.nc"
EXPERIMENT_DIR = f"{RESULTS}/{{experiment}}"
EXPERIMENTS = sorted(config["experiments"])


wildcard_constraints:
    experiment="|".join(EXPERIMENTS) if EXPERIMENTS else "[A-Za-z0-9_-]+",


def is_demo():
    return config["source"]["kind"] == "demo"


def is_rotated():
    """svd.rotation is on: svd.nc has rotated modes and rotated_modes.png is drawn."""
    return config["svd"]["rotation"]["method"] != "none"


def is_hilbert():
    """svd.hilbert.n_modes > 0: hilbert.nc and hilbert_modes.png are made."""
    return config["svd"]["hilbert"]["n_modes"] > 0


def is_ard():
    """nmf.ard is on: nmf.nc has the relevance of each candidate component (drawn in rank_choice.png)."""
    return config["nmf"]["ard"]


# Inputs from outside the workflow. SOURCE: the options of source.kind (flat, with kind).
# SOURCE_INPUTS: the local files the source reads (globs expanded at parse time); DOWNLOADS:
# {path in source.http.cache_dir (DOWNLOAD_DIR): URL} for the download rule; MASK_FILES: land_mask.path when used.
# MISSING_INPUTS: {path: config key} of those not there, which rule missing_input "makes" by failing
# with a message naming them (a missing input without a producer would let Snakemake take an existing
# raw.nc as done).
SOURCE = source_options(config["source"])
SOURCE_INPUTS, MISSING_INPUTS = local_inputs(SOURCE)
try:
    DOWNLOADS = download_plan(SOURCE) if SOURCE["kind"] == "http" and not SOURCE["opendap"] else {}
except PrecipModesError as error:
    raise WorkflowError(str(error)) from None
DOWNLOAD_DIR = str(Path(SOURCE.get("cache_dir", "downloads")))
DOWNLOAD_URLS = {os.path.basename(path): url for path, url in DOWNLOADS.items()}
MASK_FILES = (
    [config["land_mask"]["path"]] if config["land_mask"]["method"] == "file" and config["land_mask"]["path"] else []
)
MISSING_INPUTS.update({path: "land_mask.path" for path in MASK_FILES if not os.path.exists(path)})


def source_param(wildcards):
    """The options of source.kind as JSON, for params: (only the active kind's options rerun raw)."""
    return json.dumps(SOURCE, sort_keys=True)


def fingerprint_param(paths):
    """Path, size and modification time of ``paths`` as one digest (a JSON string), for params: (evaluated
    per DAG)."""
    return lambda wildcards: json.dumps(fingerprint(paths))


def literal(path):
    """``path`` as a Snakemake file pattern that matches itself (braces doubled)."""
    return str(path).replace("{", "{{").replace("}", "}}")


def section(name):
    """A config section as a JSON string, for params: (Snakemake reruns a rule when it changes).

    Returned through a function of the wildcards: Snakemake would read braces in a plain string
    (source.url_template's {year}) as wildcards and refuse the rule.
    """
    text = json.dumps(config.get(name, {}), sort_keys=True)
    return lambda wildcards: text


def experiment_fields(*keys):
    """For params: a function of the wildcards giving the JSON of the named fields of experiments.<name>.

    Each rule names only the fields it uses, so changing another field (n_modes, test_windows) does
    not rerun it. Optional fields that the experiment leaves out are left out.
    """

    def fields(wildcards):
        entry = config["experiments"][wildcards.experiment]
        return json.dumps({key: entry[key] for key in keys if key in entry}, sort_keys=True)

    return fields


def rule_resources(rule_name, key):
    """resources.<rule>.<key>, else resources.default.<key>, else the schema's fallback (precipmodes.config)."""
    return config_rule_resources(config, rule_name, key)


def final_outputs(wildcards):
    """Everything `snakemake` builds by default (target all): each experiment's NetCDF and figures."""
    targets = []
    for name in EXPERIMENTS:
        targets += [f"{RESULTS}/{name}/{output}" for output in ("svd.nc", "nmf.nc", "evaluation.nc")]
        targets += figure_files(
            RESULTS,
            name,
            is_demo(),
            is_rotated(),
            ranked=bool(config["experiments"][name].get("rank_selection")),
            hilbert=is_hilbert(),
        )
        targets += decompose_targets(name)
    return targets


# used by landmask.smk
def gridded_input(wildcards=None):
    """Path of the gridded precip(time, lat, lon) that downstream rules read (see PREPARED_GRID)."""
    return PREPARED_GRID


# used by landmask.smk
def land_mask_inputs(wildcards):
    inputs = {"grid": PREPARED_GRID}
    if MASK_FILES:
        inputs["mask_file"] = MASK_FILES[0]
    return inputs


# used by landmask.smk
def land_mask_totals(wildcards):
    """The partitions of the totals, whose counts of observed steps per cell give the auto and data_nan masks
    (a function of its own: until the checkpoint raw has run it stands for raw.nc, not the grid as well)."""
    return partition_outputs(wildcards) if config["land_mask"]["method"] in FROM_DATA else []


@functools.cache
def _partition_plan(path, stamp):
    return partition_plan(path, config["accumulation"])


# used by preprocess.smk
def partitions():
    """{label: what it reads} of the totals' partitions, planned from the index (or raw.nc), the output of
    the checkpoint raw (read again only when it changed)."""
    path = checkpoints.raw.get().output[0]
    stat = os.stat(path)
    return _partition_plan(path, (stat.st_size, stat.st_mtime_ns))


# used by preprocess.smk and land_mask_inputs
def partition_outputs(wildcards):
    return [f"{PREPARED}/totals/{label}.nc" for label in partitions()]


# used by preprocess.smk
def partition_plan_of(label):
    return partitions().get(label, {})


# used by preprocess.smk
def accumulate_threads(wildcards):
    """resources.accumulate_partition.threads; on one machine, more for the partitions of a last round that
    would leave cores idle (precipmodes.steps.partitions.partition_threads)."""
    labels = list(partitions())
    cores = workflow.resource_settings.cores if workflow.local_exec else None
    return partition_threads(
        labels.index(wildcards.partition), len(labels), rule_resources("accumulate_partition", "threads"), cores
    )


# used by preprocess.smk
def partition_inputs(wildcards):
    """The files a partition reads: those of the index holding its windows (not the index itself, rebuilt
    whenever a file is added: the other partitions keep their totals), else the gridded input."""
    files = partition_plan_of(wildcards.partition).get("files")
    if files is None or PREPARED_GRID != RAW:
        return [PREPARED_GRID]
    return [entry["path"] for entry in files]


# used by decompose.smk
def decompose_targets(experiment):
    """Extra targets of an experiment beyond svd/nmf/evaluation (rank_selection.nc when asked for, hilbert.nc
    when svd.hilbert.n_modes > 0)."""
    targets = []
    if config["experiments"][experiment].get("rank_selection"):
        targets.append(f"{RESULTS}/{experiment}/rank_selection.nc")
    if is_hilbert():
        targets.append(f"{RESULTS}/{experiment}/hilbert.nc")
    return targets


# used by decompose.smk
def evaluate_inputs(wildcards):
    inputs = dict(
        train=f"{RESULTS}/{wildcards.experiment}/train.nc",
        test=f"{RESULTS}/{wildcards.experiment}/test.nc",
        svd=f"{RESULTS}/{wildcards.experiment}/svd.nc",
        nmf=f"{RESULTS}/{wildcards.experiment}/nmf.nc",
        land_mask=LAND_MASK,
    )
    if is_demo():
        inputs["truth"] = DEMO_TRUTH
    return inputs
