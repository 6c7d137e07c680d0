from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.world import World

# Property tests draw few examples in `make test`, so the suite stays quick enough to run
# before every commit, and many in `make test-deep` (HYPOTHESIS_PROFILE=deep), before a
# release or after touching the core. Neither has a deadline: CI machines are noisy.
settings.register_profile("quick", max_examples=25, deadline=None)
settings.register_profile("deep", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Captured output may hold what a hostile test feeds the product (a lone surrogate in
    a log line); pytest-xdist's workers send reports as UTF-8, so such characters travel as
    escapes rather than crash the run."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    report.sections = [(title, _sendable(text)) for title, text in report.sections]
    if isinstance(report.longrepr, str):
        report.longrepr = _sendable(report.longrepr)


def _sendable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with World(tmp_path) as w:
        yield w


@pytest.fixture
def oss_world(tmp_path: Path) -> Iterator[World]:
    with World(tmp_path, state="oss") as w:
        yield w
