# precipmodes: principal patterns of gridded precipitation.
#   snakemake --cores all                      (default config: the offline synthetic demo)
#   snakemake --cores all --configfile my.yaml (your data; see docs/configuration.md)
from snakemake.logging import logger
from snakemake.utils import min_version

from precipmodes.config import layers_origin, refuse_unsafe_folders, validate_config
from precipmodes.errors import ConfigError
from precipmodes.steps.runhooks import RunHooks
from precipmodes.io.runlock import RunLockError

min_version("9.0")

# Config layers (docs/configuration.md): the base is the default demo config when no --configfile is
# given, else the --configfile files merged in order (a user's config replaces the demo's); --config
# key=value layers over that base either way. Snakemake has merged the --configfile files and --config
# into `config` already; the configfile directive loads the default and lays --config over it again.
DEFAULT_CONFIG = f"{workflow.current_basedir}/config/config.yaml"
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


# The run lock, the clean-up of what killed writes left, the timing table (precipmodes.steps.runhooks). A Snakefile
# that uses this workflow as a module registers the same hooks itself (docs/hpc.md, "Use as a module").
RUN_HOOKS = RunHooks(config, warn=logger.warning)
if workflow.is_main_process:
    RUN_HOOKS.prepare()


onstart:
    try:
        RUN_HOOKS.start()
    except RunLockError as error:
        raise WorkflowError(str(error)) from None


onerror:
    RUN_HOOKS.error()


onsuccess:
    RUN_HOOKS.success()


rule all:
    default_target: True
    input:
        final_outputs,
