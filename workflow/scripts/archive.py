"""Rule archive_experiment: copy an experiment's outputs into <archive_dir>/<experiment>/ with a MANIFEST."""
from pathlib import Path

from precipmodes import logs
from precipmodes.archive import archive_files
from precipmodes.rulescript import rule_run


def main(smk):
    with rule_run(smk), logs.timed(f"archive {smk.wildcards.experiment}"):
        archive_files(inputs=list(smk.input), archive_dir=Path(smk.output.manifest).parent,
                      name=smk.wildcards.experiment, config=smk.config, repo=Path(smk.scriptdir).parents[1])

if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
