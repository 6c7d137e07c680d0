"""The core stays pure: no I/O or clock modules, no clock reads, nothing from outside core/."""

from __future__ import annotations

import ast
from pathlib import Path

import schedulerx_alert.core

CORE = Path(schedulerx_alert.core.__file__).parent
# I/O, clocks and randomness; everything a rule needs comes in as an argument.
FORBIDDEN = {"os", "time", "socket", "random", "subprocess", "http", "urllib", "requests", "oss2"}
# Nothing of the package outside core/.
ALLOWED_SIBLINGS: set[str] = set()
CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic"}
CLOCKS = {"time", "datetime", "date"}
# Pure string functions, whatever the rest of urllib does.
PURE = {"urllib.parse"}


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
            module = node.module or ""
            if module.startswith("schedulerx_alert.") and not module.startswith(
                "schedulerx_alert.core"
            ):
                found.append(f"{name}:{node.lineno} imports {module}")
                continue
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            # time.time(), datetime.now(), dt.datetime.now(), date.today(): a clock's
            # module or class; a reader's own .time(value) is no clock.
            owner = node.func.value
            owner_name = (
                owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            )
            if node.func.attr in CLOCK_CALLS and owner_name in CLOCKS:
                found.append(f"{name}:{node.lineno} reads the clock (.{node.func.attr}())")
            continue
        else:
            continue
        for module in names:
            top = module.split(".")[0]
            if (top in FORBIDDEN and module not in PURE) or (
                top == "schedulerx_alert" and ".core" not in module
            ):
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
    source = (
        "import time\nfrom ...tick import run\nfrom ..findings import F\nx = datetime.now()\n"
        "import urllib.request\nfrom urllib.parse import quote\ny = reader.time(3)\n"
        "z = time.time()\nfrom schedulerx_alert.config import C\n"
        "from schedulerx_alert.core.model import M\n"
    )
    assert sorted(problems_in(source, "probe.py", 2)) == [
        "probe.py:1 imports time",
        "probe.py:2 imports ..tick",
        "probe.py:4 reads the clock (.now())",
        "probe.py:5 imports urllib.request",
        "probe.py:8 reads the clock (.time())",
        "probe.py:9 imports schedulerx_alert.config",
    ]
