"""rule_run: the rule's log, its thread budget (BLAS and dask) and its decoded params."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import dask
import numpy as np  # noqa: F401 (loads the BLAS that threadpoolctl limits)
import pytest
from threadpoolctl import threadpool_info

from precipmodes.logs import log as package_log
from precipmodes.steps.rulescript import rule_run


@pytest.fixture
def restored_logging():
    """rule_run configures the package logger for a rule process (its own handlers, no propagation,
    an excepthook); put it back so that later tests in this process see the usual logging."""
    saved = (list(package_log.handlers), package_log.propagate, package_log.level, sys.excepthook)
    yield
    for handler in package_log.handlers:
        handler.close()
    package_log.handlers[:] = saved[0]
    package_log.propagate, sys.excepthook = saved[1], saved[3]
    package_log.setLevel(saved[2])


@pytest.mark.parametrize("threads", [1, 2])
def test_rule_run_limits_blas_and_dask_to_the_rules_threads_and_decodes_params(tmp_path, threads,
                                                                               restored_logging):
    log = tmp_path / "rule.log"
    smk = SimpleNamespace(rule="svd", threads=threads, log=[str(log)], resources={"mem_mb": 1000},
                          params={"svd": json.dumps({"n_modes": 3}), "name": json.dumps("e1")})
    before = dask.config.get("num_workers", None)
    with rule_run(smk) as params:
        assert params == {"svd": {"n_modes": 3}, "name": "e1"}
        assert dask.config.get("num_workers") == threads
        blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
        assert blas and all(pool["num_threads"] == threads for pool in blas)
    assert dask.config.get("num_workers", None) == before
    text = log.read_text()
    assert f"rule svd: {threads} thread(s) (BLAS/OpenMP and dask workers limited to {threads})" in text
    assert "rule svd: done in" in text
