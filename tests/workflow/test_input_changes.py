"""Inputs from outside the workflow that vanish or change never pass as done (real snakemake runs).

`raw` takes the source's files as its inputs and a fingerprint of their paths, sizes and
modification times as a param; a missing file has a producer, rule missing_input, that fails naming
it. So with earlier outputs present a vanished source file fails the run (exit != 0) with a message
naming the path and its config key, and an edited or replaced one (even with an older modification
time) reruns `raw` and what follows. The same holds for land_mask.path and the seed_binary files.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from helpers.reliability import files_source, output_text, precip_file, snakemake, tiny
from helpers.sources import write_seed

from precipmodes.io.sources.index import open_steps

pytestmark = pytest.mark.workflow

RAW = "results/prepared/raw.nc"
LAND_MASK = "results/prepared/land_mask.nc"
TOTALS = "results/prepared/selection.nc"  # built from all the partitions of the totals


def files_config(path: Path, **sections) -> dict:
    """TINY on 90 daily steps of ``path`` (windows from the first step)."""
    return tiny(source=files_source(path), accumulation={"anchor": "first"}, **sections)


def planned(workdir: Path, config: dict, targets: list[str]) -> dict[str, str]:
    """``{rule: reason}`` of the jobs a dry run would run."""
    result = snakemake(workdir, config, targets, "-n")
    text = output_text(result)
    return dict(re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):\n(?:    .*\n)*?    reason: (.*)$", text, flags=re.M))


def older_than(path: Path, reference: Path) -> None:
    """Set ``path``'s modification time one day before ``reference``'s."""
    stamp = reference.stat().st_mtime - 86400
    os.utime(path, (stamp, stamp))


def test_vanished_source_fails_naming_it_even_with_outputs_present(tmp_path):
    data = precip_file(tmp_path / "in.nc", days=90)
    workdir = tmp_path / "work"
    config = files_config(data)
    snakemake(workdir, config, [TOTALS])
    data.rename(tmp_path / "renamed.nc")
    for target in (RAW, TOTALS):
        result = snakemake(workdir, config, [target], check=False)
        text = output_text(result)
        assert result.returncode != 0, text[-3000:]
        assert f"source.files.paths: '{data}' matches no file; check the path" in text, text[-3000:]
        assert "Nothing to be done" not in text


def test_edited_or_replaced_source_reruns_raw_and_what_follows(tmp_path):
    data = precip_file(tmp_path / "in.nc", days=90)
    workdir = tmp_path / "work"
    config = files_config(data)
    snakemake(workdir, config, [TOTALS])
    assert planned(workdir, config, [TOTALS]) == {}

    values = xr.load_dataset(data)["precip"].values
    values[3, 2, 2] = 99.0  # one value changed, written anew (a newer modification time)
    precip_file(data, days=90, values=values)
    jobs = planned(workdir, config, [TOTALS])
    # the partitions are planned once the checkpoint raw has run (a dry run shows them as <TBD>)
    assert set(jobs) == {"raw", "threshold"} and "Updated input files" in jobs["raw"], jobs
    snakemake(workdir, config, [TOTALS])
    assert float(open_steps(workdir / RAW)["precip"].isel(time=3, lat=2, lon=2)) == 99.0

    values[3, 2, 2] = 7.0  # replaced by a file whose modification time is OLDER than raw.nc
    precip_file(tmp_path / "other.nc", days=90, values=values)
    (tmp_path / "other.nc").replace(data)
    older_than(data, workdir / RAW)
    jobs = planned(workdir, config, [TOTALS])
    assert set(jobs) == {"raw", "threshold"} and "Params have changed" in jobs["raw"], jobs
    snakemake(workdir, config, [TOTALS])
    assert float(open_steps(workdir / RAW)["precip"].isel(time=3, lat=2, lon=2)) == 7.0


def test_a_glob_matching_a_new_file_reruns_raw(tmp_path):
    first = precip_file(tmp_path / "in" / "a.nc", days=45)
    workdir = tmp_path / "work"
    config = files_config(tmp_path / "in" / "*.nc")
    snakemake(workdir, config, [RAW])
    times = np.arange(np.datetime64("2006-02-15"), np.datetime64("2006-04-01"), np.timedelta64(1, "D"))
    precip_file(tmp_path / "in" / "b.nc", times=times.astype("datetime64[ns]"))
    older_than(tmp_path / "in" / "b.nc", workdir / RAW)
    assert "raw" in planned(workdir, config, [RAW])
    snakemake(workdir, config, [RAW])
    with xr.open_dataset(workdir / RAW) as raw:
        assert raw.sizes["time"] == 90
    first.unlink()
    result = snakemake(workdir, config, [RAW], check=False)
    assert result.returncode == 0  # the glob still matches b.nc: raw reruns from it alone
    with xr.open_dataset(workdir / RAW) as raw:
        assert raw.sizes["time"] == 45


def _mask_file(path: Path, fraction: float) -> Path:
    lat, lon = np.arange(30.5, 46.0, 1.0), np.arange(128.5, 148.0, 1.0)
    xr.DataArray(np.full((lat.size, lon.size), fraction, np.float32), dims=("lat", "lon"),
                 coords={"lat": lat, "lon": lon}, name="land_fraction").to_dataset().to_netcdf(path)
    return path


def test_land_mask_file_vanished_or_replaced(tmp_path):
    data = precip_file(tmp_path / "in.nc", days=90)
    mask = _mask_file(tmp_path / "mask.nc", 1.0)
    workdir = tmp_path / "work"
    config = files_config(data, land_mask={"method": "file", "path": str(mask)})
    snakemake(workdir, config, [LAND_MASK])
    _mask_file(tmp_path / "other.nc", 0.0).replace(mask)
    older_than(mask, workdir / LAND_MASK)
    jobs = planned(workdir, config, [LAND_MASK])
    assert set(jobs) == {"land_mask"} and "Params have changed" in jobs["land_mask"], jobs
    mask.unlink()
    result = snakemake(workdir, config, [LAND_MASK], check=False)
    assert result.returncode != 0
    assert f"land_mask.path: '{mask}' matches no file" in output_text(result)


def test_seed_binary_file_vanished_or_replaced(tmp_path):
    options, data, _ = write_seed(tmp_path)
    workdir = tmp_path / "work"
    seed = {key: value for key, value in options.items() if key != "kind"}
    config = tiny(source={"kind": "seed_binary", "seed_binary": seed}, domain={"lon": [128.0, 148.0],
                                                                              "lat": [30.0, 46.0]})
    snakemake(workdir, config, [RAW])
    (data + 1.0).tofile(tmp_path / "other.bin")
    (tmp_path / "other.bin").replace(seed["data"])  # same size, new values, an older modification time
    older_than(Path(seed["data"]), workdir / RAW)
    assert "Params have changed" in planned(workdir, config, [RAW])["raw"]
    Path(seed["times"]).unlink()
    result = snakemake(workdir, config, [RAW], check=False)
    assert result.returncode != 0
    assert f"source.seed_binary.times: '{seed['times']}' matches no file" in output_text(result)
