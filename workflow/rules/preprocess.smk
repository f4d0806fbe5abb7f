# Preprocessing: window totals -> wet-area threshold -> per-experiment train/test matrices.
# accumulate_partition and threshold depend only on the data sections of the config (source, domain,
# land_mask, upscale, accumulation, threshold); split reads one experiment's entry through
# experiment_fields (its periods and months) and the coverage section, so changing or adding an experiment
# reruns only split and what follows.
SELECTION = f"{PREPARED}/selection.nc"


# One job per partition of the windows (accumulation.partition_months), each reading only the files that
# hold its windows: run side by side (--cores N) or as separate cluster jobs; a new or changed file reruns
# only the partitions it touches (the index's fingerprints of their files are in params). land_mask,
# threshold and split read the partitions' files (precipmodes.steps.totals): no gathered copy.
rule accumulate_partition:
    input:
        partition_inputs,
    output:
        f"{PREPARED}/totals/{{partition}}.nc",
    params:
        accumulation=section("accumulation"),
        plausibility=lambda wildcards: json.dumps(plausibility(SOURCE), sort_keys=True),
        partition=lambda wildcards: json.dumps(partition_plan_of(wildcards.partition), sort_keys=True),
        reading=lambda wildcards: json.dumps({"source": SOURCE, "domain": config["domain"]}, sort_keys=True),
        grid=lambda wildcards: json.dumps(PREPARED_GRID),
        inputs=lambda wildcards: json.dumps(fingerprint(partition_inputs(wildcards))),  # a replaced file reruns it
    wildcard_constraints:
        partition=r"\d{4}-\d{2}|all",
    log:
        f"{LOGS}/accumulate_partition/{{partition}}.log",
    threads: accumulate_threads
    resources:
        mem_mb=rule_resources("accumulate_partition", "mem_mb"),
        runtime=rule_resources("accumulate_partition", "runtime"),
    conda:
        "../../envs/core.yaml"
    script:
        "../scripts/accumulate.py"


# threshold makes the land cells from the grid (and, for the methods taking the land from the data, the
# partitions' counts) as land_mask does, rather than waiting for land_mask.nc: the two run side by side.
rule threshold:
    input:
        unpack(land_mask_inputs),
        totals=partition_outputs,
    output:
        SELECTION,
    params:
        threshold=section("threshold"),
        land_mask=section("land_mask"),
        mask_file=fingerprint_param(MASK_FILES),  # a replaced mask file reruns threshold
    log:
        f"{LOGS}/threshold.log",
    threads: rule_resources("threshold", "threads")
    resources:
        mem_mb=rule_resources("threshold", "mem_mb"),
        runtime=rule_resources("threshold", "runtime"),
    conda:
        "../../envs/core.yaml"
    script:
        "../scripts/threshold.py"


rule split:
    input:
        totals=partition_outputs,
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
    threads: rule_resources("split", "threads")
    resources:
        mem_mb=rule_resources("split", "mem_mb"),
        runtime=rule_resources("split", "runtime"),
    conda:
        "../../envs/core.yaml"
    script:
        "../scripts/split.py"
