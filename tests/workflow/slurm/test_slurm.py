"""SLURM on a real (local, one-node) scheduler: the workflow with `--profile profiles/slurm`, and
dask-jobqueue workers started by ``parallel.dask_cluster``.

The cluster is started by tests/run_tests.sh (tests/slurm/start_local_slurm.sh) and stays up
for the whole session. These tests skip when `sinfo` is absent or the controller is down,
except under CI=true, where they fail instead.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from helpers.workflow import REPO, require

from precipmodes.steps import parallel

pytestmark = pytest.mark.slurm

#: a small demo: 1 year, 1 degree grid, 3 modes (each rule is its own SLURM job)
SMALL_CONFIG = {
    "source": {"kind": "demo", "demo": {"start": "2006-01-01T00:00+09:00", "end": "2007-01-01T00:00+09:00"}},
    "domain": {"lon": [128.0, 148.0], "lat": [30.0, 46.0], "resolution": [1.0, 1.0]},
    "experiments": {"small": {"train": ["2006-01-01T00:00+09:00", "2006-07-01T00:00+09:00"],
                              "test": ["2006-07-01T00:00+09:00", "2007-01-01T00:00+09:00"],
                              "n_modes": 3, "test_windows": [0]}},
    "figures": {"coastline_resolution": "110m", "max_panels": 3, "dpi": 60},
    "resources": {"default": {"threads": 1, "mem_mb": 1000, "runtime": 10}},
}


def sacct(*args: str) -> list[list[str]]:
    out = subprocess.run(["sacct", "-n", "-P", *args], capture_output=True, text=True, timeout=60, check=True)
    return [line.split("|") for line in out.stdout.splitlines() if line]


@pytest.fixture(scope="session")
def slurm() -> dict:
    """The running local SLURM cluster: its partition and the CPUs / memory of its node."""
    require(shutil.which("sinfo") is not None, "SLURM is not installed (sinfo not on PATH); "
            "run tests/slurm/start_local_slurm.sh as root")
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    require(ping.returncode == 0 and "UP" in ping.stdout, f"slurmctld is down: {ping.stdout.strip()}")
    info = subprocess.run(["sinfo", "-h", "-o", "%P|%c|%m|%t"], capture_output=True, text=True, timeout=30)
    partition, cpus, memory, state = info.stdout.split()[0].split("|")
    require(state in ("idle", "mix", "alloc"), f"SLURM node is {state}, not usable")
    # the executor plugin asks sacct for job states and hangs when accounting is down
    accounting = subprocess.run(["sacct", "-n", "-X", "-S", "now-1minutes"], capture_output=True, text=True,
                                timeout=60)
    require(accounting.returncode == 0, f"SLURM accounting (slurmdbd/MariaDB) is down: "
            f"{accounting.stderr.strip()[-300:]}; rerun tests/slurm/start_local_slurm.sh")
    return {"partition": partition.rstrip("*"), "cpus": int(cpus), "mem_mb": int(memory)}


def squeue_ids(job_name: str) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-n", job_name, "-o", "%i"], capture_output=True, text=True, timeout=30)
    return out.stdout.split()


def wait_for_sacct(job_name: str, expected: int, timeout: float = 60) -> list[list[str]]:
    """sacct rows (JobID, JobName, Comment, State) of ``job_name``'s allocations, once ``expected``
    of them have finished (sacct lags a moment behind job ends)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = sacct("-X", "--name", job_name, "-S", "now-1days", "-o", "JobID,JobName,Comment,State")
        finished = [row for row in rows if row[3] not in ("PENDING", "RUNNING")]
        if len(finished) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(1)


def test_dask_jobqueue_workers_run_as_slurm_jobs(slurm, tmp_path):
    import dask.array as da

    config = {"cluster": "slurm", "slurm": {"queue": slurm["partition"], "account": "root", "cores": 1,
                                            "memory": "1GB", "walltime": "00:10:00", "jobs": 2,
                                            "job_name": "pm-dask-test", "log_directory": str(tmp_path),
                                            "wait_timeout_s": 120}}
    with parallel.dask_cluster(config, threads=1) as client:
        job_ids = client.run(lambda: __import__("os").environ.get("SLURM_JOB_ID"))
        total = da.arange(1_000_000, chunks=100_000, dtype="int64").sum().compute()
    assert total == 999_999 * 1_000_000 // 2
    assert len(job_ids) == 2 and all(job_ids.values()), job_ids
    started = ("RUNNING", "CANCELLED", "COMPLETED")  # close() cancels the worker jobs; they never fail
    deadline = time.monotonic() + 120
    while True:  # sacct lags behind the jobs (a job that ran can still read PENDING for a while under load);
        # earlier runs' jobs of the same name do not count
        rows = sacct("-X", "-j", ",".join(job_ids.values()), "-o", "JobID,JobName,Comment,State")
        recorded = {row[0]: row[3] for row in rows}
        states = [recorded.get(job_id, "MISSING").split()[0] for job_id in job_ids.values()]
        if all(state in started for state in states) or time.monotonic() > deadline:
            break
        time.sleep(1)
    for job_id in job_ids.values():
        assert recorded.get(job_id, "MISSING").split()[0] in started, rows


def test_dask_jobqueue_timeout_is_a_clear_error(slurm):
    config = {"cluster": "slurm", "slurm": {"queue": slurm["partition"], "account": "root",
                                            "cores": slurm["cpus"] + 1, "memory": "1GB",  # can never start
                                            "walltime": "00:01:00", "job_name": "pm-dask-pending",
                                            "wait_timeout_s": 3}}
    with pytest.raises(parallel.PrecipModesError, match="did not start within 3 s"):
        with parallel.dask_cluster(config, threads=1):
            pass
    deadline = time.monotonic() + 30  # close() cancelled the job that could never start
    while squeue_ids("pm-dask-pending") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert squeue_ids("pm-dask-pending") == []


@pytest.mark.workflow
def test_profile_runs_every_rule_as_its_own_slurm_job(slurm, tmp_path):
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump(SMALL_CONFIG))
    command = ["timeout", "-k", "10", "900", sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
               "--directory", str(tmp_path), "--configfile", str(config), "--profile", str(REPO / "profiles/slurm"),
               "--jobs", "4", "--latency-wait", "5", "--retries", "0", "--max-threads", str(slurm["cpus"]),
               "--default-resources", f"slurm_partition={slurm['partition']}", "slurm_account=root",
               "--", "all", "archive"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=960)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-6000:]
    run_id = re.search(r"SLURM run ID: (\S+)", log).group(1)
    submitted = set(re.findall(r"SLURM jobid (\d+)", log))
    rows = wait_for_sacct(run_id, expected=len(submitted))
    assert {row[0] for row in rows} == submitted, (submitted, rows)
    assert all(row[3] == "COMPLETED" for row in rows), rows
    rules = [row[2].removeprefix("rule_").split("_wildcards_")[0] for row in rows]
    expected = {"raw", "land_mask", "accumulate_partition", "threshold", "split", "svd", "nmf", "evaluate",
                "archive_experiment"}
    assert expected <= set(rules), rules
    verify = subprocess.run([str(Path(sys.executable).with_name("precipmodes")), "verify",
                             str(tmp_path / "archive" / "small")], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout
