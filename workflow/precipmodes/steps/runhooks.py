"""What the workflow does around a run: the run lock, the clean-up of killed writes, the timing table.

One run at a time writes into ``results_dir``: the run lock ``<results_dir>/.precipmodes.lock``
(:mod:`precipmodes.io.runlock`) is taken in ``onstart`` (Snakemake runs no hooks in dry runs, ``--unlock``,
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

import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from precipmodes.config import validate_config
from precipmodes.errors import PrecipModesError
from precipmodes.io.archive import remove_stale_archive_temps
from precipmodes.io.netcdf import remove_leftovers
from precipmodes.io.runlock import RunLock, break_stale
from precipmodes.steps.overview import format_overview, results_overview


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
        """onstart: take the run lock (raises :class:`~precipmodes.io.runlock.RunLockError` naming the holder)."""
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


RULE_DONE = re.compile(r"^\S+ \S+ INFO precipmodes: rule (\w+): done in ([0-9.]+) s$", re.M)


def timing_table(log_dir: str | Path, since: float | None = None) -> list[tuple[str, str, float]]:
    """``(rule, job log, seconds)`` of every job whose log under ``log_dir`` says it finished, slowest first.

    Read from the ``rule <name>: done in <s> s`` line that :func:`precipmodes.steps.rulescript.rule_run`
    writes at the end of every job. With ``since`` (a POSIX time, e.g. when this run started) only the
    logs written since then: the jobs of this run, not those of earlier runs in the same folder (a job's
    log is rewritten when the job runs, so an older log belongs to an earlier run).
    """
    rows = []
    for path in sorted(Path(log_dir).rglob("*.log")):
        if since is not None and path.stat().st_mtime < since:
            continue
        for rule, seconds in RULE_DONE.findall(path.read_text(errors="replace")):
            rows.append((rule, str(path.relative_to(log_dir)), float(seconds)))
    return sorted(rows, key=lambda row: -row[2])


def write_timing_table(log_dir: str | Path, since: float | None = None) -> Path | None:
    """Write ``<log_dir>/timings.tsv`` (rule, log, seconds, share of the total) of the jobs logged ``since``
    (all when None; see :func:`timing_table`) and print it; None (and a line saying so) if no job logged."""
    rows = timing_table(log_dir, since)
    if not rows:
        print("precipmodes: no job ran in this run (everything was up to date)", file=sys.stderr)
        return None
    total = sum(seconds for *_, seconds in rows)
    lines = ["rule\tlog\tseconds\tshare"] + [f"{rule}\t{log}\t{seconds:.2f}\t{seconds / total:.3f}"
                                            for rule, log, seconds in rows]
    out = Path(log_dir) / "timings.tsv"
    out.write_text("\n".join(lines) + "\n")
    width = max(len(log) for _, log, _ in rows)
    print(f"precipmodes: time per job of this run ({len(rows)} jobs, {total:.1f} s of job time in all; {out}):",
          file=sys.stderr)
    for rule, log, seconds in rows:
        print(f"  {log:<{width}}  {seconds:8.2f} s  {100 * seconds / total:5.1f} %", file=sys.stderr)
    return out
