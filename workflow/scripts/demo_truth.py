"""Rule demo_truth: the demo's true spatial patterns and seasonal cycles."""
from precipmodes.rulescript import rule_run
from precipmodes.sources.demo import write_truth


def main(smk):
    with rule_run(smk) as params:
        write_truth(params["source"], params["domain"], smk.output[0], config=smk.config)

if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
