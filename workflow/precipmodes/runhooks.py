"""What the workflow does around a run: the run lock, the clean-up of killed writes, the timing table.

One run at a time writes into ``results_dir``: the run lock ``<results_dir>/.precipmodes.lock``
(:mod:`precipmodes.runlock`) is taken in ``onstart`` (Snakemake runs no hooks in dry runs, ``--unlock``,
``--report`` or inside cluster jobs) and given back on success, on error and at exit. On every start of
the main process, "nothing to be done" included, :meth:`RunHooks.prepare` removes what killed writes left
in the workflow's folders (temp files of ended writers, provenance sidecars whose NetCDF is gone, archive
folders of ended archive writers), unless a live run holds the folder (it is that run's).

The workflow's ``Snakefile`` registers these; a Snakefile that uses the workflow as a Snakemake ``module``
registers them itself (Snakemake runs no ``onstart``/``onsuccess``/``onerror`` of a module)::

    hooks = RunHooks.from_config(config)
    onstart: hooks.start()
    onsuccess: hooks.success()
    onerror: hooks.error()
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

from .archive import remove_stale_archive_temps
from .config import validate_config
from .errors import PrecipModesError
from .logs import write_timing_table
from .netcdf import remove_leftovers
from .runlock import RunLock, break_stale
from .summary import format_overview, results_overview



def _to_stderr(note: str) -> None:
    print(f"precipmodes: {note}", file=sys.stderr)


def results_folders(config: Mapping) -> dict[str, str]:
    """The workflow's folders for a validated ``config``: ``results``, ``prepared``, ``logs``, ``archive``."""
    results = config["results_dir"].rstrip("/")
    return {"results": results, "prepared": f"{results}/prepared", "logs": f"{results}/logs",
            "archive": config["archive_dir"].rstrip("/") or "/"}


def own_folders(config: Mapping) -> list[str]:
    """The folders the workflow writes into: the only ones its clean-up of killed writes walks (never all of
    results_dir): prepared/, logs/ and each experiment's folder."""
    folders = results_folders(config)
    return [folders["prepared"], folders["logs"], *(f"{folders['results']}/{name}" for name in sorted(config["experiments"]))]


@dataclass
class RunHooks:
    """The run lock, clean-up and timing table of one run of the workflow for ``config`` (validated);
    ``warn`` shows a note (a stale lock taken over), e.g. Snakemake's ``logger.warning``."""

    config: Mapping
    warn: Callable[[str], None] = _to_stderr
    lock: RunLock = field(init=False)
    started: float = field(init=False)  # job logs written since then are this run's (the timing table)

    def __post_init__(self):
        self.lock = RunLock(results_folders(self.config)["results"])
        self.started = time.time()

    @classmethod
    def from_config(cls, config: Mapping, warn: Callable[[str], None] = _to_stderr) -> "RunHooks":
        """Hooks for a config as the user gave it (validated here, defaults filled in)."""
        return cls(validate_config(config), warn)

    def prepare(self) -> None:
        """At every start of the main process: break a stale run lock, then, unless a live run holds the
        results folder, remove what killed writes left in the workflow's folders."""
        holder, note = break_stale(results_folders(self.config)["results"])
        if note:
            self.warn(note)
        if holder is None:
            remove_leftovers(own_folders(self.config))
            remove_stale_archive_temps(results_folders(self.config)["archive"])

    def start(self) -> None:
        """onstart: take the run lock (raises :class:`~precipmodes.runlock.RunLockError` naming the holder)."""
        note = self.lock.acquire()
        if note:
            self.warn(note)

    def error(self) -> None:
        """onerror: remove the sidecars of outputs that a failed job left or Snakemake removed, and the
        failed writers' temp files; give the lock back."""
        try:
            remove_leftovers(own_folders(self.config))
        finally:
            self.lock.release()

    def success(self) -> None:
        """onsuccess: the time each job of this run took (from its log), slowest first, also written to
        ``<results_dir>/logs/timings.tsv``; the overview of the experiments (``precipmodes summary``) on
        stderr; give the lock back."""
        folders = results_folders(self.config)
        try:
            write_timing_table(folders["logs"], since=self.started)
            try:
                overview = results_overview(folders["results"], sorted(self.config["experiments"]))
                print(format_overview(folders["results"], overview), file=sys.stderr)
            except PrecipModesError as error:
                self.warn(f"precipmodes summary {folders['results']}: {error}")
        finally:
            self.lock.release()
