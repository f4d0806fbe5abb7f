"""Rule download: one remote file of source.kind http into source.http.cache_dir (resumed, verified)."""
from precipmodes.io.sources.http import download_files
from precipmodes.steps.rulescript import rule_run


def main(smk):
    with rule_run(smk) as params:
        # http from the config, not params: retries or timeouts changing refetch nothing
        download_files(url=params["url"], output=smk.output[0], http=smk.config["source"]["http"],
                       checksum=params["checksum"])


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
