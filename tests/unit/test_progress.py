"""Long API calls report their progress through the package's logger at INFO, at most one line per
PROGRESS_EVERY_S seconds; the inner refits stay quiet."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import xarray as xr

from precipmodes import logs
from precipmodes.decomposition.nmf import NMF
from precipmodes.decomposition.svd import SVD
from precipmodes.diagnostics.rank import cross_validate_ranks
from precipmodes.diagnostics.significance import bootstrap_svd, nmf_rank_stability


@pytest.fixture
def matrix() -> xr.DataArray:
    rng = np.random.default_rng(0)
    values = rng.gamma(0.5, 4.0, size=(40, 60))
    return xr.DataArray(values, dims=("cell", "time"), coords={"cell": np.arange(40), "time": np.arange(60)})


def progress_lines(caplog, step: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "precipmodes.progress" and r.getMessage().startswith(step)]


def test_bootstrap_reports_every_resample_when_asked_and_keeps_refits_quiet(matrix, caplog, monkeypatch):
    monkeypatch.setattr(logs, "PROGRESS_EVERY_S", 0.0)  # every unit: the lines themselves are under test
    caplog.set_level(logging.INFO, logger="precipmodes")
    model = SVD(n_modes=3).fit(matrix)
    caplog.clear()
    bootstrap_svd(model, matrix, n_resamples=5, block_windows=5)
    lines = progress_lines(caplog, "svd bootstrap:")
    assert [line.split(",")[0] for line in lines] == [f"svd bootstrap: {i} of 5 resamples" for i in range(1, 5)]
    assert all("s left" in line and r.levelno == logging.INFO for line, r in zip(lines, caplog.records))
    assert not [r for r in caplog.records if "bootstrap resample" in r.getMessage()]  # refits stay quiet
    assert any("svd bootstrap (5 resamples" in r.getMessage() and "done in" in r.getMessage() for r in caplog.records)


def test_progress_is_rate_limited(matrix, caplog):
    caplog.set_level(logging.INFO, logger="precipmodes")
    model = SVD(n_modes=3).fit(matrix)
    bootstrap_svd(model, matrix, n_resamples=4, block_windows=5)  # well under PROGRESS_EVERY_S = 10 s
    assert progress_lines(caplog, "svd bootstrap:") == []
    progress = logs.Progress("step", 100, "units", every_s=3600.0)
    for _ in range(100):
        progress.advance()
    assert progress_lines(caplog, "step:") == []


def test_rank_cross_validation_and_nmf_stability_report_progress(matrix, caplog, monkeypatch):
    monkeypatch.setattr(logs, "PROGRESS_EVERY_S", 0.0)
    caplog.set_level(logging.INFO, logger="precipmodes")
    cross_validate_ranks(matrix, [2, 3], max_iter=20)
    assert [line.split(",")[0] for line in progress_lines(caplog, "rank cross-validation:")] == [
        f"rank cross-validation: {i} of 4 fits (SVD and NMF x ranks)" for i in (1, 2, 3)]
    nmf_rank_stability(lambda rank: NMF(rank, max_iter=500), matrix, [2, 3], n_seeds=2)
    assert len(progress_lines(caplog, "nmf stability: ")) == 3
    assert not [r for r in caplog.records if "NMF stability fit, seed" in r.getMessage()]


def test_quiet_keeps_warnings_and_the_logger_level(caplog):
    caplog.set_level(logging.INFO, logger="precipmodes")
    before = logs.log.level
    with logs.quiet():
        logs.log.info("hidden")
        logs.log.warning("shown")
        logs.progress_log.info("progress shown")
    assert logs.log.level == before
    messages = [r.getMessage() for r in caplog.records]
    assert "hidden" not in messages and "shown" in messages and "progress shown" in messages
