"""Rule rank_selection: cross-validated reconstruction error over the experiment's list of ranks."""
from precipmodes.steps.decompose import rank_selection_files
from precipmodes.steps.rulescript import rule_run


def main(smk):
    with rule_run(smk) as params:
        rank_selection_files(train=smk.input.train, land_mask=smk.input.land_mask, output=smk.output[0],
                             nmf=params["nmf"], name=smk.wildcards.experiment, experiment=params["experiment"],
                             config=smk.config)

if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
