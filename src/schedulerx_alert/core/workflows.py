"""A SchedulerX workflow and its instances, as the rules see them.

A workflow's instances go through the same rules as a job's runs (failure, recovery,
dedup by the state's run records, silences, routes): each workflow is watched as a job
whose key carries the workflow id negated (`workflow_key`), which no job id can be, so
a workflow never shares a record or a fingerprint with a job of its group. What
GetWorkflowInstance says of a failed instance's nodes travels beside it
(`WorkflowRun`), for core/rules/workflow_failed.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from schedulerx_alert.core.model import InstanceStatus, JobKey

# A node's run that failed (and so failed its instance).
FAILED_STATUSES = frozenset(
    {
        InstanceStatus.FAILED,
        InstanceStatus.REJECTED,
        InstanceStatus.KILLED,
        InstanceStatus.PARTIAL_FAILED,
    }
)


def workflow_key(namespace: str, group: str, workflow_id: int) -> JobKey:
    return JobKey(namespace, group, -workflow_id)


def is_workflow(job: JobKey) -> bool:
    return job.job_id < 0


def workflow_id(job: JobKey) -> int:
    return -job.job_id


@dataclass(frozen=True)
class WorkflowNode:
    """One node of a workflow instance's DAG: a job's run (WfInstanceDag.Nodes)."""

    job_id: int
    instance_id: int
    name: str
    status_code: int
    result: str = ""

    @property
    def failed(self) -> bool:
        return self.status_code in FAILED_STATUSES

    @property
    def ran(self) -> bool:
        """It ran, or runs: it succeeded, failed or is running. Waiting, skipped (as a node
        below a failed one may be marked) or anything else: it did not run."""
        return self.status_code in (InstanceStatus.SUCCESS, InstanceStatus.RUNNING) or self.failed


@dataclass(frozen=True)
class WorkflowRun:
    """A workflow instance's DAG: its nodes and edges (upstream, downstream). Read for a
    failed instance, and for one still running when a job's failure may be its node's."""

    workflow: JobKey
    instance_id: int
    name: str
    nodes: tuple[WorkflowNode, ...]
    edges: tuple[tuple[int, int], ...] = ()

    def failed_nodes(self) -> tuple[WorkflowNode, ...]:
        return tuple(n for n in self.nodes if n.failed)

    def not_run(self) -> tuple[WorkflowNode, ...]:
        """The nodes downstream of a failed node that did not run: they did not run
        because of it. Without edges, every node that did not run."""
        failed = {n.instance_id for n in self.failed_nodes()}
        if not self.edges:
            return tuple(n for n in self.nodes if not n.ran)
        below: dict[int, list[int]] = {}
        for source, target in self.edges:
            below.setdefault(source, []).append(target)
        reached: set[int] = set()
        todo = list(failed)
        while todo:
            for nxt in below.get(todo.pop(), ()):
                if nxt not in reached and nxt not in failed:
                    reached.add(nxt)
                    todo.append(nxt)
        return tuple(n for n in self.nodes if n.instance_id in reached and not n.ran)
