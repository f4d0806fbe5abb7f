"""Dask execution for the heavy rules (accumulate, svd, nmf), chosen by the config section ``dask``.

``dask.cluster`` picks where dask graphs run:

* ``threads`` (default): dask's threaded scheduler with ``num_workers`` = the rule's threads;
  no processes, no ports, nothing to start.
* ``local``: a ``distributed.LocalCluster`` sized by the rule's threads (one single-threaded
  process worker per thread, memory split evenly from the rule's ``mem_mb``); extra
  ``LocalCluster`` keyword arguments from ``dask.local``.
* ``address``: attach a client to a running scheduler at ``dask.scheduler_address``
  (e.g. ``tcp://node12:8786``); the rule's threads are not used for dask work.
* ``slurm``: start a ``dask_jobqueue.SLURMCluster`` from ``dask.slurm`` (``cores``, ``memory``,
  ``jobs``, ``queue``, ``walltime``, ``account``, ... any SLURMCluster keyword; ``jobs`` = how
  many worker jobs to submit, ``wait_timeout_s`` = how long to wait for them). The workers
  are SLURM jobs of their own and may land on other nodes; set ``interface`` to the
  cluster network (default ``lo``: scheduler and workers on one node).

Usage in a rule script (keep ``snakemake`` under ``if __name__ == "__main__":`` because
process workers re-import the script)::

    with parallel.dask_cluster(smk.config["dask"], smk.threads, smk.resources.mem_mb):
        result = heavy_function(...)   # dask computations inside use the chosen cluster
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from typing import Any, Iterator, Mapping

import dask

from precipmodes.errors import ConfigError, PrecipModesError

log = logging.getLogger("precipmodes")

MODES = ("threads", "local", "address", "slurm")

#: SLURMCluster settings used unless ``dask.slurm`` overrides them (one worker process per job).
SLURM_DEFAULTS: dict[str, Any] = {
    "cores": 1,
    "memory": "2GB",
    "processes": 1,
    "walltime": "01:00:00",
    "interface": "lo",
    "local_directory": None,  # filled with a temporary folder
    "log_directory": None,  # worker job logs; None = not kept
}
#: keys of ``dask.slurm`` that are ours, not SLURMCluster keyword arguments
SLURM_OWN_KEYS = {"jobs": 1, "wait_timeout_s": 300}
#: seconds to wait for a running scheduler (dask.cluster: address)
CONNECT_TIMEOUT_S = 30


def slurm_cluster_kwargs(slurm_config: Mapping | None) -> tuple[dict, int, float]:
    """Split ``dask.slurm`` into (SLURMCluster kwargs, number of worker jobs, wait timeout in s)."""
    settings = dict(slurm_config or {})
    jobs = settings.pop("jobs", SLURM_OWN_KEYS["jobs"])
    timeout = settings.pop("wait_timeout_s", SLURM_OWN_KEYS["wait_timeout_s"])
    if not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"dask.slurm.jobs: {jobs!r} must be an integer >= 1 (number of dask worker jobs)")
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ConfigError(f"dask.slurm.wait_timeout_s: {timeout!r} must be a positive number of seconds")
    kwargs = {**SLURM_DEFAULTS, **settings}
    if kwargs["local_directory"] is None:
        kwargs["local_directory"] = tempfile.gettempdir()
    if kwargs["log_directory"] is None:
        kwargs.pop("log_directory")
    return kwargs, jobs, float(timeout)


def cluster_mode(dask_config: Mapping | None) -> str:
    """``dask.cluster`` of the config section ``dask`` (``threads`` when unset)."""
    return dict(dask_config or {}).get("cluster", "threads")


def local_cluster_kwargs(local: Mapping | None, threads: int, mem_mb: int | None) -> dict:
    """``distributed.LocalCluster`` arguments for a rule's ``threads`` (one single-threaded process worker
    each) and ``mem_mb`` (split evenly), updated by the config's ``dask.local`` mapping."""
    kwargs = {
        "n_workers": threads,
        "threads_per_worker": 1,
        "processes": True,
        "dashboard_address": None,
        "local_directory": tempfile.gettempdir(),
    }
    if mem_mb:
        kwargs["memory_limit"] = f"{max(1, int(mem_mb) // threads)}MB"
    kwargs.update(local or {})
    return kwargs


def _attached_client(address: str | None):
    """A ``distributed.Client`` of the running scheduler at ``address`` (``dask.scheduler_address``);
    ConfigError without an address, PrecipModesError when it cannot be reached."""
    from distributed import Client

    if not address:
        raise ConfigError(
            "dask.scheduler_address: required when dask.cluster is 'address'; "
            "set it to the running scheduler, e.g. tcp://node12:8786"
        )
    log.info("dask: attaching to the scheduler at %s", address)
    try:
        return Client(address, timeout=CONNECT_TIMEOUT_S)
    except OSError as exc:
        raise PrecipModesError(
            f"dask.scheduler_address: cannot reach the dask scheduler at {address} ({exc}); "
            "start it (dask scheduler) or fix the address"
        ) from exc


@contextlib.contextmanager
def dask_cluster(dask_config: Mapping | None, threads: int = 1, mem_mb: int | None = None) -> Iterator[Any]:
    """Run the enclosed dask computations on the cluster chosen by ``dask_config`` (config section ``dask``).

    ``threads`` and ``mem_mb`` are the rule's resources; they size the threaded scheduler
    and the LocalCluster. Yields the ``distributed.Client`` (None for ``threads``) and closes
    what it started on exit (SLURM worker jobs are cancelled).
    """
    config = dict(dask_config or {})
    mode = cluster_mode(config)
    threads = max(1, int(threads))
    if mode not in MODES:
        raise ConfigError(f"dask.cluster: {mode!r} is not allowed; allowed values are {list(MODES)}")
    if mode == "threads":
        log.info("dask: threaded scheduler with %d worker thread(s)", threads)
        with dask.config.set(scheduler="threads", num_workers=threads):
            yield None
        return

    from distributed import Client, LocalCluster

    if mode == "local":
        kwargs = local_cluster_kwargs(config.get("local"), threads, mem_mb)
        log.info("dask: LocalCluster %s", kwargs)
        with LocalCluster(**kwargs) as cluster, Client(cluster) as client:
            yield client
        return

    if mode == "address":
        with _attached_client(config.get("scheduler_address")) as client:
            yield client
        return

    from dask_jobqueue import SLURMCluster

    kwargs, jobs, timeout = slurm_cluster_kwargs(config.get("slurm"))
    log.info("dask: SLURMCluster with %d job(s) %s", jobs, kwargs)
    with SLURMCluster(**kwargs) as cluster, Client(cluster) as client:
        cluster.scale(jobs=jobs)
        n_workers = jobs * int(kwargs.get("processes") or 1)
        try:
            client.wait_for_workers(n_workers, timeout=timeout)
        except TimeoutError as exc:
            raise PrecipModesError(
                f"dask.slurm: {n_workers} dask worker(s) in {jobs} SLURM job(s) did not start within "
                f"{timeout:g} s (see squeue/sacct; check dask.slurm queue/account/memory/walltime, "
                "or raise dask.slurm.wait_timeout_s)"
            ) from exc
        log.info("dask: %d SLURM worker(s) up", n_workers)
        yield client
