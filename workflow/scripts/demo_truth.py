"""Rule demo_truth: the demo's true spatial patterns and seasonal cycles."""
import json

from precipmodes import logs
from precipmodes.sources.demo import write_truth


def main(smk):
    logs.configure(smk.log[0])
    write_truth(json.loads(smk.params.source), json.loads(smk.params.domain), smk.output[0], config=smk.config)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
