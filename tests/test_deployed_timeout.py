"""The function's deployed timeout is written once (config/timing.py's DEPLOYED_TIMEOUT).

The deploy files set 60 s; the timer's handler and the links' function use it when FC's
context names none, the CLI holds a config to it, and a claim or a record is stale after
two of them. A second copy of the number drifts from the first when one is changed.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import schedulerx_alert
from schedulerx_alert.config.timing import DEPLOYED_TIMEOUT

ROOT = Path(__file__).resolve().parents[1]
SRC = Path(schedulerx_alert.__file__).parent


def test_every_deploy_file_sets_the_deployed_timeout() -> None:
    found = {
        name: [float(n) for n in re.findall(r"^\s*[Tt]imeout:\s*(\d+)\s*$", text, re.M)]
        for name in ("s.yaml", "s.actions.yaml", "template.yml")
        for text in [(ROOT / name).read_text(encoding="utf-8")]
    }
    assert found == {
        "s.yaml": [DEPLOYED_TIMEOUT],
        "s.actions.yaml": [DEPLOYED_TIMEOUT],
        "template.yml": [DEPLOYED_TIMEOUT, DEPLOYED_TIMEOUT],
    }


def _restated(path: Path) -> list[str]:
    """Where a module writes the deployed timeout as a number of its own: a name or a
    parameter about a timeout (or a staleness made of it) given 60 or 120 literally."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    for node in ast.walk(tree):
        pairs: list[tuple[str, ast.expr | None]] = []
        if isinstance(node, ast.Assign):
            pairs = [(t.id, node.value) for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            pairs = [(node.target.id, node.value)]
        elif isinstance(node, ast.arguments):
            named = [*node.posonlyargs, *node.args]
            pairs = list(
                zip(
                    [a.arg for a in named[len(named) - len(node.defaults) :]],
                    node.defaults,
                    strict=True,
                )
            )
            pairs += [(a.arg, d) for a, d in zip(node.kwonlyargs, node.kw_defaults, strict=True)]
        for name, value in pairs:
            about = "timeout" in name.lower() or "stale" in name.lower()
            if about and isinstance(value, ast.Constant) and value.value in (60, 120):
                found.append(f"{path.relative_to(SRC)} {name}")
    return found


def test_the_deployed_timeout_is_written_once_in_the_package() -> None:
    restated = [where for path in sorted(SRC.rglob("*.py")) for where in _restated(path)]
    # Main: handler.py DEFAULT_TIMEOUT, links/serve.py DEFAULT_TIMEOUT, cli/bounds.py
    # DEPLOYED_TIMEOUT, tick.py Edges.timeout, links/operate.py stale_after.
    assert restated == ["config/timing.py DEPLOYED_TIMEOUT"]


def test_the_entry_points_default_to_it() -> None:
    import inspect

    from schedulerx_alert import handler, tick
    from schedulerx_alert.cli import bounds
    from schedulerx_alert.links.operate import OperationDesk
    from schedulerx_alert.links.serve import SilenceDesk

    assert bounds.DEPLOYED_TIMEOUT is DEPLOYED_TIMEOUT
    assert inspect.signature(handler.run).parameters["timeout"].default == DEPLOYED_TIMEOUT
    assert tick.Edges.__dataclass_fields__["timeout"].default == DEPLOYED_TIMEOUT
    for desk in (OperationDesk, SilenceDesk):
        stale = inspect.signature(desk).parameters["stale_after"].default
        assert stale == 2 * DEPLOYED_TIMEOUT, desk
