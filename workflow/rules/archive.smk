# Archive: each experiment's NetCDF outputs re-encoded, its figures and summary.json, with a verifiable
# MANIFEST.json. The report goes beside them: snakemake --report <archive_dir>/report.html
#   snakemake archive --cores 1   (all experiments -> <archive_dir>/<experiment>; then: precipmodes verify DIR)
# The rule's output is a receipt under results_dir, not the archive's files: Snakemake deletes a job's
# outputs before it runs it, and the previous archive must stay until the new one is built, verified and
# swapped in (precipmodes.io.archive.archive_files). A receipt whose archive was deleted or changed since is
# dropped here, so that `snakemake archive` archives that experiment again.
from precipmodes.io.archive import drop_stale_receipt

ARCHIVE_ROOT = FOLDERS["archive"]
ARCHIVE_DIR = f"{ARCHIVE_ROOT}/{{experiment}}"
ARCHIVE_RECEIPT = f"{RESULTS}/archived/{{experiment}}.json"
ARCHIVE_EXPERIMENT_FILES = ["svd.nc", "nmf.nc", "evaluation.nc", "train.nc", "test.nc"] + (
    ["hilbert.nc"] if is_hilbert() else []
)
ARCHIVE_PREPARED_FILES = ["land_mask.nc", "selection.nc"]
# the experiment's PNGs (figures/ in the archive) and summary.json, as figure_files lists them (rank_choice.png,
# like rank_selection.nc, is not archived: only some experiments have it)
ARCHIVE_FIGURE_FILES = experiment_figure_names(is_demo(), is_rotated(), hilbert=is_hilbert())

for _experiment in EXPERIMENTS:
    drop_stale_receipt(ARCHIVE_RECEIPT.format(experiment=_experiment), ARCHIVE_DIR.format(experiment=_experiment))


rule archive_experiment:
    input:
        [f"{EXPERIMENT_DIR}/{name}" for name in ARCHIVE_EXPERIMENT_FILES + ARCHIVE_FIGURE_FILES]
        + [f"{PREPARED}/{name}" for name in ARCHIVE_PREPARED_FILES],
    output:
        receipt=ARCHIVE_RECEIPT,
    log:
        f"{LOGS}/archive_experiment/{{experiment}}.log",
    conda:
        "../../envs/core.yaml"
    threads: rule_resources("archive_experiment", "threads")
    resources:
        mem_mb=rule_resources("archive_experiment", "mem_mb"),
        runtime=rule_resources("archive_experiment", "runtime"),
    params:
        archive_dir=json.dumps(ARCHIVE_DIR),  # the experiment's folder, once Snakemake fills in {experiment}
    message:
        f"archive experiment {{wildcards.experiment}}: {ARCHIVE_ROOT}/{{wildcards.experiment}}/MANIFEST.json "
        "and the files it lists (built beside, verified, then swapped in)"
    script:
        "../scripts/archive.py"


rule archive:
    input:
        expand(ARCHIVE_RECEIPT, experiment=EXPERIMENTS),
