"""SchedulerX workflows for the loopback SchedulerX (tests/fakes/schedulerx.py).

The three read actions the product calls, in the answer shapes of the
`alibabacloud-schedulerx220190430` SDK's models (docs/workflows.md):

- ``ListWorkFlows`` (Namespace, GroupId, PageNum, PageSize, Status):
  ``Data.{Records[{WorkflowId, Name, Namespace, GroupId, Status, ...}], Total, PageNumber,
  PageSize}``
- ``ListWorkflowInstance`` (Namespace, GroupId, WorkflowId):
  ``Data.WfInstanceInfos[{WfInstanceId, WorkflowId, Status, ScheduleTime, StartTime, EndTime,
  DataTime}]``
- ``GetWorkflowInstance`` (Namespace, GroupId, WorkflowId, WfInstanceId):
  ``Data.{WfInstanceInfo{Status, ...times}, WfInstanceDag{Nodes[{JobId, JobInstanceId,
  JobName, Status, Result, Attempt, WorkAddr, ...times}], Edges[{Source, Target}]}}``, an
  edge from 0 marking a root node.

Each node of an instance is a run of its job, made with the fake's ``add_instance``, so
GetJobInstanceList lists it too, as SchedulerX lists a workflow's job runs. Requests pass
the same signature checks and per-API rate limit as every other action.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakes.schedulerx import FakeSchedulerX, TimeValue

WF_FINISHED = frozenset({4, 5})


@dataclass
class Workflow:
    namespace: str
    group: str
    workflow_id: int
    name: str
    jobs: tuple[int, ...]
    # Job-level dependencies (upstream job id, downstream job id).
    edges: tuple[tuple[int, int], ...]
    status: int = 1  # 1 enabled, 0 disabled


@dataclass
class WfInstance:
    wf_instance_id: int
    workflow_id: int
    status: int
    schedule_time: float
    start_time: float | None
    end_time: float | None
    # Job id -> the job instance that is its node in this instance.
    nodes: dict[int, int] = field(default_factory=dict)


class Workflows:
    def __init__(self, sx: FakeSchedulerX) -> None:
        self.sx = sx
        self._workflows: dict[int, Workflow] = {}
        self._instances: dict[int, WfInstance] = {}
        self._ids = itertools.count(1_800_000_000_001)

    def handlers(self) -> Mapping[str, Callable[[dict[str, str]], dict[str, Any]]]:
        return {
            "ListWorkFlows": self._list_workflows,
            "ListWorkflowInstance": self._list_instances,
            "GetWorkflowInstance": self._get_instance,
        }

    # -- scripting ----------------------------------------------------------------------

    def add(
        self,
        namespace: str,
        group: str,
        workflow_id: int,
        name: str,
        jobs: tuple[int, ...],
        edges: tuple[tuple[int, int], ...] = (),
        *,
        status: int = 1,
    ) -> Workflow:
        """A workflow of existing jobs (``add_job`` first); ``edges`` (upstream, downstream)."""
        for job_id in jobs:
            self.sx._job(job_id)
        flow = Workflow(namespace, group, workflow_id, name, tuple(jobs), tuple(edges), status)
        with self.sx._lock:
            self._workflows[workflow_id] = flow
        return flow

    def run(
        self,
        workflow_id: int,
        status: int,
        nodes: Mapping[int, tuple[int, str]] | None = None,
        *,
        schedule_time: TimeValue = None,
        end_time: TimeValue = None,
    ) -> int:
        """An instance of the workflow in ``status`` (1 pending .. 4 success, 5 failed);
        ``nodes``: job id -> (status, Result) of its run; a node left out is a success when
        the instance succeeded, else waiting (1, never started). Returns its id."""
        flow = self._workflows[workflow_id]
        sx = self.sx
        now = sx.clock()
        scheduled = sx._epoch(schedule_time, now)
        ended = sx._maybe_epoch(end_time)
        if ended is None and status in WF_FINISHED:
            ended = now
        given = dict(nodes or {})
        made: dict[int, int] = {}
        for job_id in flow.jobs:
            node_status, result = given.get(job_id, (4 if status == 4 else 1, ""))
            made[job_id] = sx.add_instance(
                job_id,
                status=node_status,
                result=result,
                schedule_time=scheduled,
                started=node_status != 1,
                end_time=ended if node_status in (4, 5) else None,
            )
        with sx._lock:
            wf_id = next(self._ids)
            self._instances[wf_id] = WfInstance(
                wf_id, workflow_id, status, scheduled, scheduled, ended, made
            )
        return wf_id

    def finish(self, wf_instance_id: int, status: int, *, end_time: TimeValue = None) -> None:
        """End a running instance in ``status`` (4 success, 5 failed), EndTime now unless
        given; its nodes' runs are moved with the fake's ``set_status``."""
        sx = self.sx
        ended = sx._epoch(end_time, sx.clock())
        with sx._lock:
            run = self._instances[wf_instance_id]
            run.status = status
            run.end_time = ended

    def node(self, wf_instance_id: int, job_id: int) -> int:
        """The job instance that is ``job_id``'s node in the instance."""
        with self.sx._lock:
            return self._instances[wf_instance_id].nodes[job_id]

    # -- actions (called with the fake's lock held) --------------------------------------

    def _flow(self, params: dict[str, str]) -> Workflow:
        from tests.fakes.schedulerx import BusinessError, _int_param

        self.sx._require(params, "RegionId", "Namespace", "GroupId", "WorkflowId")
        flow = self._workflows.get(_int_param(params, "WorkflowId"))
        if flow is None or (flow.namespace, flow.group) != (params["Namespace"], params["GroupId"]):
            raise BusinessError(f"workflowId={params['WorkflowId']} is not existed")
        return flow

    def _list_workflows(self, params: dict[str, str]) -> dict[str, Any]:
        self.sx._require(params, "RegionId", "Namespace", "GroupId")
        flows = [
            f
            for _, f in sorted(self._workflows.items())
            if (f.namespace, f.group) == (params["Namespace"], params["GroupId"])
        ]
        if params.get("Status"):
            flows = [f for f in flows if str(f.status) == params["Status"]]
        page, size = self.sx._page(params, default_size=10)
        chosen = flows[(page - 1) * size : page * size]
        return {
            "Records": [
                {
                    "WorkflowId": f.workflow_id,
                    "Name": f.name,
                    "Namespace": f.namespace,
                    "GroupId": f.group,
                    "Status": str(f.status),
                    "TimeType": "1",
                    "TimeExpression": "0 0 2 * * ?",
                    "Description": "",
                    "MaxConcurrency": "1",
                    "Creator": "fake",
                    "Updater": "fake",
                    "Calendar": "",
                }
                for f in chosen
            ],
            "Total": len(flows),
            "PageNumber": page,
            "PageSize": size,
        }

    def _list_instances(self, params: dict[str, str]) -> dict[str, Any]:
        flow = self._flow(params)
        runs = [i for i in self._instances.values() if i.workflow_id == flow.workflow_id]
        runs.sort(key=lambda i: (i.schedule_time, i.wf_instance_id), reverse=True)
        return {"WfInstanceInfos": [self._info(i, with_ids=True) for i in runs[:10]]}

    def _get_instance(self, params: dict[str, str]) -> dict[str, Any]:
        from tests.fakes.schedulerx import BusinessError, _int_param

        flow = self._flow(params)
        self.sx._require(params, "WfInstanceId")
        run = self._instances.get(_int_param(params, "WfInstanceId"))
        if run is None or run.workflow_id != flow.workflow_id:
            raise BusinessError(f"wfInstanceId={params['WfInstanceId']} is not existed")
        nodes = []
        for job_id, iid in run.nodes.items():
            inst = self.sx._instances[iid]
            node: dict[str, Any] = {
                "JobId": job_id,
                "JobInstanceId": iid,
                "JobName": self.sx._jobs[job_id].name,
                "Status": inst.status,
                "Result": inst.result,
                "Attempt": 0,
                "WorkAddr": inst.work_addr,
                "ScheduleTime": self.sx._format(inst.schedule_time),
                "DataTime": self.sx._format(inst.data_time),
            }
            if inst.start_time is not None:
                node["StartTime"] = self.sx._format(inst.start_time)
            if inst.end_time is not None:
                node["EndTime"] = self.sx._format(inst.end_time)
            nodes.append(node)
        downstream = {target for _, target in flow.edges}
        edges = [{"Source": 0, "Target": run.nodes[j]} for j in flow.jobs if j not in downstream]
        edges += [{"Source": run.nodes[a], "Target": run.nodes[b]} for a, b in flow.edges]
        return {
            "WfInstanceInfo": self._info(run, with_ids=False),
            "WfInstanceDag": {"Nodes": nodes, "Edges": edges},
        }

    def _info(self, run: WfInstance, *, with_ids: bool) -> dict[str, Any]:
        fmt = self.sx._format
        info: dict[str, Any] = {
            "Status": run.status,
            "ScheduleTime": fmt(run.schedule_time),
            "DataTime": fmt(run.schedule_time),
        }
        if with_ids:
            info = {"WfInstanceId": run.wf_instance_id, "WorkflowId": run.workflow_id, **info}
        if run.start_time is not None:
            info["StartTime"] = fmt(run.start_time)
        if run.end_time is not None:
            info["EndTime"] = fmt(run.end_time)
        return info
