"""Session fixtures shared by every test directory: where the shared devset and samples are."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from testkit import devset_dir  # noqa: E402


@pytest.fixture(scope="session")
def devset() -> Path:
    d = devset_dir()
    if d is None:
        pytest.skip("../shared/devset is absent (set NIANBAO_DEVSET to run the devset tests)")
    return d


@pytest.fixture(scope="session")
def matcher():
    from extractors.mapping import LabelMatcher
    return LabelMatcher()
