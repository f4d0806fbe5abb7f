# Raw data: one canonical dataset precip(time, lat, lon), the amount per source step.


rule raw:
    input:
        lambda wildcards: source_input_paths(config["source"]),
    output:
        RAW,
    params:
        source=section("source"),
        domain=section("domain"),
    log:
        f"{LOGS}/raw.log",
    threads: rule_resources("raw", "threads", 1)
    resources:
        mem_mb=rule_resources("raw", "mem_mb", 4000),
        runtime=rule_resources("raw", "runtime", 60),
    conda:
        "../../envs/core.yaml"
    script:
        "../scripts/raw.py"


rule demo_truth:
    output:
        DEMO_TRUTH,
    params:
        source=section("source"),
        domain=section("domain"),
    log:
        f"{LOGS}/demo_truth.log",
    threads: rule_resources("demo_truth", "threads", 1)
    resources:
        mem_mb=rule_resources("demo_truth", "mem_mb", 1000),
        runtime=rule_resources("demo_truth", "runtime", 10),
    conda:
        "../../envs/core.yaml"
    script:
        "../scripts/demo_truth.py"
