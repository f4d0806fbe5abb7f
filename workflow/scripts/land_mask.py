"""Rule land_mask: land_fraction and land on the prepared grid (method from params.land_mask)."""
from precipmodes.steps.landmask import land_mask_files
from precipmodes.steps.rulescript import rule_run


def main(smk):
    with rule_run(smk) as params:
        land_mask_files(grid=smk.input.grid, output=smk.output[0], land_mask=params["land_mask"], config=smk.config,
                        totals=list(smk.input.get("totals", [])) or None)

if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
