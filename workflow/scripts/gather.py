"""Rule accumulate: the partitions' window totals gathered into totals.nc."""
from precipmodes.steps.accumulate import gather_totals
from precipmodes.steps.rulescript import rule_run


def main(smk):
    with rule_run(smk) as params:
        gather_totals(parts=list(smk.input.parts), output_path=smk.output[0], accumulation=params["accumulation"],
                      config=smk.config)

if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
