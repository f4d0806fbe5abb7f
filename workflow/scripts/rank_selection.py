"""Rule rank_selection: cross-validated reconstruction error over the experiment's list of ranks."""
import json

from precipmodes import logs
from precipmodes.decompose import rank_selection_files


def main(smk):
    logs.configure(smk.log[0])
    experiment = json.loads(smk.params.experiment)
    rank_selection_files(smk.input.train, smk.input.land_mask, smk.output[0], experiment["rank_selection"],
                         json.loads(smk.params.nmf), smk.wildcards.experiment, config=smk.config)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
