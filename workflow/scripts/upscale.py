"""Rule upscale: block-mean coarsening of raw.nc by params.upscale factor [lon, lat]."""
from precipmodes.rulescript import rule_run
from precipmodes.upscale import build_upscaled


def main(smk):
    with rule_run(smk) as params:
        build_upscaled(smk.input[0], smk.output[0], params["upscale"]["factor"], config=smk.config)

if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
