"""Rule accumulate_partition: window totals (accumulation.hours) of one partition of the gridded input."""
from precipmodes.steps import parallel
from precipmodes.steps.accumulate import accumulate_files
from precipmodes.steps.rulescript import rule_run


def main(smk):
    with rule_run(smk) as params:
        # the dask section only says where blocks run, not what they hold: read from config, not params,
        # so moving to another cluster does not rerun the accumulation
        dask_config = smk.config["dask"]
        with parallel.dask_cluster(dask_config, smk.threads, smk.resources.mem_mb):
            # on dask's threaded scheduler, the rule's threads read in as many processes (HDF5 reads one
            # chunk at a time per process) and the values are checked on the blocks summed; a dask
            # cluster reads in its own workers, after a checking pass
            threaded = parallel.cluster_mode(dask_config) == "threads"
            accumulate_files(input_path=params["grid"], output_path=smk.output[0],
                             accumulation=params["accumulation"], plausibility=params["plausibility"],
                             config=smk.config, processes=smk.threads if threaded else 1,
                             partition=smk.wildcards.partition, check_while_summing=threaded,
                             months=params["partition"].get("months"))

if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
