"""Rule split: land-only (cell, time) train and test matrices of one experiment."""
import json

from precipmodes import logs
from precipmodes.split import split_files


def main(smk):
    logs.configure(smk.log[0])
    split_files(smk.input.totals, smk.input.land_mask, smk.input.selection, smk.wildcards.experiment,
                json.loads(smk.params.experiment), smk.output.train, smk.output.test, config=smk.config,
                coverage=json.loads(smk.params.coverage))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
