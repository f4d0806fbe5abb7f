"""The suite's own xdist grouping (tests/conftest.py: the folders of tests/workflow/) takes effect when it runs grouped.

pytest 9.2's structured node ids made pytest-xdist's ``--dist loadgroup`` drop the groups without
a word (pytest-dev/pytest-xdist#1386); this test fails when that happens again.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest


def test_loadgroup_puts_the_group_into_the_node_id(request):
    config = request.config
    if not hasattr(config, "workerinput") or not config.getvalue("loadgroup"):
        pytest.skip("not an xdist worker of a --dist loadgroup run (e.g. -n 0)")
    assert request.node.nodeid.endswith("@test_test_groups"), request.node.nodeid


SESSION_RUNS = ("demo_run", "tiny_run")  # conftest.py's session fixtures that build a whole workflow run


def test_the_files_of_a_session_run_share_its_folder():
    """A file that takes the session fixture ``demo_run`` lives in tests/workflow/demo_run/, one that takes
    only ``tiny_run`` in tests/workflow/tiny_run/, so each run is built once per group, on one worker; the
    SLURM files share tests/workflow/slurm/."""
    from conftest import xdist_group_of

    tests = Path(__file__).resolve().parents[1]
    for path in sorted(tests.rglob("test_*.py")):
        text = path.read_text(encoding="utf-8")
        uses = [run for run in SESSION_RUNS if re.search(rf"def test_\w+\([^)]*\b{run}\b", text)
                or re.search(rf"def \w+\([^)]*\b{run}\b[^)]*\)", text)]
        if uses:  # the first run it takes (test_archive.py takes both: demo_run's folder, tiny_run built twice)
            assert xdist_group_of(path) == uses[0], f"{path.relative_to(tests)} takes {uses[0]}: move it there"
        if path.name.startswith("test_slurm"):
            assert xdist_group_of(path) == "slurm", path
