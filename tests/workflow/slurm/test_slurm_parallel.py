"""parallel.dask_cluster without a scheduler: threads, local and address modes, config errors.
(The dask.cluster: slurm mode runs against the local SLURM cluster in tests/workflow/slurm/test_slurm.py.)"""

from __future__ import annotations

import dask
import dask.array as da
import pytest

from precipmodes.errors import ConfigError, PrecipModesError
from precipmodes.steps import parallel


def total() -> int:
    return int(da.arange(100_000, chunks=10_000, dtype="int64").sum().compute())


def test_threads_mode_uses_the_rule_threads():
    with parallel.dask_cluster(None, threads=3) as client:
        assert client is None
        assert dask.config.get("scheduler") == "threads" and dask.config.get("num_workers") == 3
        assert total() == 99_999 * 100_000 // 2
    assert dask.config.get("num_workers", None) != 3


def test_local_mode_sizes_workers_by_threads_and_memory():
    with parallel.dask_cluster({"cluster": "local"}, threads=2, mem_mb=2000) as client:
        info = client.scheduler_info()["workers"].values()
        assert sorted(w["nthreads"] for w in info) == [1, 1]
        assert all(w["memory_limit"] == 1000 * 10**6 for w in info)
        assert total() == 99_999 * 100_000 // 2
    assert client.status == "closed"


def test_address_mode_attaches_to_a_running_scheduler():
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with parallel.dask_cluster({"cluster": "address", "scheduler_address": cluster.scheduler_address}) as client:
            assert client.scheduler.address == cluster.scheduler_address
            assert total() == 99_999 * 100_000 // 2


def test_address_mode_errors_name_the_key(monkeypatch):
    with pytest.raises(ConfigError, match="dask.scheduler_address: required"):
        with parallel.dask_cluster({"cluster": "address"}):
            pass
    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT_S", 1)
    with pytest.raises(PrecipModesError, match="cannot reach the dask scheduler at tcp://127.0.0.1:9"):
        with parallel.dask_cluster({"cluster": "address", "scheduler_address": "tcp://127.0.0.1:9"}):
            pass


def test_bad_mode_and_slurm_settings_are_config_errors():
    with pytest.raises(ConfigError, match="dask.cluster: 'mpi' is not allowed"):
        with parallel.dask_cluster({"cluster": "mpi"}):
            pass
    with pytest.raises(ConfigError, match="dask.slurm.jobs"):
        parallel.slurm_cluster_kwargs({"jobs": 0})
    kwargs, jobs, timeout = parallel.slurm_cluster_kwargs({"jobs": 3, "cores": 4, "queue": "main"})
    assert (jobs, timeout) == (3, 300.0)
    assert kwargs["cores"] == 4 and kwargs["queue"] == "main" and kwargs["interface"] == "lo"
    assert "jobs" not in kwargs and "log_directory" not in kwargs
