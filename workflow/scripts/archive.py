"""Rule archive_experiment: archive an experiment's outputs into <archive_dir>/<experiment>/ with a MANIFEST;
its output is the receipt that records the manifest's digest."""
from pathlib import Path

from precipmodes import logs
from precipmodes.io.archive import archive_files
from precipmodes.steps.rulescript import rule_run


def main(smk):
    with rule_run(smk) as params, logs.timed(f"archive {smk.wildcards.experiment}"):
        archive_files(inputs=list(smk.input), archive_dir=params["archive_dir"], receipt=smk.output.receipt,
                      name=smk.wildcards.experiment, config=smk.config, repo=Path(smk.scriptdir).parents[1])

if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake)
