"""Rule split: land-only (cell, time) train and test matrices of one experiment."""
from precipmodes.rulescript import rule_run
from precipmodes.split import split_files


def main(smk):
    with rule_run(smk) as params:
        split_files(smk.input.totals, smk.input.land_mask, smk.input.selection, smk.wildcards.experiment,
                    params["experiment"], smk.output.train, smk.output.test, config=smk.config,
                    coverage=params["coverage"])


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
