"""Rule upscale: block-mean coarsening of raw.nc by params.upscale factor [lon, lat]."""
from precipmodes.steps.rulescript import rule_run
from precipmodes.steps.upscale import upscale_files


def main(smk):
    with rule_run(smk) as params:
        upscale_files(raw=smk.input[0], output=smk.output[0], upscale=params["upscale"], config=smk.config)

if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
