"""Rule threshold: wet-area fraction of every window and the kept ones."""
from precipmodes.rulescript import rule_run
from precipmodes.threshold import threshold_file


def main(smk):
    with rule_run(smk) as params:
        threshold_file(smk.input.totals, smk.input.land_mask, smk.output[0], params["threshold"], config=smk.config)

if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
