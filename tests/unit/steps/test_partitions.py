"""Totals in partitions read through the index of the user's files (real files, real snakemake runs).

raw writes an index of monthly files (no copy); one accumulate_partition job per block of
accumulation.partition_months reads only the files holding its windows; the later rules read them as one. Appending
a month rebuilds the index and reruns only the partitions whose windows touch the new file; a bad value
fails its partition naming the file and leaves the other partitions' totals, and the repaired file reruns
only the partitions reading it. (A file vanishing after the index: tests/unit/io/test_sources_files.py.)
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from helpers.reliability import (PARTS, SELECTION, assert_nothing_partial, files_source, leftovers, output_text,
                                 precip_file, prepared_totals, snakemake, tiny)

pytestmark = pytest.mark.workflow

RAW = "results/prepared/raw.nc"


def month_files(folder: Path, months: list[str]) -> list[Path]:
    """One daily file per month ``YYYY-MM`` (NaN in one sea cell), values from one seeded record."""
    record = pd.date_range("2006-01-01", "2006-12-31", freq="D")
    values = np.random.default_rng(1).gamma(0.6, 4.0, (record.size, 16, 20)).astype(np.float32)
    values[:, 0, 0] = np.nan
    paths = []
    for month in months:
        first = pd.Timestamp(month + "-01")
        inside = (record >= first) & (record < first + pd.offsets.MonthBegin())
        paths.append(precip_file(folder / f"pr_{month}.nc", values=values[inside], times=record[inside].values))
    return paths


def config_for(folder: Path) -> dict:
    return tiny(source=files_source(folder / "pr_*.nc"), accumulation={"anchor": "first", "partition_months": 1},
                land_mask={"method": "data_nan"})


def planned_partitions(workdir: Path, config: dict) -> list[str]:
    text = output_text(snakemake(workdir, config, [SELECTION], "-n"))
    return re.findall(r"wildcards: partition=(\S+)", text)


def test_partitions_equal_one_pass_and_append_reruns_only_what_it_touches(tmp_path):
    folder = tmp_path / "in"
    inputs = month_files(folder, ["2006-01", "2006-02", "2006-03"])
    workdir = tmp_path / "work"
    config = config_for(folder)
    snakemake(workdir, config, [SELECTION, "results/prepared/land_mask.nc"], cores=2)
    parts = sorted(p.name for p in (workdir / PARTS).glob("*.nc"))
    assert parts == ["2006-01.nc", "2006-02.nc", "2006-03.nc"]
    index = workdir / RAW
    assert index.stat().st_size < 0.2 * sum(p.stat().st_size for p in inputs)  # an index, not a copy
    with xr.open_dataset(index) as raw:
        assert "precip" not in raw and raw.sizes["time"] == 90
    with prepared_totals(workdir / "results/prepared") as totals:
        # the same totals as one pass over the joined record (72 h windows from the first day)
        joined = xr.concat([xr.open_dataset(p)["precip"] for p in inputs], "time").values
        expected = joined[:90].reshape(30, 3, 16, 20).sum(axis=1)
        np.testing.assert_array_equal(totals["precip"].values, expected)
        assert totals.attrs["n_windows"] == 30 and totals.attrs["n_partitions"] == 3
        assert totals["n_observed_steps"].values[0, 0] == 0 and totals["n_observed_steps"].values[1, 1] == 90
    with xr.open_dataset(workdir / "results/prepared/land_mask.nc") as mask:
        assert int(mask["land"].values[0, 0]) == 0 and int(mask["land"].sum()) == 16 * 20 - 1

    stamps = {p.name: p.stat().st_mtime_ns for p in (workdir / PARTS).glob("*.nc")}
    month_files(folder, ["2006-04"])  # next month's file arrives
    snakemake(workdir, config, [RAW])  # the index (metadata only); then a dry run plans the partitions
    planned = planned_partitions(workdir, config)
    assert planned == ["2006-04"], planned  # 2006-03 ends on a window boundary: only the new month
    snakemake(workdir, config, [SELECTION], cores=2)
    after = {p.name: p.stat().st_mtime_ns for p in (workdir / PARTS).glob("*.nc")}
    assert {name: after[name] for name in stamps} == stamps  # the other partitions keep their files
    with prepared_totals(workdir / "results/prepared") as totals:
        assert totals.attrs["n_windows"] == 40 and totals.attrs["n_partitions"] == 4

    # a file changed in the middle of the record reruns its partition only
    values = xr.load_dataset(folder / "pr_2006-02.nc")["precip"].values
    values[5, 3, 3] += 10.0
    precip_file(folder / "pr_2006-02.nc", values=values,
                times=pd.date_range("2006-02-01", periods=28, freq="D").values)
    snakemake(workdir, config, [RAW])
    # the partitions reading it: 2006-02 and 2006-01, whose last window (Jan 31 - Feb 2) ends in it
    assert sorted(planned_partitions(workdir, config)) == ["2006-01", "2006-02"]


def test_bad_values_fail_their_partition_only_and_it_reruns_alone(tmp_path):
    """+inf in one month: the index is built (values are not read there), that month's partition fails
    naming the file, the others are written; once the file is repaired only that partition reruns."""
    folder = tmp_path / "in"
    month_files(folder, ["2006-01", "2006-02", "2006-03"])
    march = xr.load_dataset(folder / "pr_2006-03.nc")["precip"].values
    bad = march.copy()
    bad[10, 4, 4] = np.inf
    times = pd.date_range("2006-03-01", periods=31, freq="D").values
    precip_file(folder / "pr_2006-03.nc", values=bad, times=times)
    workdir = tmp_path / "work"
    config = config_for(folder)
    result = snakemake(workdir, config, [SELECTION], "--keep-going", cores=2, check=False)
    assert result.returncode != 0
    log = (workdir / "results/logs/accumulate_partition/2006-03.log").read_text()
    assert re.search(r"1 infinite value\(s\) \(\+inf/-inf\): .*pr_2006-03\.nc: 1 in 1 step", log), log[-2000:]
    assert sorted(p.name for p in (workdir / PARTS).iterdir()) == ["2006-01.nc", "2006-01.nc.json",
                                                                   "2006-02.nc", "2006-02.nc.json"]
    january = (workdir / PARTS / "2006-01.nc").stat().st_mtime_ns
    precip_file(folder / "pr_2006-03.nc", values=march, times=times)
    snakemake(workdir, config, [RAW])
    # 2006-02 reads the repaired file too: its last window (Feb 27 - Mar 1) ends in it
    assert sorted(planned_partitions(workdir, config)) == ["2006-02", "2006-03"]
    snakemake(workdir, config, [SELECTION], cores=2)
    assert (workdir / PARTS / "2006-01.nc").stat().st_mtime_ns == january


def test_partition_killed_halfway_leaves_the_others_and_reruns_alone(tmp_path):
    """SIGKILL of a partition's job once it has started summing: the run fails, the killed partition leaves no
    file (final or temporary), the partition written before it keeps its file; the rerun runs the killed and
    the not yet run partitions only, and the totals equal one pass over the record."""
    import signal

    from helpers.processes import rule_process, start_snakemake, wait_for

    folder = tmp_path / "in"
    inputs = month_files(folder, ["2006-01", "2006-02", "2006-03"])
    workdir = tmp_path / "work"
    config = config_for(folder)
    snakemake(workdir, config, [RAW])
    run = start_snakemake(workdir, config, [SELECTION])  # --cores 1: the partitions one after another
    job = wait_for(lambda: rule_process(run, "accumulate.py"), "the first partition job", run, every=0.005)
    first = wait_for(lambda: sorted((workdir / PARTS).glob("*.nc")), "the first partition written", run)
    job.wait(timeout=120)  # ended: the next accumulate.py process is the second partition's
    second = wait_for(lambda: (rule := rule_process(run, "accumulate.py")) and rule.pid != job.pid and rule,
                      "the second partition job", run, every=0.005)
    second.send_signal(signal.SIGKILL)
    output = run.communicate(timeout=300)[0]
    assert run.returncode != 0 and "Error in rule accumulate_partition" in output, output[-3000:]
    killed = re.search(r"Error in rule accumulate_partition:.*?output: results/prepared/totals/(\S+)\.nc", output,
                       re.S)[1]
    assert not (workdir / PARTS / f"{killed}.nc").exists() and not (workdir / SELECTION).exists()
    assert leftovers(workdir / "results") == [], leftovers(workdir / "results")
    written = {p.name: p.stat().st_mtime_ns for p in first}
    rest = sorted({"2006-01", "2006-02", "2006-03"} - {p.stem for p in first})
    assert killed in rest and sorted(planned_partitions(workdir, config)) == rest

    snakemake(workdir, config, [SELECTION])
    assert {p.name: p.stat().st_mtime_ns for p in first} == written  # kept, not rewritten
    with prepared_totals(workdir / "results/prepared") as totals:
        joined = xr.concat([xr.open_dataset(p)["precip"] for p in inputs], "time").values
        np.testing.assert_array_equal(totals["precip"].values, joined[:90].reshape(30, 3, 16, 20).sum(axis=1))
    assert_nothing_partial(workdir, [])


def test_seed_binary_totals_pass_through_one_partition(tmp_path):
    """Totals already accumulated (seed_binary) are one partition, without dropped windows; the
    seed's land mask still wins (land_mask.method auto)."""
    from helpers.sources import write_seed

    options, _, _ = write_seed(tmp_path)
    seed = {key: value for key, value in options.items() if key != "kind"}
    config = tiny(source={"kind": "seed_binary", "seed_binary": seed}, domain={"lon": [128.0, 148.0],
                                                                              "lat": [30.0, 46.0]})
    workdir = tmp_path / "work"
    snakemake(workdir, config, [SELECTION, "results/prepared/land_mask.nc"])
    assert sorted(p.name for p in (workdir / PARTS).glob("*.nc")) == ["all.nc"]
    with prepared_totals(workdir / "results/prepared") as totals, xr.open_dataset(workdir / RAW) as raw:
        np.testing.assert_array_equal(totals["precip"].values, raw["precip"].values)
        assert totals.attrs["n_windows_dropped"] == 0 and "dropped_window" not in totals.dims
        np.testing.assert_array_equal(totals["n_observed_steps"].values, raw["precip"].notnull().sum("time").values)
    with xr.open_dataset(workdir / "results/prepared/land_mask.nc") as mask:
        assert mask.attrs["method"] == "seed_land"
