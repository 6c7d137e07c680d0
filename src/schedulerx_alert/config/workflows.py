"""The config's `workflows:` section: SchedulerX workflows watched as a whole.

```yaml
workflows:
  - namespace: adcfc35d-...
    group: etl.defaultGroup
    workflows: all            # or ids: [301, 302]
    receivers: [ops]
    recovery: true            # a later successful instance is announced (default)
```

A failed workflow instance is one message naming its failed node(s) and the nodes that
did not run because of them; failures of its nodes' runs fold into it (core/rules). The
parser takes config.py's `fail(path, message)`, so every problem is reported at once.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

_KEYS = ("namespace", "group", "workflows", "receivers", "recovery")
# A workflow id is a positive 64-bit number, as SchedulerX's job ids are.
_MAX_ID = 2**63 - 1
MAX_IDS = 1000


@dataclass(frozen=True)
class WorkflowWatch:
    namespace: str
    group: str
    receivers: tuple[str, ...]
    # Empty with `all_workflows`: every workflow ListWorkFlows lists for the group.
    ids: tuple[int, ...] = ()
    all_workflows: bool = False
    recovery: bool = True


def parse_workflows(
    raw: Any, declared: Collection[str], fail: Callable[[str, str], None]
) -> tuple[WorkflowWatch, ...]:
    """The section's entries (an entry with a problem is left out, its problem said)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        fail("workflows", f"must be a list of entries, not {_show(raw)}")
        return ()
    entries: list[WorkflowWatch] = []
    for index, item in enumerate(raw):
        entry = _entry(item, f"workflows[{index}]", declared, fail)
        if entry is not None:
            entries.append(entry)
    return tuple(entries)


def _entry(
    item: Any, path: str, declared: Collection[str], fail: Callable[[str, str], None]
) -> WorkflowWatch | None:
    if not isinstance(item, dict):
        fail(
            path,
            f"must be a mapping with namespace, group, workflows, receivers, not {_show(item)}",
        )
        return None
    ok = True
    for key in item:
        if key not in _KEYS:
            fail(f"{path}.{str(key)[:60]}", "unknown key")
            ok = False
    names: dict[str, str] = {}
    for key in ("namespace", "group"):
        value = item.get(key)
        if not isinstance(value, str) or not value.strip():
            fail(f"{path}.{key}", f"must be a non-empty string, not {_show(value)}")
            ok = False
        else:
            names[key] = value
    chosen = item.get("workflows")
    ids: list[int] = []
    every = chosen == "all"
    if not every:
        if not isinstance(chosen, list) or not chosen:
            fail(
                f"{path}.workflows", f"must be `all` or a list of workflow ids, not {_show(chosen)}"
            )
            ok = False
        elif len(chosen) > MAX_IDS:
            fail(f"{path}.workflows", f"lists {len(chosen)} ids; at most {MAX_IDS}")
            ok = False
        else:
            for at, value in enumerate(chosen):
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int)
                    or not 0 < value <= _MAX_ID
                ):
                    fail(f"{path}.workflows[{at}]", f"must be a workflow id, not {_show(value)}")
                    ok = False
                elif value not in ids:
                    ids.append(value)
    receivers = item.get("receivers")
    if not isinstance(receivers, list) or not receivers:
        fail(f"{path}.receivers", f"must be a list of receiver names, not {_show(receivers)}")
        ok = False
    else:
        for at, name in enumerate(receivers):
            if not isinstance(name, str) or name not in declared:
                fail(f"{path}.receivers[{at}]", f"unknown receiver {_show(name)}")
                ok = False
    recovery = item.get("recovery", True)
    if not isinstance(recovery, bool):
        fail(f"{path}.recovery", f"must be true or false, not {_show(recovery)}")
        ok = False
    if not ok:
        return None
    return WorkflowWatch(
        namespace=names["namespace"],
        group=names["group"],
        receivers=tuple(dict.fromkeys(receivers)),  # type: ignore[arg-type]
        ids=tuple(ids),
        all_workflows=every,
        recovery=recovery,
    )


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value[:60]) + ("…" if len(value) > 60 else "")
    text = repr(value)
    return text[:60] + ("…" if len(text) > 60 else "")
