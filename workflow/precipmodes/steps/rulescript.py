"""What every rule script does around its step: the rule's log, its thread budget, its params.

A rule script (``workflow/scripts/*.py``) is::

    from precipmodes.steps.rulescript import rule_run

    def main(smk):
        with rule_run(smk) as params:
            some_rule_files(train=smk.input.train, output=smk.output[0], section=params["section"],
                            config=smk.config)

Each rule's file-level step is ``<rule>_files`` and takes keyword arguments only: its inputs and
outputs by what they are (``train=``, ``land_mask=``, ``output=``), each config section it reads
by the section's name (complete, as validated; outside Snakemake
:func:`precipmodes.config.section_defaults` fills a partial one) and the whole ``config=``
for the provenance.

:func:`rule_run` sends the ``precipmodes`` log to the rule's log file (an exception that
ends the script is written there with its traceback, see :func:`precipmodes.logs.configure`),
limits BLAS/OpenMP threads of the process to the rule's ``threads`` (threadpoolctl: numpy's
OpenBLAS would otherwise start one thread per core beside the rule's dask workers), sets dask's
threaded scheduler to as many workers (dask's default is one per core of the machine: the raw rule,
declared with 1 thread, generated the seed-scale demo on 2), and decodes
the rule's params, which the rule files pass as JSON strings (``section()`` and
``experiment_fields()`` in ``workflow/rules/common.smk``).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, Iterable, Iterator

import dask
from threadpoolctl import threadpool_limits

from precipmodes import logs


def decode_params(params: Any) -> dict[str, Any]:
    """``{name: json.loads(value)}`` for a Snakemake params object (every value a JSON string)."""
    return {str(name): json.loads(value) for name, value in params.items()}


@contextlib.contextmanager
def rule_run(smk: Any) -> Iterator[dict[str, Any]]:
    """Configure the log, limit BLAS threads to ``smk.threads``, yield the decoded params."""
    logs.configure(smk.log[0] if smk.log else None)
    threads = max(1, int(smk.threads))
    with threadpool_limits(limits=threads), dask.config.set(num_workers=threads):
        logs.log.info("rule %s: %d thread(s) (BLAS/OpenMP and dask workers limited to %d), mem_mb %s", smk.rule,
                      threads, threads, smk.resources.get("mem_mb", "-"))
        with logs.timed(f"rule {smk.rule}"):  # its "done in" line feeds the run's timing table
            yield decode_params(smk.params)


def workflow_rule(smk: Any, names: Iterable[str]) -> str:
    """The workflow's own name of the job's rule, one of ``names``: ``smk.rule``, or, when the workflow is
    used as a Snakemake module with ``use rule * from <module> as <prefix>*``, the name it ends with.

    For scripts shared by several rules, which pick their work by rule name.
    """
    for name in sorted(names, key=len, reverse=True):  # the longest first: a name may end another
        if smk.rule.endswith(name):
            return name
    raise ValueError(f"rule {smk.rule!r} runs a script for the rules {sorted(names)} only")
