# precipmodes: principal patterns of gridded precipitation.
#   snakemake --cores all                      (default config: the offline synthetic demo)
#   snakemake --cores all --configfile my.yaml (your data; see README "Configuration")
from pathlib import Path

from precipmodes.config import layers_origin, validate_config
from precipmodes.errors import ConfigError
from precipmodes.logs import write_timing_table
from precipmodes.netcdf import remove_orphan_sidecars

# Config layers (README "Configuration"): the base is the default demo config when no --configfile is
# given, else the --configfile files merged in order (a user's config replaces the demo's); --config
# key=value layers over that base either way. Snakemake has merged the --configfile files and --config
# into `config` already; the configfile directive loads the default and lays --config over it again.
DEFAULT_CONFIG = f"{workflow.basedir}/config/config.yaml"
if not workflow.overwrite_configfiles:
    configfile: DEFAULT_CONFIG

try:
    _validated = validate_config(config, origin=layers_origin(
        workflow.overwrite_configfiles, workflow.config_settings.config, DEFAULT_CONFIG))
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


# the time each job took (from its log), slowest first, also written to <results_dir>/logs/timings.tsv
onsuccess:
    write_timing_table(f"{config['results_dir']}/logs")


rule all:
    input:
        final_outputs,
    default_target: True
