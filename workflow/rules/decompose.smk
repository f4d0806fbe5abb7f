# Decomposition (issue 4): SVD modes, NMF components, test-period evaluation, optional rank choice.
#   results/<experiment>/svd.nc             spatial_modes(mode, lat, lon), singular values, North errors, ...
#   results/<experiment>/hilbert.nc         only when svd.hilbert.n_modes > 0: complex (Hilbert) SVD modes
#   results/<experiment>/nmf.nc             basis(component, lat, lon), activations(component, time), ...
#   results/<experiment>/evaluation.nc      test projections, reconstructions, RMSE, pattern correlation
#   results/<experiment>/rank_selection.nc  only when experiments.<name>.rank_selection is non-empty
# The matrices are loaded into memory when they take at most a third of the rule's mem_mb,
# else streamed from train.nc in dask chunks of <section>.cell_chunk cells.
# dask (where the blocks run, not what they hold) is read from the config by the scripts, as in
# accumulate, so moving to another cluster reruns nothing.
DECOMPOSE_PARAMS = dict(experiment=experiment_fields("n_modes"))


rule svd:
    input:
        train=f"{EXPERIMENT_DIR}/train.nc",
        land_mask=LAND_MASK,
    output:
        f"{EXPERIMENT_DIR}/svd.nc",
    log:
        f"{LOGS}/svd_{{experiment}}.log",
    conda:
        "../../envs/core.yaml"
    threads: rule_resources("svd", "threads")
    resources:
        mem_mb=rule_resources("svd", "mem_mb"),
        runtime=rule_resources("svd", "runtime"),
    params:
        **DECOMPOSE_PARAMS,
        svd=section("svd"),
    script:
        "../scripts/decompose.py"


rule hilbert:
    input:
        train=f"{EXPERIMENT_DIR}/train.nc",
        land_mask=LAND_MASK,
    output:
        f"{EXPERIMENT_DIR}/hilbert.nc",
    log:
        f"{LOGS}/hilbert_{{experiment}}.log",
    conda:
        "../../envs/core.yaml"
    threads: rule_resources("hilbert", "threads")
    resources:
        mem_mb=rule_resources("hilbert", "mem_mb"),
        runtime=rule_resources("hilbert", "runtime"),
    params:
        **DECOMPOSE_PARAMS,
        svd=section("svd"),
    script:
        "../scripts/decompose.py"


rule nmf:
    input:
        train=f"{EXPERIMENT_DIR}/train.nc",
        land_mask=LAND_MASK,
    output:
        f"{EXPERIMENT_DIR}/nmf.nc",
    log:
        f"{LOGS}/nmf_{{experiment}}.log",
    conda:
        "../../envs/core.yaml"
    threads: rule_resources("nmf", "threads")
    resources:
        mem_mb=rule_resources("nmf", "mem_mb"),
        runtime=rule_resources("nmf", "runtime"),
    params:
        **DECOMPOSE_PARAMS,
        nmf=section("nmf"),
    script:
        "../scripts/decompose.py"


rule evaluate:
    input:
        unpack(evaluate_inputs),
    output:
        f"{EXPERIMENT_DIR}/evaluation.nc",
    log:
        f"{LOGS}/evaluate_{{experiment}}.log",
    conda:
        "../../envs/core.yaml"
    threads: rule_resources("evaluate", "threads")
    resources:
        mem_mb=rule_resources("evaluate", "mem_mb"),
        runtime=rule_resources("evaluate", "runtime"),
    params:
        evaluation=section("evaluation"),
    script:
        "../scripts/evaluate.py"


rule rank_selection:
    input:
        train=f"{EXPERIMENT_DIR}/train.nc",
        land_mask=LAND_MASK,
    output:
        f"{EXPERIMENT_DIR}/rank_selection.nc",
    log:
        f"{LOGS}/rank_selection_{{experiment}}.log",
    conda:
        "../../envs/core.yaml"
    threads: rule_resources("rank_selection", "threads")
    resources:
        mem_mb=rule_resources("rank_selection", "mem_mb"),
        runtime=rule_resources("rank_selection", "runtime"),
    params:
        nmf=section("nmf"),
        experiment=experiment_fields("rank_selection"),
    script:
        "../scripts/rank_selection.py"
