"""Rule threshold: wet-area fraction of every window and the kept ones."""
import json

from precipmodes import logs
from precipmodes.threshold import threshold_file


def main(smk):
    logs.configure(smk.log[0])
    threshold_file(smk.input.totals, smk.input.land_mask, smk.output[0], json.loads(smk.params.threshold),
                   config=smk.config)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
