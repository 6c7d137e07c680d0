"""A workflow whose failed instance was announced had a later instance succeed.

The recovery rule has judged it (the workflow's key, core/workflows.py, has the memory
of an announced failure); this names it `workflow_recovered`, with the workflow's id and
name. Any other finding about a workflow's key (stuck) keeps its kind.
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from schedulerx_alert.core.findings import RECOVERED, WORKFLOW_RECOVERED, Finding
from schedulerx_alert.core.model import JobKey
from schedulerx_alert.core.workflows import workflow_id


def rename(found: Finding, job: JobKey, name: str) -> Finding:
    if found.kind != RECOVERED:
        return found
    facts = {**found.facts, "workflow_id": workflow_id(job), "workflow_name": name}
    return replace(found, kind=WORKFLOW_RECOVERED, facts=MappingProxyType(facts))
