from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.world import World


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with World(tmp_path) as w:
        yield w


@pytest.fixture
def oss_world(tmp_path: Path) -> Iterator[World]:
    with World(tmp_path, state="oss") as w:
        yield w
