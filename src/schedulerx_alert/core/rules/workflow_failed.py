"""A workflow instance failed: one finding naming its failed node(s) and the nodes that
did not run because of them; the failures of its nodes' runs fold into it.

The failure rule has already judged the instance (as the run of its workflow's key,
core/workflows.py); this turns that finding into a `workflow_failed` one with what
GetWorkflowInstance said of the DAG, and drops every job failure whose run is a node of
a failed instance this tick read, so the on-call engineer gets one message, not one per
node. Without the DAG (GetWorkflowInstance failed) the instance is still announced,
saying its nodes are unknown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType

from schedulerx_alert.core.findings import WORKFLOW_FAILED, Fact, Finding
from schedulerx_alert.core.model import JobKey
from schedulerx_alert.core.rules import workflow_recovered
from schedulerx_alert.core.workflows import WorkflowRun, is_workflow, workflow_id

# Nodes listed by name in a message; a bigger DAG is counted.
MAX_LISTED = 30


def fold(
    findings: Sequence[Finding],
    runs: Mapping[tuple[JobKey, int], WorkflowRun],
    names: Mapping[JobKey, str],
) -> list[Finding]:
    """`findings` with workflow failures and recoveries as their own kinds, and job
    failures whose run is a node of a failed workflow instance in `runs` left out."""
    nodes = {
        (JobKey(wf.namespace, wf.group, node.job_id), node.instance_id)
        for (wf, _), run in runs.items()
        for node in run.nodes
    }
    out: list[Finding] = []
    for found in findings:
        job = found.jobs[0] if len(found.jobs) == 1 else None
        if job is not None and is_workflow(job):
            if found.is_run_failure and found.instances:
                out.append(_failed(found, job, runs, names.get(job, "")))
            else:
                out.append(workflow_recovered.rename(found, job, names.get(job, "")))
        elif (
            found.is_run_failure
            and all((inst.job, inst.instance_id) in nodes for inst in found.instances)
            and found.instances
        ):
            continue  # announced by its workflow instance's finding
        else:
            out.append(found)
    return out


def _failed(
    found: Finding, job: JobKey, runs: Mapping[tuple[JobKey, int], WorkflowRun], name: str
) -> Finding:
    inst = found.instances[0]
    run = runs.get((job, inst.instance_id))
    facts: dict[str, Fact] = dict(found.facts)
    facts.update(workflow_id=workflow_id(job), workflow_name=name or (run.name if run else ""))
    if run is None:
        facts["nodes_known"] = False
        return replace(found, kind=WORKFLOW_FAILED, facts=MappingProxyType(facts))
    failed = run.failed_nodes()
    skipped = run.not_run()
    facts.update(
        nodes_known=True,
        node_count=len(run.nodes),
        failed_nodes=tuple(_label(n.name, n.job_id) for n in failed[:MAX_LISTED]),
        failed_instances=tuple(str(n.instance_id) for n in failed[:MAX_LISTED]),
        failed_errors=tuple(n.result for n in failed[:MAX_LISTED]),
        # Whose owners the message mentions (sources/evidence.py), as digits: a job id may
        # exceed a float's exact range.
        failed_job_ids=tuple(dict.fromkeys(str(n.job_id) for n in failed[:MAX_LISTED])),
        failed_count=len(failed),
        not_run=tuple(_label(n.name, n.job_id) for n in skipped[:MAX_LISTED]),
        not_run_count=len(skipped),
    )
    # The first failed node's error is the message's quoted error, as a job's Result is.
    error = next((n.result for n in failed if n.result), inst.result)
    return replace(
        found,
        kind=WORKFLOW_FAILED,
        instances=(replace(inst, result=error),),
        facts=MappingProxyType(facts),
    )


def _label(name: str, job_id: int) -> str:
    return f"{name} ({job_id})" if name else str(job_id)
