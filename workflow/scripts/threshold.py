"""Rule threshold: wet-area fraction of every window and the kept ones."""
from precipmodes.steps.rulescript import rule_run
from precipmodes.steps.threshold import threshold_files


def main(smk):
    with rule_run(smk) as params:
        threshold_files(totals=list(smk.input.totals), grid=smk.input.grid, output=smk.output[0],
                        threshold=params["threshold"], land_mask=params["land_mask"], config=smk.config)

if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
