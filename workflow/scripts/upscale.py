"""Rule upscale: block-mean coarsening of raw.nc by params.upscale factor [lon, lat]."""
import json

from precipmodes import logs
from precipmodes.upscale import build_upscaled


def main(smk):
    logs.configure(smk.log[0])
    build_upscaled(smk.input[0], smk.output[0], json.loads(smk.params.upscale)["factor"], config=smk.config)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
