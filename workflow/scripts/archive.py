"""Rule archive_experiment: copy an experiment's NetCDF outputs into archive/<experiment>/ with a MANIFEST."""
from pathlib import Path

from precipmodes import logs
from precipmodes.archive import archive_experiment


def main(smk):
    logs.configure(smk.log[0])
    with logs.timed(f"archive {smk.wildcards.experiment}"):
        archive_experiment(list(smk.input), Path(smk.output.manifest).parent, experiment=smk.wildcards.experiment,
                           config=smk.config, repo=Path(smk.scriptdir).parents[1])


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
