"""Rule evaluate: project the test windows on the training modes and score the reconstructions."""
from precipmodes.steps.decompose import evaluate_files
from precipmodes.steps.rulescript import rule_run


def main(smk):
    with rule_run(smk) as params:
        evaluate_files(train=smk.input.train, test=smk.input.test, svd=smk.input.svd, nmf=smk.input.nmf,
                       land_mask=smk.input.land_mask, output=smk.output[0], evaluation=params["evaluation"],
                       name=smk.wildcards.experiment, truth=smk.input.get("truth"), config=smk.config)

if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
