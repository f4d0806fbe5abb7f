"""Rule rank_selection: cross-validated reconstruction error over the experiment's list of ranks."""
from precipmodes.decompose import rank_selection_files
from precipmodes.rulescript import rule_run


def main(smk):
    with rule_run(smk) as params:
        rank_selection_files(smk.input.train, smk.input.land_mask, smk.output[0],
                             params["experiment"]["rank_selection"], params["nmf"], smk.wildcards.experiment,
                             config=smk.config)

if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
