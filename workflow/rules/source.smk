# Raw data: one canonical dataset precip(time, lat, lon), the amount per source step; for the files read in
# place (source.kind files, http downloads) an index of them (its coordinates, no precip): see
# precipmodes.io.sources.index. A checkpoint: the partitions of the totals are planned from it.
#   downloads: <source.http.cache_dir>/<file name>  one download job per remote file (kind http)

checkpoint raw:
    input:
        lambda wildcards: SOURCE_INPUTS + list(DOWNLOADS),
    output:
        RAW,
    params:
        source=source_param,
        domain=section("domain"),
        inputs=fingerprint_param(SOURCE_INPUTS),  # a replaced input reruns raw even with an older mtime
    log:
        f"{LOGS}/raw.log",
    threads: rule_resources("raw", "threads")
    resources:
        mem_mb=rule_resources("raw", "mem_mb"),
        runtime=rule_resources("raw", "runtime"),
    conda:
        "../../envs/core.yaml"
    script:
        "../scripts/raw.py"


# Downloads run where Snakemake runs (compute nodes are often offline); raw reads the cached files.
# localrule: True (not a localrules list) also holds when the workflow is used as a module (snakemake#2061).
rule download:
    localrule: True
    output:
        f"{literal(DOWNLOAD_DIR)}/{{name}}",
    params:
        url=lambda wildcards: json.dumps(DOWNLOAD_URLS[wildcards.name]),
        checksum=lambda wildcards: json.dumps(SOURCE["checksums"].get(wildcards.name)),
    wildcard_constraints:
        # only the files of DOWNLOADS (none unless source.kind is http)
        name="|".join(map(re.escape, DOWNLOAD_URLS)) or "(?!)",
    log:
        f"{LOGS}/download/{{name}}.log",
    threads: rule_resources("download", "threads")
    resources:
        mem_mb=rule_resources("download", "mem_mb"),
        runtime=rule_resources("download", "runtime"),
    conda:
        "../../envs/core.yaml"
    script:
        "../scripts/download.py"


rule demo_truth:
    output:
        DEMO_TRUTH,
    params:
        source=source_param,
        domain=section("domain"),
    log:
        f"{LOGS}/demo_truth.log",
    threads: rule_resources("demo_truth", "threads")
    resources:
        mem_mb=rule_resources("demo_truth", "mem_mb"),
        runtime=rule_resources("demo_truth", "runtime"),
    conda:
        "../../envs/core.yaml"
    script:
        "../scripts/demo_truth.py"


if MISSING_INPUTS:

    # "Makes" each missing input by failing with a message that names it and its config key.
    rule missing_input:
        localrule: True
        output:
            [literal(path) for path in MISSING_INPUTS],
        run:
            raise InputDataError(missing_message(MISSING_INPUTS))
