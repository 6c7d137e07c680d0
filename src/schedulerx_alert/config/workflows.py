"""The config's `workflows:` section: SchedulerX workflows watched as a whole.

```yaml
workflows:
  - namespace: adcfc35d-...
    group: etl.defaultGroup
    workflows: all            # or ids: [301, 302]
    receivers: [ops]
    recovery: true            # a later successful instance is announced (default)
    mention_owners: true      # @-mention the failed nodes' jobs' contacts
    include_log: true         # the first failed node's last log lines (GetLog)
```

A failed workflow instance is one message naming its failed node(s) and the nodes that
did not run because of them; failures of its nodes' runs fold into it (core/rules). Each
entry is a described record (config/schema.py), read by the config's walker, so its
defaults are stated once and docs/config-reference.md is written from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schedulerx_alert.config.schema import Invalid, Missing, Walker, boolean, option, show
from schedulerx_alert.config.watch import receiver_names

# A workflow id is a positive 64-bit number, as SchedulerX's job ids are.
_MAX_ID = 2**63 - 1
MAX_IDS = 1000
ALL = "all"


@dataclass(frozen=True)
class WorkflowWatch:
    namespace: str
    group: str
    receivers: tuple[str, ...]
    # Empty with `all_workflows`: every workflow ListWorkFlows lists for the group.
    ids: tuple[int, ...] = ()
    all_workflows: bool = False
    recovery: bool = True
    # @-mention the SchedulerX contacts of a failed instance's failed nodes' jobs.
    mention_owners: bool = False
    # Show the last log lines of the instance's first failed node (one GetLog call).
    include_log: bool = False


# -- readers -------------------------------------------------------------------


def _name(walker: Walker, raw: Any, path: str) -> str:
    if raw is None:
        raise Missing
    if not isinstance(raw, str) or not raw.strip():
        raise Invalid(f"must be a non-empty string, not {show(raw)}")
    return raw


def _chosen(walker: Walker, raw: Any, path: str) -> tuple[int, ...] | str:
    """`all`, or workflow ids (each once, in their order)."""
    if raw == ALL:
        return ALL
    if not isinstance(raw, list) or not raw:
        raise Invalid(f"must be `all` or a list of workflow ids, not {show(raw)}")
    if len(raw) > MAX_IDS:
        raise Invalid(f"lists {len(raw)} ids; at most {MAX_IDS}")
    ids: list[int] = []
    for at, value in enumerate(raw):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _MAX_ID:
            walker.fail(f"{path}[{at}]", f"must be a workflow id, not {show(value)}")
        elif value not in ids:
            ids.append(value)
    return tuple(ids)


@dataclass(frozen=True, kw_only=True)
class WorkflowEntry:
    """One `workflows:` entry as the file writes it."""

    namespace: str = option(read=_name, doc="the SchedulerX namespace id", example="adcfc35d-e2fe")
    group: str = option(read=_name, doc="the app group", example="etl.defaultGroup")
    workflows: tuple[int, ...] | str = option(
        read=_chosen,
        doc="workflow ids, or all: every enabled workflow of the group (ListWorkFlows)",
        example="[301, 302]",
    )
    receivers: tuple[str, ...] = option(
        read=receiver_names, doc="receiver names from `receivers`", example="[ops]"
    )
    recovery: bool = option(True, read=boolean, doc="a later successful instance says so")
    # Absent: the config's top-level option of the same name.
    mention_owners: bool | None = option(
        None,
        read=boolean,
        doc="@-mention the SchedulerX contacts of the failed nodes' jobs",
        example="false",
    )
    # Absent: the config's top-level option of the same name.
    include_log: bool | None = option(
        None,
        read=boolean,
        doc="add the first failed node's last log lines (GetLog, one call per failed instance)",
        example="false",
    )


def read_workflows(
    walker: Walker, raw: Any, evidence: dict[str, bool]
) -> tuple[WorkflowWatch, ...]:
    """The section's entries (an entry with a problem is left out, its problem said);
    `evidence`: the top-level defaults of mention_owners and include_log."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        walker.fail("workflows", f"must be a list of entries, not {show(raw)}")
        return ()
    entries: list[WorkflowWatch] = []
    for index, item in enumerate(raw):
        path = f"workflows[{index}]"
        if not isinstance(item, dict):
            walker.fail(
                path,
                f"must be a mapping with namespace, group, workflows, receivers, not {show(item)}",
            )
            continue
        before = len(walker.problems)
        values, complete = walker.values(WorkflowEntry, item, path)
        if not complete or len(walker.problems) > before:
            continue
        entry = WorkflowEntry(**values)
        owners, logs, chosen = entry.mention_owners, entry.include_log, entry.workflows
        entries.append(
            WorkflowWatch(
                namespace=entry.namespace,
                group=entry.group,
                receivers=entry.receivers,
                ids=chosen if isinstance(chosen, tuple) else (),
                all_workflows=chosen == ALL,
                recovery=entry.recovery,
                mention_owners=evidence["mention_owners"] if owners is None else owners,
                include_log=evidence["include_log"] if logs is None else logs,
            )
        )
    return tuple(entries)


def owner_of(
    entries: tuple[WorkflowWatch, ...], namespace: str, group: str, wf_id: int
) -> int | None:
    """The index of the entry a workflow belongs to, as a job belongs to its watch entry
    (sources/discovery.py): the first entry of its group naming it by id, else the first
    of its group with `workflows: all`. Only that entry's receivers and options apply."""
    mine = [(i, e) for i, e in enumerate(entries) if (e.namespace, e.group) == (namespace, group)]
    by_id = next((i for i, e in mine if wf_id in e.ids), None)
    if by_id is not None:
        return by_id
    return next((i for i, e in mine if e.all_workflows), None)
