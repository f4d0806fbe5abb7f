"""Rule nmf: NMF components of an experiment's training matrix."""
import json

from precipmodes import logs, parallel
from precipmodes.decompose import nmf_files


def main(smk):
    logs.configure(smk.log[0])
    with parallel.dask_cluster(smk.config["dask"], smk.threads, smk.resources.mem_mb):
        nmf_files(smk.input.train, smk.input.land_mask, smk.output[0], json.loads(smk.params.nmf),
                  smk.wildcards.experiment, json.loads(smk.params.experiment), config=smk.config,
                  max_in_memory_mb=smk.resources.mem_mb / 3)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
