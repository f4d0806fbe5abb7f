# Preprocessing: window totals -> wet-area threshold -> per-experiment train/test matrices.
# accumulate and threshold depend only on the data sections of the config (source, domain,
# land_mask, upscale, accumulation, threshold); split reads one experiment's entry through
# experiment_fields (its periods and months) and the coverage section, so changing or adding an experiment
# reruns only split and what follows.
TOTALS = f"{PREPARED}/totals.nc"
SELECTION = f"{PREPARED}/selection.nc"


rule accumulate:
    input:
        gridded_input,
    output:
        TOTALS,
    params:
        accumulation=section("accumulation"),
        plausibility=lambda wildcards: json.dumps(plausibility(SOURCE), sort_keys=True),
    log:
        f"{LOGS}/accumulate.log",
    threads: rule_resources("accumulate", "threads", 2)
    resources:
        mem_mb=rule_resources("accumulate", "mem_mb", 4000),
        runtime=rule_resources("accumulate", "runtime", 120),
    conda:
        "../../envs/core.yaml"
    script:
        "../scripts/accumulate.py"


rule threshold:
    input:
        totals=TOTALS,
        land_mask=LAND_MASK,
    output:
        SELECTION,
    params:
        threshold=section("threshold"),
    log:
        f"{LOGS}/threshold.log",
    threads: rule_resources("threshold", "threads", 2)
    resources:
        mem_mb=rule_resources("threshold", "mem_mb", 2000),
        runtime=rule_resources("threshold", "runtime", 30),
    conda:
        "../../envs/core.yaml"
    script:
        "../scripts/threshold.py"


rule split:
    input:
        totals=TOTALS,
        land_mask=LAND_MASK,
        selection=SELECTION,
    output:
        train=f"{EXPERIMENT_DIR}/train.nc",
        test=f"{EXPERIMENT_DIR}/test.nc",
    params:
        experiment=experiment_fields("train", "test", "months"),
        coverage=section("coverage"),
    log:
        f"{LOGS}/split_{{experiment}}.log",
    threads: rule_resources("split", "threads", 2)
    resources:
        mem_mb=rule_resources("split", "mem_mb", 4000),
        runtime=rule_resources("split", "runtime", 30),
    conda:
        "../../envs/core.yaml"
    script:
        "../scripts/split.py"
