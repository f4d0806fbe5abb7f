"""Shared test fixtures.

Real data files live in ../shared/data (beside the repository); tests that need
them skip with a reason when the folder is absent (a user's clone), but under
CI (CI=true) a missing folder is an error, so those tests always run there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def require(condition: bool, reason: str) -> None:
    """Skip when ``condition`` is false, except under CI where it fails the test."""
    if condition:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of real precipitation files (../shared/data)."""
    require(SHARED_DATA.is_dir(), f"{SHARED_DATA} not found (real-data tests need ../shared/data)")
    return SHARED_DATA
