"""Faults while the workflow runs: SIGKILL mid-rule, an interrupted download, a full disk, parallel
experiments and two Snakemake processes on one directory.

The download unit tests (dropped connection + Range resume, checksum, HTML, 404) live in
tests/unit/io/test_sources_http.py; here the same faults go through Snakemake, as a user meets them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import xarray as xr
from helpers.processes import rule_process, start_snakemake, wait_for
from helpers.workflow import file_server, require
from helpers.reliability import (TINY, TWO_EXPERIMENTS, assert_nothing_partial, assert_same_data, copy_run, http_source,
                                 leftovers, output_text, precip_file, snakemake, tiny, with_threads)

from precipmodes.io.netcdf import sha256_file
from precipmodes.io.owned import hostname
from precipmodes.io.sources.index import open_steps

pytestmark = pytest.mark.workflow

TOTALS = "results/prepared/totals/2000-01.nc"  # the tiny run's one partition of the totals
NMF = "results/e1/nmf.nc"
RAW = "results/prepared/raw.nc"


def test_sigkill_accumulate_and_nmf_then_rerun_gives_the_uninterrupted_outputs(tmp_path, tiny_run):
    """SIGKILL accumulate_partition while it writes its partition of the totals (its temp file exists; the failed
    run removes it), rerun (plain); then SIGKILL the whole Snakemake process tree during nmf (a crashed node),
    --unlock and --rerun-incomplete. The results equal those of an uninterrupted run (--forcerun
    accumulate_partition in the same directory)."""
    # tol 0: nmf runs all max_iter sweeps, long enough to be killed mid-rule
    config = tiny(nmf={"max_iter": 3000, "tol": 0.0})
    workdir = copy_run(tiny_run, tmp_path / "work")
    prepared = workdir / "results" / "prepared"
    parts = prepared / "totals"
    for path in (workdir / "results").rglob("*.nc*"):  # keep raw and the land mask, the rest is rebuilt
        if path.name.split(".nc")[0] not in ("raw", "land_mask"):
            path.unlink()

    run = start_snakemake(workdir, config, [NMF])
    rule = wait_for(lambda: rule_process(run, "accumulate.py"), "accumulate_partition started", run)
    wait_for(lambda: list(parts.glob(".2000-01.nc.tmp-*")), "the partition being written", run, every=0.002)
    rule.send_signal(signal.SIGKILL)
    output = run.communicate(timeout=300)[0]
    assert run.returncode != 0, output[-3000:]
    assert "Error in rule accumulate_partition" in output, output[-3000:]
    assert not (workdir / TOTALS).exists(), "a killed write left the partition under its final name"
    assert leftovers(prepared) == [], "the failed run (onerror) left the killed writer's temp file"

    # the plain rerun completes the partition; kill the whole tree while nmf runs
    run = start_snakemake(workdir, config, [NMF])
    rule = wait_for(lambda: rule_process(run, "decompose.py"), "nmf started", run)  # only nmf.nc is asked for
    wait_for(lambda: "nmf (e1): started" in _read(workdir / "results/logs/nmf_e1.log"), "nmf fitting", run)
    os.killpg(run.pid, signal.SIGKILL)
    run.communicate(timeout=60)
    rule.wait(timeout=30) if rule.is_running() else None
    assert not (workdir / NMF).exists()
    assert leftovers(prepared) == [], "the rerun left the killed writer's temp file of the partition"
    with xr.open_dataset(workdir / TOTALS) as ds:
        ds.load()

    locked = snakemake(workdir, config, [NMF], check=False)
    assert locked.returncode != 0 and "Directory cannot be locked" in output_text(locked)
    snakemake(workdir, config, [NMF], "--unlock")
    snakemake(workdir, config, [NMF], "--rerun-incomplete")
    assert_nothing_partial(workdir, [])
    kept = tmp_path / "resumed"
    kept.mkdir()
    for name in (TOTALS, NMF):
        shutil.copy2(workdir / name, kept / Path(name).name)

    snakemake(workdir, config, [NMF], "--forcerun", "accumulate_partition")  # uninterrupted, from totals on
    for name in (TOTALS, NMF):
        assert_same_data(kept / Path(name).name, workdir / name)


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def test_interrupted_download_is_never_used_and_the_rerun_resumes_and_verifies(tmp_path):
    """The server cuts the transfer in half: the rule fails naming the kept .part, raw.nc is not made;
    the rerun asks for the rest (Range), checks the sha256 and builds raw.nc (the index) from the whole file."""
    # 150 days (~190 KB): the first half holds whole 64 KiB blocks, so the .part keeps data to resume from
    data = precip_file(tmp_path / "src" / "good.nc", days=150).read_bytes()
    workdir = tmp_path / "work"
    with file_server({"good_2006.nc": data}) as server:
        server.drop["good_2006.nc"] = 1
        source = http_source(f"{server.url}/good_{{year}}.nc", checksums={"good_2006.nc": _sha(tmp_path / "src/good.nc")})
        config = tiny(source=source)
        failed = snakemake(workdir, config, [RAW], check=False)
        text = output_text(failed)
        assert failed.returncode != 0
        assert re.search(r"good_2006\.nc: download failed after 1 attempt\(s\): connection (closed|lost) after \d+ "
                         r".*; the partial file .*good_2006\.nc\.part is kept", text), text[-3000:]
        downloads = workdir / "downloads"  # source.http.cache_dir's default
        assert not (downloads / "good_2006.nc").exists()
        assert 0 < (downloads / "good_2006.nc.part").stat().st_size < len(data)
        assert_nothing_partial(workdir, [RAW])

        snakemake(workdir, config, [RAW])
        assert server.requests[-1][1] is not None and server.requests[-1][1].startswith("bytes="), server.requests
        assert (downloads / "good_2006.nc").read_bytes() == data
        assert not (downloads / "good_2006.nc.part").exists()
    raw = open_steps(workdir / RAW)  # the index of the downloaded file, read through it
    with xr.open_dataset(tmp_path / "src/good.nc") as original:
        assert raw["precip"].shape == original["precip"].shape
        assert float(raw["precip"].sum()) == pytest.approx(float(original["precip"].sum()), rel=1e-6)


def test_download_cut_short_without_content_length_is_refused_and_fetched_again(tmp_path):
    """Without Content-Length a cut connection looks like a complete body: the file fails to open, is
    removed (never cached, never used) and the rerun downloads it whole."""
    data = precip_file(tmp_path / "src" / "good.nc", days=150).read_bytes()
    workdir = tmp_path / "work"
    with file_server({"good_2006.nc": data}) as server:
        server.drop["good_2006.nc"] = 1
        server.no_length.add("good_2006.nc")
        config = tiny(source=http_source(f"{server.url}/good_{{year}}.nc"))
        failed = snakemake(workdir, config, [RAW], check=False)
        text = output_text(failed)
        assert failed.returncode != 0
        assert re.search(r"good_2006\.nc: the downloaded file cannot be opened as NetCDF .* probably truncated; "
                         r"the download was removed, rerun to fetch it again", text), text[-3000:]
        downloads = workdir / "downloads"  # Snakemake removes the failed job's empty output folder too
        assert not downloads.exists() or list(downloads.iterdir()) == []
        assert_nothing_partial(workdir, [RAW])

        snakemake(workdir, config, [RAW])
        assert (workdir / "downloads/good_2006.nc").read_bytes() == data
    assert (workdir / RAW).is_file()


def _sha(path: Path) -> str:
    return sha256_file(path)


@pytest.fixture
def small_disk(tmp_path):
    """A workdir whose results/ is a 64 KiB tmpfs (needs root and mount; skipped elsewhere)."""
    workdir = tmp_path / "work"
    results = workdir / "results"
    results.mkdir(parents=True)
    mounted = (os.geteuid() == 0 and shutil.which("mount") is not None and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(results)], capture_output=True).returncode == 0)
    require(mounted, "mounting a small tmpfs needs root and mount(8)")
    try:
        yield workdir
    finally:
        subprocess.run(["umount", "--lazy", str(results)], check=False)


def test_disk_full_gives_a_clear_error_and_no_corrupt_output(small_disk):
    """The tiny demo's index (raw.nc, ~28 KB) fits a 64 KiB results/, its partition of totals (~48 KB) does not:
    write_netcdf's OutputError reaches snakemake's output, and neither the partition nor a temp file is left."""
    result = snakemake(small_disk, tiny(), [TOTALS], check=False)
    text = output_text(result)
    assert result.returncode != 0
    found = re.search(r"OutputError: .*(totals/\d{4}-\d{2}\.nc): no space left on the device while writing", text)
    assert found, text[-4000:]
    assert_nothing_partial(small_disk, [f"results/prepared/{found[1]}"])


def job_files(dry_run_output: str) -> dict[str, list[str]]:
    """Job id -> its output and log paths, parsed from a ``snakemake --dry-run`` listing."""
    jobs: dict[str, list[str]] = {}
    current = None
    for line in dry_run_output.splitlines():
        line = line.strip()
        if line.startswith("jobid:"):
            current = line.split(":", 1)[1].strip()
            jobs[current] = []
        elif current and (line.startswith("output:") or line.startswith("log:")):
            jobs[current] += [p.strip() for p in line.split(":", 1)[1].split(",") if p.strip()]
    return jobs


def test_two_experiments_never_write_the_same_file(tmp_path):
    """In the full DAG of two experiments (rule all, --cores 2) every output and log belongs to one job."""
    config = tiny(experiments={"e1": TINY["experiments"]["e1"],
                               "e2": {**TINY["experiments"]["e1"], "n_modes": 2}})
    result = snakemake(tmp_path, config, [], "--dry-run", cores=2)
    jobs = job_files(output_text(result))
    assert len(jobs) > 10, output_text(result)[-3000:]
    owners: dict[str, str] = {}
    for job, paths in jobs.items():
        for path in paths:
            assert path not in owners, f"{path} is written by jobs {owners[path]} and {job}"
            owners[path] = job
    for name in ("svd.nc", "nmf.nc", "evaluation.nc", "train.nc"):
        assert {f"results/e1/{name}", f"results/e2/{name}"} <= set(owners)
    assert {"results/logs/svd_e1.log", "results/logs/svd_e2.log"} <= set(owners)


def test_second_snakemake_on_the_same_directory_is_refused(tmp_path):
    """While one run holds .snakemake/locks, a second on the same directory fails with Snakemake's lock
    message (or its refusal of the output the first is making) and changes nothing; the first finishes normally.

    The first run's Snakemake process is stopped (SIGSTOP) once it holds the lock, so that it still holds
    it while the second starts however fast the first's jobs are (waiting alone was a race the first
    could win); its jobs go on, and it finishes after SIGCONT."""
    workdir = tmp_path / "work"
    first = start_snakemake(workdir, tiny(), [NMF])
    locks = workdir / ".snakemake" / "locks"
    wait_for(lambda: locks.is_dir() and any(locks.iterdir()), "the lock files", first, every=0.05)
    os.kill(first.pid, signal.SIGSTOP)
    try:
        assert first.poll() is None and any(locks.iterdir())
        second = snakemake(workdir, tiny(), [NMF], check=False)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert second.returncode != 0
    # Snakemake checks the DAG for unfinished outputs before it takes the lock: when the first run has already
    # started its first job, the second is refused for that output instead (both leave everything as it was)
    refused = output_text(second)
    assert ("Directory cannot be locked" in refused
            or "Incomplete files:\nresults/prepared/raw.nc\n" in refused), refused[-3000:]
    output = first.communicate(timeout=600)[0]
    assert first.returncode == 0, output[-3000:]
    assert_nothing_partial(workdir, [])
    assert (workdir / NMF).is_file()


def test_two_working_directories_on_one_results_folder_the_second_is_refused_then_takes_over_a_stale_lock(tmp_path):
    """Snakemake locks the working directory, not the results: a second run from another working directory on
    the same results_dir (with another n_modes) is refused, naming the first (host, pid, working directory, since
    when), and writes nothing. Once the first is killed (SIGKILL, whole tree: its lock stays), the next run explains
    the stale lock, takes it over, and its svd.nc and provenance agree (4 modes); the lock is gone at the end.

    The first run's Snakemake is stopped (SIGSTOP) once it holds the lock so it holds it however fast it is."""
    results = tmp_path / "shared_results"
    lock = results / ".precipmodes.lock"
    svd = str(results / "e1" / "svd.nc")
    first_dir, second_dir = tmp_path / "wdA", tmp_path / "wdB"
    first = start_snakemake(first_dir, tiny(results_dir=str(results)), [svd])
    wait_for(lock.is_file, "the run lock", first, every=0.01)
    os.kill(first.pid, signal.SIGSTOP)
    try:
        mine = tiny(results_dir=str(results),
                    experiments={"e1": {**TINY["experiments"]["e1"], "n_modes": 4}})
        held = lock.read_text()
        snakemake(second_dir, mine, [svd], "--dry-run")  # a dry run neither takes nor is refused by the lock
        assert lock.read_text() == held
        second = snakemake(second_dir, mine, [svd], check=False)
        text = output_text(second)
        assert second.returncode != 0
        assert (f"{results}: another run is writing into this results folder (host {hostname()}, "
                f"pid {first.pid}, working directory {first_dir}, since 20") in text, text[-3000:]
        assert "Finished job" not in text and "Error in rule" not in text
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        os.kill(first.pid, signal.SIGCONT)
    first.communicate(timeout=60)
    assert lock.is_file(), "a killed run cannot release its lock"

    taken = snakemake(second_dir, mine, [svd])
    text = output_text(taken)
    assert "removed the lock of an earlier run that ended without releasing it" in text, text[-3000:]
    assert f"pid {first.pid}" in text and f"process {first.pid} no longer runs" in text
    assert not lock.exists(), "the lock was not released after the run"
    with xr.open_dataset(svd) as ds:
        assert ds.sizes["mode"] == 4
    assert json.loads(Path(svd + ".json").read_text())["config"]["experiments"]["e1"]["n_modes"] == 4
    assert leftovers(results) == []


def test_killed_forced_accumulate_leaves_nothing_behind_once_a_rerun_has_nothing_to_do(tmp_path, tiny_run):
    """SIGKILL of the whole Snakemake tree while a forced accumulate_partition writes its partition leaves its
    temp file and the sidecar of the partition Snakemake removed; after --unlock the rerun has nothing to be
    done (the outputs downstream of the partition are there) and still removes both."""
    config = with_threads(1, TWO_EXPERIMENTS)  # the config of tiny_run
    workdir = copy_run(tiny_run, tmp_path / "work")
    prepared = workdir / "results" / "prepared"
    parts = prepared / "totals"
    run = start_snakemake(workdir, config, ["results/e1/svd.nc"], "--forcerun", "accumulate_partition")
    rule = wait_for(lambda: rule_process(run, "accumulate.py"), "accumulate_partition started", run)
    wait_for(lambda: list(parts.glob(".2000-01.nc.tmp-*")), "the partition being written", run, every=0.002)
    os.killpg(run.pid, signal.SIGKILL)
    run.communicate(timeout=60)
    rule.wait(timeout=30)
    assert list(parts.glob(".2000-01.nc.tmp-*")) and (parts / "2000-01.nc.json").is_file()
    assert not (parts / "2000-01.nc").exists()

    snakemake(workdir, config, ["results/e1/svd.nc"], "--unlock")
    rerun = snakemake(workdir, config, ["results/e1/svd.nc"])
    assert "Nothing to be done" in output_text(rerun), output_text(rerun)[-3000:]
    assert leftovers(prepared) == [], leftovers(prepared)
    assert not (parts / "2000-01.nc.json").exists(), "the sidecar of the removed partition stayed"
    assert not (workdir / "results" / ".precipmodes.lock").exists()
