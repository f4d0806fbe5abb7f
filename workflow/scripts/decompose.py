"""Rules svd, hilbert and nmf: SVD modes / Hilbert modes / NMF components of an experiment's training matrix
(the rule's name picks which)."""
from precipmodes.steps import parallel
from precipmodes.steps.decompose import hilbert_files, nmf_files, svd_files
from precipmodes.steps.rulescript import rule_run, workflow_rule

FITS = {"svd": svd_files, "hilbert": hilbert_files, "nmf": nmf_files}
SECTIONS = {"hilbert": "svd"}  # config section of a rule not named after its section


def main(smk):
    with rule_run(smk) as params:
        rule = workflow_rule(smk, FITS)
        section = SECTIONS.get(rule, rule)
        # dask says where the blocks run, not what they hold: from the config, not params (no rerun)
        with parallel.dask_cluster(smk.config["dask"], smk.threads, smk.resources.mem_mb):
            FITS[rule](train=smk.input.train, land_mask=smk.input.land_mask, output=smk.output[0],
                       **{section: params[section]}, name=smk.wildcards.experiment,
                       experiment=params["experiment"], config=smk.config,
                       max_in_memory_mb=smk.resources.mem_mb / 3)

if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
