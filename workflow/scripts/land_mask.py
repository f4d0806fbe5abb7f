"""Rule land_mask: land_fraction and land on the prepared grid (method from params.land_mask)."""
import json

from precipmodes import logs
from precipmodes.landmask import build_land_mask


def main(smk):
    logs.configure(smk.log[0])
    build_land_mask(smk.input.grid, smk.output[0], json.loads(smk.params.land_mask), config=smk.config)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
