"""Rule raw: build the canonical raw dataset from the configured source."""
from precipmodes.io.sources import raw_files
from precipmodes.steps.rulescript import rule_run


def main(smk):
    with rule_run(smk) as params:
        raw_files(source=params["source"], domain=params["domain"], output=smk.output[0], config=smk.config,
                  processes=smk.threads)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
