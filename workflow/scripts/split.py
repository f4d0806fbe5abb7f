"""Rule split: land-only (cell, time) train and test matrices of one experiment."""
from precipmodes.steps.rulescript import rule_run
from precipmodes.steps.split import split_files


def main(smk):
    with rule_run(smk) as params:
        split_files(totals=list(smk.input.totals), land_mask=smk.input.land_mask, selection=smk.input.selection,
                    train=smk.output.train, test=smk.output.test, name=smk.wildcards.experiment,
                    experiment=params["experiment"], coverage=params["coverage"], config=smk.config)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
