"""Rule raw: build the canonical raw dataset from the configured source."""
import json

from precipmodes import logs
from precipmodes.sources import build_raw


def main(smk):
    logs.configure(smk.log[0])
    build_raw(json.loads(smk.params.source), json.loads(smk.params.domain), smk.output[0], config=smk.config)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
