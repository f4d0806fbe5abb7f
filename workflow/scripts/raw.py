"""Rule raw: build the canonical raw dataset from the configured source."""
from precipmodes.rulescript import rule_run
from precipmodes.sources import build_raw


def main(smk):
    with rule_run(smk) as params:
        build_raw(params["source"], params["domain"], smk.output[0], config=smk.config)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
