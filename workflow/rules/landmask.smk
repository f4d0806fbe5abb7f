# Land mask and optional upscaling (issue 3). Included before preprocess.smk.
#   results/prepared/upscaled.nc   block means of raw.nc (only when upscale.enabled)
#   results/prepared/land_mask.nc  land_fraction(lat, lon), land(lat, lon) on the prepared grid
UPSCALED = f"{PREPARED}/upscaled.nc"
LAND_MASK = f"{PREPARED}/land_mask.nc"
# The gridded dataset every downstream stage reads: upscaled.nc when upscale.enabled, else raw.nc.
PREPARED_GRID = UPSCALED if config["upscale"]["enabled"] else RAW


rule upscale:
    input:
        RAW,
    output:
        UPSCALED,
    params:
        upscale=section("upscale"),
    log:
        f"{LOGS}/upscale.log",
    threads: rule_resources("upscale", "threads")
    resources:
        mem_mb=rule_resources("upscale", "mem_mb"),
        runtime=rule_resources("upscale", "runtime"),
    conda:
        "../../envs/core.yaml"
    script:
        "../scripts/upscale.py"


rule land_mask:
    input:
        unpack(land_mask_inputs),
        totals=land_mask_totals,
    output:
        LAND_MASK,
    params:
        land_mask=section("land_mask"),
        mask_file=fingerprint_param(MASK_FILES),  # a replaced mask file reruns land_mask
    log:
        f"{LOGS}/land_mask.log",
    threads: rule_resources("land_mask", "threads")
    resources:
        mem_mb=rule_resources("land_mask", "mem_mb"),
        runtime=rule_resources("land_mask", "runtime"),
    conda:
        "../../envs/core.yaml"
    script:
        "../scripts/land_mask.py"
