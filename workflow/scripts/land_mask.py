"""Rule land_mask: land_fraction and land on the prepared grid (method from params.land_mask)."""
from precipmodes.landmask import build_land_mask
from precipmodes.rulescript import rule_run


def main(smk):
    with rule_run(smk) as params:
        build_land_mask(smk.input.grid, smk.output[0], params["land_mask"], config=smk.config)

if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
