"""Download as its own step of the DAG (source.kind http), through Snakemake against a local server.

One `download` job per remote file, a local rule (it runs where Snakemake runs, also under the SLURM
profile, since compute nodes are often offline), into source.http.cache_dir, which runs in other
working directories share; `raw` reads the cached files and makes no request.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import xarray as xr
import yaml
from helpers.workflow import REPO, file_server, offline_prefix, run_snakemake, snakemake_command
from helpers.reliability import http_source, output_text, precip_file, snakemake, tiny

from precipmodes.io.sources.index import open_steps

pytestmark = pytest.mark.workflow

RAW = "results/prepared/raw.nc"


def job_counts(result) -> dict[str, int]:
    """``{rule: jobs}`` from the "Job stats" table of a run or dry run."""
    table = output_text(result).split("Job stats:")[1].split("total")[0]
    return {line.split()[0]: int(line.split()[1]) for line in table.splitlines()[3:] if line.strip()}


def local_rules(workdir: Path) -> list[str]:
    """The rules the workflow declares in ``localrules`` for ``workdir/config.yaml`` (Snakemake's API, in a
    subprocess: loading a workflow changes the working directory)."""
    script = f"""
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings
with SnakemakeApi(OutputSettings(quiet=None)) as api:
    workflow = api.workflow(resource_settings=ResourceSettings(), snakefile=Path({str(REPO / "Snakefile")!r}),
                            config_settings=ConfigSettings(configfiles=[Path({str(workdir / "config.yaml")!r})]),
                            workdir=Path({str(workdir)!r}))._workflow
    print(sorted(workflow._localrules))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    return ast.literal_eval(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def served(tmp_path):
    """Two files of 45 daily steps each (one per 'year' of the URL template) on a local server."""
    first = precip_file(tmp_path / "src" / "a.nc", times=pd.date_range("2006-01-01", periods=45, freq="D").values)
    second = precip_file(tmp_path / "src" / "b.nc", times=pd.date_range("2006-02-15", periods=45, freq="D").values)
    with file_server({"p_2006.nc": first.read_bytes(), "p_2007.nc": second.read_bytes()}) as server:
        yield server


def test_one_local_download_job_per_file_and_a_shared_cache(served, tmp_path):
    cache = tmp_path / "cache"
    config = tiny(source=http_source(f"{served.url}/p_{{year}}.nc", years=[2006, 2007], cache_dir=str(cache)))
    first = tmp_path / "first"

    plan = snakemake(first, config, [RAW], "-n")
    assert job_counts(plan) == {"download": 2, "raw": 1}
    assert local_rules(first) == ["download"]  # under the SLURM profile it runs where Snakemake runs
    assert served.requests == []

    run = snakemake(first, config, [RAW], cores=2)
    assert job_counts(run) == {"download": 2, "raw": 1}
    assert sorted(name for name, _ in served.requests) == ["p_2006.nc", "p_2007.nc"]  # one request per file
    assert sorted(p.name for p in cache.iterdir()) == ["p_2006.nc", "p_2007.nc"]
    with xr.open_dataset(first / RAW) as raw:
        assert raw.sizes["time"] == 90

    # raw reads the cached files only: rerun with the network cut off (where unshare -n works)
    command = [RAW, "--configfile", str(first / "config.yaml"), "--cores", "1", "--forcerun", "raw"]
    again = run_snakemake(first, *command, offline=bool(offline_prefix()))
    assert job_counts(again) == {"raw": 1}
    assert len(served.requests) == 2

    # a run in another working directory finds the files in the shared cache
    second = tmp_path / "second"
    other = snakemake(second, config, [RAW])
    assert job_counts(other) == {"raw": 1}
    assert len(served.requests) == 2
    assert open_steps(first / RAW)["precip"].equals(open_steps(second / RAW)["precip"])  # through the indexes


def test_a_deleted_download_is_fetched_again_only_when_raw_reruns(served, tmp_path):
    """A cached file removed to save space (like Snakemake's temp files) leaves raw.nc valid; when raw
    runs again, only the missing file is downloaded."""
    cache = tmp_path / "cache"
    config = tiny(source=http_source(f"{served.url}/p_{{year}}.nc", years=[2006, 2007], cache_dir=str(cache)))
    workdir = tmp_path / "work"
    snakemake(workdir, config, [RAW])
    (cache / "p_2007.nc").unlink()
    assert "Nothing to be done" in output_text(snakemake(workdir, config, [RAW]))
    run = snakemake(workdir, config, [RAW, "--forcerun", "raw"])
    assert job_counts(run) == {"download": 1, "raw": 1}
    assert sorted(name for name, _ in served.requests) == ["p_2006.nc", "p_2007.nc", "p_2007.nc"]
    assert (cache / "p_2007.nc").read_bytes() == served.files["p_2007.nc"]


def test_two_runs_started_together_share_one_download(tmp_path):
    """Issue #25: two runs in two working directories share source.http.cache_dir and need the same file.
    The server holds the transfer at half until one run is seen waiting for the other's download; then
    both succeed, with one request, one verified file and nothing else in the cache (no Range request
    on a live .part, no failed job whose cleanup removes the other run's file)."""
    data = precip_file(tmp_path / "src" / "a.nc", times=pd.date_range("2006-01-01", periods=45, freq="D").values)
    with file_server({"p_2006.nc": data.read_bytes()}) as server:
        server.hold["p_2006.nc"] = threading.Event()
        cache = tmp_path / "cache"
        config = tiny(source=http_source(f"{server.url}/p_{{year}}.nc", cache_dir=str(cache)))
        runs = {}
        for name in ("a", "b"):
            workdir = tmp_path / name
            workdir.mkdir()
            (workdir / "config.yaml").write_text(yaml.safe_dump(config))
            runs[name] = subprocess.Popen(snakemake_command(workdir, RAW, "--configfile", str(workdir / "config.yaml"),
                                                            "--cores", "1"),
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        logs = [tmp_path / name / "results" / "logs" / "download" / "p_2006.nc.log" for name in runs]
        give_up = time.monotonic() + 300
        while not any(log.exists() and "is being downloaded by" in log.read_text() for log in logs):
            assert time.monotonic() < give_up, "neither run came to wait for the other's download"
            assert all(run.poll() is None for run in runs.values()), "a run ended before the other's download"
            time.sleep(0.5)
        server.hold["p_2006.nc"].set()
        outputs = {name: run.communicate(timeout=600)[0] for name, run in runs.items()}
    for name, run in runs.items():
        assert run.returncode == 0, f"run {name} failed:\n{outputs[name][-4000:]}"
        assert "Removing output files of failed job" not in outputs[name]
    assert server.requests == [("p_2006.nc", None)]  # the waiting run made no request, resumed no .part
    assert sorted(p.name for p in cache.iterdir()) == ["p_2006.nc"]  # no .part, no lock left
    assert (cache / "p_2006.nc").read_bytes() == server.files["p_2006.nc"]
    a, b = open_steps(tmp_path / "a" / RAW), open_steps(tmp_path / "b" / RAW)  # read through the indexes
    assert a["precip"].equals(b["precip"]) and a.sizes["time"] == 45


def test_a_poisoned_download_fails_the_run_and_is_not_cached(tmp_path):
    """GRIB bytes served for a .nc name: the run fails naming the URL and the file; the cache stays empty,
    so the next run asks the server again instead of reusing garbage."""
    with file_server({"p_2006.nc": b"GRIB" + bytes(range(256)) * 40}) as server:
        cache = tmp_path / "cache"
        config = tiny(source=http_source(f"{server.url}/p_{{year}}.nc", cache_dir=str(cache)))
        for attempt in (1, 2):
            run = snakemake(tmp_path / "work", config, [RAW], check=False)
            assert run.returncode != 0
            assert (f"{server.url}/p_2006.nc: the downloaded file is not a NetCDF (classic or NetCDF-4/HDF5) file "
                    "(starts with b'GRIB") in output_text(run)
            assert not cache.exists() or list(cache.iterdir()) == []  # (Snakemake removes the empty folder)
            assert len(server.requests) == attempt


def test_a_file_url_is_refused_before_anything_runs(tmp_path):
    config = tiny(source=http_source("file:///data/p_{year}.nc", cache_dir=str(tmp_path / "cache")))
    run = snakemake(tmp_path / "work", config, [RAW], "-n", check=False)
    assert run.returncode != 0
    assert ("source.http.url_template: 'file:///data/p_{year}.nc' is not an http:// or https:// URL "
            "(scheme 'file')") in output_text(run)
    assert not (tmp_path / "cache").exists()
