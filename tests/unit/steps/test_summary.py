"""`precipmodes summary RESULTS_DIR` and the end of a run: the experiments of a results folder with their key
numbers, which are complete, and a timing table of this run's jobs only. Real snakemake runs of the tiny demo."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from precipmodes import cli
from helpers.reliability import TWO_EXPERIMENTS, output_text, snakemake, with_threads

pytestmark = pytest.mark.workflow


def timing_rows(workdir) -> list[list[str]]:
    lines = (workdir / "results" / "logs" / "timings.tsv").read_text().splitlines()
    return [line.split("\t") for line in lines[1:]]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """e1 finished and e2 half-way (first run), then everything (second run): the outputs of both runs."""
    workdir = tmp_path_factory.mktemp("summary")
    config = with_threads(1, TWO_EXPERIMENTS)
    first = snakemake(workdir, config, ["results/e1/summary.json", "results/e2/svd.nc"], cores=2)
    first_rows = timing_rows(workdir)
    half = subprocess.run([sys.executable, "-m", "precipmodes.cli", "summary", str(workdir / "results")],
                          capture_output=True, text=True, timeout=120)
    second = snakemake(workdir, config, [], cores=2)
    return workdir, output_text(first), first_rows, half, output_text(second)


def test_end_of_a_half_run_says_which_experiment_is_complete(two_runs):
    workdir, first, rows, _, _ = two_runs
    assert "1 of 2 experiment(s) complete (e1)" in first
    assert "e2: incomplete: has train.nc, test.nc, svd.nc; missing nmf.nc, evaluation.nc, summary.json" in first
    rules = {row[0] for row in rows}
    assert {"raw", "accumulate_partition", "split", "svd", "nmf", "evaluate", "figures_summary"} <= rules, rules


def test_timing_table_counts_only_this_runs_jobs(two_runs):
    workdir, _, _, _, second = two_runs
    rows = timing_rows(workdir)
    rules = [row[0] for row in rows]
    # the second run made e2's NMF, evaluation and figures and e1's figures; the data preparation, e1's and
    # e2's SVD were made by the first run and are not counted again
    assert {"raw", "accumulate_partition", "threshold", "split", "svd"}.isdisjoint(rules), rules
    assert "nmf" in rules and "evaluate" in rules and all("e1" not in row[1] or "figures" in row[1] for row in rows)
    assert f"time per job of this run ({len(rows)} jobs" in second


def test_archive_run_tables_only_its_own_jobs_and_names_the_archive(two_runs):
    """`snakemake archive` after the run: its table has the archive jobs only, not the 20-odd jobs before."""
    workdir, *_ = two_runs
    text = output_text(snakemake(workdir, with_threads(1, TWO_EXPERIMENTS), ["archive"], cores=1))
    rows = timing_rows(workdir)
    assert sorted(row[0] for row in rows) == ["archive_experiment", "archive_experiment"], rows
    assert "time per job of this run (2 jobs" in text
    assert "2 of 2 experiment(s) complete (e1, e2)" in text
    assert "archive: archive/e1 (check: precipmodes verify archive/e1)" in text
    manifest = json.loads((workdir / "archive" / "e1" / "MANIFEST.json").read_text())["files"]
    for name in ("training_stats", "mode_regression", "mode_correlation", "local_variance", "svd_vs_nmf",
                 "coefficient_spectra", "seasonal_cycle", "cell_skill"):  # the new figures are archived too
        assert f"figures/{name}.png" in manifest, sorted(manifest)


def test_summary_command_lists_every_experiment_with_its_numbers(two_runs, capsys):
    workdir, *_ = two_runs
    results = workdir / "results"
    assert cli.main(["summary", str(results)]) == 0
    text = capsys.readouterr().out
    assert "2 of 2 experiment(s) complete (e1, e2)" in text
    for name in ("e1", "e2"):
        with xr.open_dataset(results / name / "evaluation.nc") as evaluation, \
                xr.open_dataset(results / name / "svd.nc") as svd:
            cells = int(np.isfinite(svd["spatial_modes"].isel(mode=0)).sum())
            block = text.split(f"\n{name}: complete\n")[1].split("\n\n")[0]
            assert f"cells: {cells} land cells; windows: {svd.sizes['time']} training, " \
                   f"{evaluation.sizes['time']} test" in block
            ratio = 100 * svd["explained_variance_ratio"].values
            assert f"SVD share of the sum of squares (uncentred SVD), modes 1-" in block
            assert f"{ratio[0]:.1f}, {ratio[1]:.1f}" in block
            for method in ("svd", "nmf", "climatology"):
                assert f"{float(evaluation[f'{method}_rmse_overall']):.3f}" in block.split("test RMSE")[1]
                assert f"{float(evaluation[f'{method}_holdout_rmse_overall']):.3f}" in block
            assert f"SVD {float(evaluation['svd_skill']):.3f}, NMF {float(evaluation['nmf_skill']):.3f}" in block
            figures = len(list((results / name / "figures").glob("*.png")))
            assert f"figures: {figures} PNG in {results / name / 'figures'}" in block
    summary = json.loads((results / "e1" / "summary.json").read_text())
    assert summary["variance_measure"] == "share of the sum of squares (uncentred SVD)"
    assert summary["n_cells"] > 0


def test_summary_command_on_a_half_finished_folder(two_runs):
    _, _, _, half, _ = two_runs
    assert half.returncode == 0, half.stderr  # one experiment is complete
    assert "1 of 2 experiment(s) complete (e1)" in half.stdout
    assert "e2: incomplete: has train.nc, test.nc, svd.nc; missing nmf.nc, evaluation.nc, summary.json" in half.stdout


def test_summary_command_on_a_folder_without_results(tmp_path, capsys):
    (tmp_path / "prepared").mkdir()
    assert cli.main(["summary", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path}: no experiment results yet" in out and "run snakemake" in out


def test_summary_command_on_a_missing_folder(tmp_path, capsys):
    assert cli.main(["summary", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'nowhere'}: no such folder" in err and "results_dir" in err
