"""Rule download: one remote file of source.kind http into source.http.cache_dir (resumed, verified)."""
from pathlib import Path

from precipmodes.rulescript import rule_run
from precipmodes.sources.http import download


def main(smk):
    with rule_run(smk) as params:
        options = smk.config["source"]["http"]  # not params: retries or timeouts changing refetch nothing
        download(params["url"], Path(smk.output[0]).parent, checksum=params["checksum"],
                 retries=options["retries"], timeout=options["timeout_s"], backoff=options["backoff_s"])


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
