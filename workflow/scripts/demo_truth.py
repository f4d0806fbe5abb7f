"""Rule demo_truth: the demo's true spatial patterns and seasonal cycles."""
from precipmodes.io.sources.demo import demo_truth_files
from precipmodes.steps.rulescript import rule_run


def main(smk):
    with rule_run(smk) as params:
        demo_truth_files(source=params["source"], domain=params["domain"], output=smk.output[0], config=smk.config)

if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
