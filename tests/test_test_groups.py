"""The suite's own xdist grouping (tests/conftest.py TEST_GROUPS) takes effect when it runs grouped.

pytest 9.2's structured node ids made pytest-xdist's ``--dist loadgroup`` drop the groups without
a word (pytest-dev/pytest-xdist#1386); this test fails when that happens again.
"""

from __future__ import annotations

import pytest


def test_loadgroup_puts_the_group_into_the_node_id(request):
    config = request.config
    if not hasattr(config, "workerinput") or not config.getvalue("loadgroup"):
        pytest.skip("not an xdist worker of a --dist loadgroup run (e.g. -n 0)")
    assert request.node.nodeid.endswith("@test_test_groups"), request.node.nodeid
