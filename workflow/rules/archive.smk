# Archive: each experiment's NetCDF outputs re-encoded, its figures and summary.json, with a verifiable
# MANIFEST.json. The report goes beside them: snakemake --report <archive_dir>/report.html
#   snakemake archive --cores 1   (all experiments -> <archive_dir>/<experiment>; then: precipmodes verify DIR)
ARCHIVE_DIR = f"{config['archive_dir'].rstrip('/')}/{{experiment}}"
ARCHIVE_EXPERIMENT_FILES = ["svd.nc", "nmf.nc", "evaluation.nc", "train.nc", "test.nc"]
ARCHIVE_PREPARED_FILES = ["land_mask.nc", "selection.nc"]
# the experiment's PNGs (figures/ in the archive) and summary.json, as figure_files lists them
ARCHIVE_FIGURE_FILES = experiment_figure_names(is_demo())


rule archive_experiment:
    input:
        [f"{EXPERIMENT_DIR}/{name}" for name in ARCHIVE_EXPERIMENT_FILES + ARCHIVE_FIGURE_FILES]
        + [f"{PREPARED}/{name}" for name in ARCHIVE_PREPARED_FILES],
    output:
        manifest=f"{ARCHIVE_DIR}/MANIFEST.json",
        files=[f"{ARCHIVE_DIR}/{name}" for name in ARCHIVE_EXPERIMENT_FILES + ARCHIVE_PREPARED_FILES
               + ARCHIVE_FIGURE_FILES],
    log:
        f"{LOGS}/archive_experiment/{{experiment}}.log",
    threads: rule_resources("archive_experiment", "threads", 1)
    resources:
        mem_mb=rule_resources("archive_experiment", "mem_mb", 4000),
        runtime=rule_resources("archive_experiment", "runtime", 60),
    conda:
        "../../envs/core.yaml"
    script:
        "../scripts/archive.py"


rule archive:
    input:
        expand(f"{ARCHIVE_DIR}/MANIFEST.json", experiment=EXPERIMENTS),
