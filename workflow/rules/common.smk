# Paths and helpers shared by every rule file. All outputs live under results/:
#   results/prepared/...        shared preparation (raw data, land mask, totals, selection)
#   results/<experiment>/...    per experiment (split, svd.nc, nmf.nc, evaluation.nc, figures/)
import json

from precipmodes.sources import source_input_paths

PREPARED = "results/prepared"
LOGS = "results/logs"
RAW = f"{PREPARED}/raw.nc"
DEMO_TRUTH = f"{PREPARED}/demo_truth.nc"
EXPERIMENT_DIR = "results/{experiment}"
EXPERIMENTS = sorted(config["experiments"])

wildcard_constraints:
    experiment="|".join(EXPERIMENTS) if EXPERIMENTS else "[A-Za-z0-9_-]+",


def is_demo():
    return config["source"]["kind"] == "demo"


def section(name):
    """A config section as a JSON string, for params: (Snakemake reruns a rule when it changes)."""
    return json.dumps(config.get(name, {}), sort_keys=True)


def experiment_config(wildcards):
    return json.dumps(config["experiments"][wildcards.experiment], sort_keys=True)


def rule_resources(rule_name, key, fallback):
    """resources.<rule>.<key>, else resources.default.<key>, else ``fallback``."""
    table = config.get("resources", {})
    return table.get(rule_name, {}).get(key, table.get("default", {}).get(key, fallback))


def final_outputs(wildcards):
    """Everything `snakemake` (rule all) builds: each experiment's NetCDF and figures."""
    targets = []
    for name in EXPERIMENTS:
        targets += [f"results/{name}/svd.nc", f"results/{name}/nmf.nc", f"results/{name}/evaluation.nc"]
        targets += figure_targets(name)
    return targets
