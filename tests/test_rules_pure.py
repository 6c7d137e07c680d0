"""The core stays pure: no I/O or clock modules, no clock reads, nothing from outside core/."""

from __future__ import annotations

import ast
from pathlib import Path

import schedulerx_alert.core

CORE = Path(schedulerx_alert.core.__file__).parent
# I/O, clocks and randomness; everything a rule needs comes in as an argument.
FORBIDDEN = {"os", "time", "socket", "random", "subprocess", "http", "urllib", "requests", "oss2"}
# Of the flat package, only the domain records (core/model.py once they move) and the
# decorator that defines records (records.py: no I/O, no clock).
ALLOWED_SIBLINGS = {"model", "records"}
CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic"}


def problems_in(source: str, name: str, depth: int) -> list[str]:
    """`depth`: 1 for core/x.py, 2 for core/rules/x.py."""
    tree = ast.parse(source)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level > depth:  # above core/: a sibling of core in the flat package
                sibling = (node.module or "").split(".")[0]
                if sibling not in ALLOWED_SIBLINGS:
                    found.append(f"{name}:{node.lineno} imports ..{sibling}")
                continue
            names = [node.module or ""] if node.level == 0 else []
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in CLOCK_CALLS:
                found.append(f"{name}:{node.lineno} reads the clock (.{node.func.attr}())")
            continue
        else:
            continue
        for module in names:
            top = module.split(".")[0]
            if top in FORBIDDEN or (top == "schedulerx_alert" and ".core" not in module):
                found.append(f"{name}:{node.lineno} imports {module}")
    return found


def test_core_modules_do_no_io_and_read_no_clock() -> None:
    files = sorted(CORE.rglob("*.py"))
    assert any(f.parent.name == "rules" for f in files)
    problems = [
        problem
        for f in files
        for problem in problems_in(
            f.read_text(encoding="utf-8"), f.name, len(f.relative_to(CORE).parts)
        )
    ]
    assert problems == []


def test_the_check_notices_io_outside_core_and_clock_reads() -> None:
    source = "import time\nfrom ...tick import run\nfrom ..findings import F\nx = datetime.now()\n"
    assert problems_in(source, "probe.py", 2) == [
        "probe.py:1 imports time",
        "probe.py:2 imports ..tick",
        "probe.py:4 reads the clock (.now())",
    ]
