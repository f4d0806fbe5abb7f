"""Rule accumulate: window totals (accumulation.hours) of the gridded raw data."""
import json

from precipmodes import logs
from precipmodes.accumulate import accumulate_file


def main(smk):
    logs.configure(smk.log[0])
    accumulate_file(smk.input[0], smk.output[0], json.loads(smk.params.accumulation), config=smk.config)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
