"""Rule evaluate: project the test windows on the training modes and score the reconstructions."""
from precipmodes.decompose import evaluate_files
from precipmodes.rulescript import rule_run


def main(smk):
    with rule_run(smk) as params:
        evaluate_files(smk.input.train, smk.input.test, smk.input.svd, smk.input.nmf, smk.input.land_mask,
                       smk.output[0], params["evaluation"], smk.wildcards.experiment,
                       truth_path=smk.input.get("truth"), config=smk.config)

if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
