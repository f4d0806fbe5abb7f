# precipmodes: principal patterns of gridded precipitation.
#   snakemake --cores all                      (default config: the offline synthetic demo)
#   snakemake --cores all --configfile my.yaml (your data; see README "Configuration")
from pathlib import Path

from precipmodes.config import validate_config
from precipmodes.errors import ConfigError
from precipmodes.netcdf import remove_orphan_sidecars

if not config:  # no --configfile / --config given: the default, offline demo
    configfile: f"{workflow.basedir}/config/config.yaml"

try:
    _validated = validate_config(config, origin="config (--configfile / config/config.yaml)")
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


# provenance sidecars (<file>.nc.json) of outputs that a failed or rerun job removed
onstart:
    remove_orphan_sidecars(config["results_dir"])


onerror:
    remove_orphan_sidecars(config["results_dir"])


rule all:
    input:
        final_outputs,
    default_target: True
