"""Read the watched workflows (config `workflows:`): their instances, and the DAG of each
failed one.

Per entry: the workflows (ListWorkFlows, paged, for `workflows: all`; else the ids), then
per workflow its instances (ListWorkflowInstance), listed as the runs of the workflow's
key (core/workflows.py) so the rules judge them as a job's runs; then, per failed
instance the state does not know as failed yet, its DAG (GetWorkflowInstance): the
failed nodes with their error text and the nodes that did not run. Every call goes
through its API's one-minute budget (poll.Budgets, kept in the state with the others);
what could not be read is a problem of the tick, never a quiet gap.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from schedulerx_alert.config import Config
from schedulerx_alert.config.workflows import WorkflowWatch, owner_of
from schedulerx_alert.core.diff import Target
from schedulerx_alert.core.model import InstanceStatus, JobInstance, JobKey
from schedulerx_alert.core.polling import SourceState
from schedulerx_alert.core.rules.settings import DEFAULT_SETTINGS
from schedulerx_alert.core.state import JobRecord, State, attempt_of
from schedulerx_alert.core.workflows import (
    FAILED_STATUSES,
    WorkflowNode,
    WorkflowRun,
    is_workflow,
    workflow_id,
    workflow_key,
)
from schedulerx_alert.sources.fetch import RetryPolicy, attempt
from schedulerx_alert.sources.poll import Budgets
from schedulerx_alert.sources.schedulerx import SchedulerXClient

LIST_WORKFLOWS = "ListWorkFlows"
LIST_INSTANCES = "ListWorkflowInstance"
GET_INSTANCE = "GetWorkflowInstance"
ACTIONS = (LIST_WORKFLOWS, LIST_INSTANCES, GET_INSTANCE)
_PAGE = 100
_MAX_PAGES = 50
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_ERROR_CAP = 4000


@dataclass
class WorkflowRead:
    # Each workflow's instances, as the runs of its key.
    polls: dict[JobKey, list[JobInstance]] = field(default_factory=dict)
    targets: dict[JobKey, Target] = field(default_factory=dict)
    runs: dict[tuple[JobKey, int], WorkflowRun] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    sources: SourceState = field(default_factory=SourceState)


def read_workflows(
    config: Config,
    client: SchedulerXClient | None,
    state: State,
    sources: SourceState,
    deadline: float,
    retry: RetryPolicy | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    polls: Mapping[JobKey, Sequence[JobInstance]] | None = None,
) -> WorkflowRead:
    """`sources` as this tick's polling left it: its call times seed the workflow APIs'
    budgets, and `WorkflowRead.sources` is it with this read's calls added. `polls`: the
    jobs' runs this tick read; a failed one the state does not know yet, in the group of
    a watched workflow with a running instance, has that instance's DAG read, so that a
    node failing while another branch still runs folds into the instance's message."""
    done = WorkflowRead(sources=sources)
    if not config.workflows:
        return done
    budgets = Budgets(config.schedulerx.max_calls_per_minute, sources.calls, clock)
    cutoff = clock() - config.first_run_lookback.total_seconds()
    failed = _failed_runs(polls or {}, state, cutoff)
    try:
        _read(config, client, state, budgets, deadline, retry, clock, sleep, done, failed)
    finally:
        recent = budgets.recent()
        calls = {**sources.calls, **{a: recent[a] for a in ACTIONS if recent.get(a)}}
        done.sources = replace(sources, calls=calls)
    return done


def _read(
    config: Config,
    client: SchedulerXClient | None,
    state: State,
    budgets: Budgets,
    deadline: float,
    retry: RetryPolicy | None,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    done: WorkflowRead,
    failed: dict[tuple[str, str], set[int]],
) -> None:
    if client is None:
        done.problems.append("workflows not read: no SchedulerX client (see the lines above)")
        _keep(state, config, done)
        return
    policy = retry or RetryPolicy()
    failures: list[str] = []

    def call(action: str, params: dict[str, str]) -> Any:
        tried = attempt(
            lambda: client.call(action, params),
            budgets[action],
            deadline,
            client.timeout,
            policy,
            clock,
            sleep,
        )
        done.calls[action] = done.calls.get(action, 0) + tried.calls
        if tried.value is None:
            raise _Failed(str(tried.error) if tried.error else (tried.stopped or "not asked"))
        return tried.value

    # A workflow never polled before has a past the rules keep quiet (the first-run
    # lookback): its older failed instances need no DAG.
    cutoff = clock() - config.first_run_lookback.total_seconds()
    for index, entry in enumerate(config.workflows):
        where = f"{entry.namespace}/{entry.group}"
        base = {"Namespace": entry.namespace, "GroupId": entry.group}
        try:
            named = _workflows(entry, functools.partial(_ask, call, LIST_WORKFLOWS, base))
        except _Failed as exc:
            failures.append(f"workflows[{index}] {where}: the workflow list: {exc}")
            _keep(state, config, done, index)
            continue
        for wf_id, name in named.items():
            if owner_of(config.workflows, entry.namespace, entry.group, wf_id) != index:
                continue  # an earlier entry, or one naming it by id, watches it
            key = workflow_key(entry.namespace, entry.group, wf_id)
            settings = replace(DEFAULT_SETTINGS, recovery=entry.recovery)
            done.targets[key] = Target(name or f"workflow {wf_id}", entry.receivers, rules=settings)
            try:
                body = call(LIST_INSTANCES, {**base, "WorkflowId": str(wf_id)})
            except _Failed as exc:
                failures.append(f"workflow {where}/{wf_id}: {exc}")
                continue
            runs = _instances(key, body, config.zone)
            done.polls[key] = runs
            record = state.jobs.get(key)
            # The group's failed job runs no DAG read this tick has placed yet.
            unplaced = failed.get((entry.namespace, entry.group), set())
            for run in runs:
                if run.status is InstanceStatus.FAILED:
                    if not _new(run, record, cutoff):
                        continue
                elif run.terminal or not unplaced:
                    continue
                try:
                    dag = call(
                        GET_INSTANCE,
                        {**base, "WorkflowId": str(wf_id), "WfInstanceId": str(run.instance_id)},
                    )
                except _Failed as exc:
                    failures.append(
                        f"workflow {where}/{wf_id} instance {run.instance_id}: its nodes: {exc}"
                    )
                    continue
                parsed = _dag(key, run.instance_id, name, dag)
                if parsed is None:
                    failures.append(
                        f"workflow {where}/{wf_id} instance {run.instance_id}: its nodes: "
                        "GetWorkflowInstance's answer has no readable Data.WfInstanceDag"
                    )
                else:
                    done.runs[(key, run.instance_id)] = parsed
                    unplaced -= {node.instance_id for node in parsed.nodes}
    if failures:
        nodes = any("its nodes" in failure for failure in failures)
        done.problems.append(
            f"{len(failures)} workflow read(s) failed, e.g. {failures[0]}; "
            + (
                "a failed instance whose nodes could not be read is announced without them, "
                "and its nodes' failures on their own"
                if nodes
                else "they are read again next tick"
            )
        )


def _failed_runs(
    polls: Mapping[JobKey, Sequence[JobInstance]], state: State, cutoff: float
) -> dict[tuple[str, str], set[int]]:
    """Per group, the failed job runs of this tick's polls that the state does not know
    as failed: the ones a rule may announce now, which may be nodes of a workflow
    instance still running."""
    found: dict[tuple[str, str], set[int]] = {}
    for job, runs in polls.items():
        if is_workflow(job):
            continue
        record = state.jobs.get(job)
        for run in runs:
            if run.status_code in FAILED_STATUSES and _new(run, record, cutoff):
                found.setdefault((job.namespace, job.group), set()).add(run.instance_id)
    return found


def _keep(state: State, config: Config, done: WorkflowRead, only: int | None = None) -> None:
    """The workflows the state knows of each entry (or of entry `only`), still watched in a
    tick that could not list them: their pending alerts stay owed, and their memory is kept."""
    names = _names(state)
    for key in state.jobs:
        if not is_workflow(key):
            continue
        index = owner_of(config.workflows, key.namespace, key.group, workflow_id(key))
        if index is not None and (only is None or index == only):
            entry = config.workflows[index]
            settings = replace(DEFAULT_SETTINGS, recovery=entry.recovery)
            done.targets[key] = Target(names.get(key) or None, entry.receivers, rules=settings)


def _names(state: State) -> dict[JobKey, str]:
    """The names pending alerts carry, of the workflows (and jobs) they are about."""
    return {
        job: name
        for alert in state.outbox
        for job, name in zip(alert.jobs, alert.names, strict=False)
    }


def _new(run: JobInstance, record: JobRecord | None, cutoff: float) -> bool:
    """Whether the rules may announce this failed instance: the state does not know this
    attempt of it, and it is not the old past of a workflow polled for the first time."""
    if record is None:
        return run.end_time is None or run.end_time.timestamp() >= cutoff
    seen = record.instances.get(run.instance_id)
    return seen is None or seen.status != run.status_code or seen.end != attempt_of(run)


class _Failed(Exception):
    pass


def _ask(
    call: Callable[[str, dict[str, str]], Any],
    action: str,
    base: dict[str, str],
    params: dict[str, str],
) -> Any:
    return call(action, {**base, **params})


def _workflows(entry: WorkflowWatch, ask: Callable[[dict[str, str]], Any]) -> dict[int, str]:
    """id -> name: the group's enabled workflows for `all`, else the entry's ids (enabled
    or not) with the names the list gives them. The list is read for ids too: silences and
    routes may select a workflow by name, so a tick without the names reads no instance
    (the next tick does) rather than announce one they would have held back."""
    listed = _listed(ask, enabled_only=entry.all_workflows)
    if entry.all_workflows:
        return listed
    return {wf_id: listed.get(wf_id, "") for wf_id in entry.ids}


def _listed(ask: Callable[[dict[str, str]], Any], *, enabled_only: bool) -> dict[int, str]:
    found: dict[int, str] = {}
    for page in range(1, _MAX_PAGES + 1):
        data = _data(ask({"PageNum": str(page), "PageSize": str(_PAGE)}))
        records = data.get("Records") if isinstance(data, dict) else None
        if not isinstance(records, list):
            raise _Failed("ListWorkFlows' answer has no Data.Records list")
        new = 0
        for record in records:
            if not isinstance(record, dict):
                continue
            if enabled_only and str(record.get("Status", "1")) == "0":
                continue
            wf_id = _int(record.get("WorkflowId"))
            if wf_id is not None and wf_id > 0 and wf_id not in found:
                found[wf_id] = _str(record.get("Name"))[:200]
                new += 1
        total = _int(data.get("Total"))
        if len(records) < _PAGE or new == 0 or (total is not None and len(found) >= total):
            break
    return found


def _instances(key: JobKey, body: Any, zone: ZoneInfo) -> list[JobInstance]:
    data = _data(body)
    infos = data.get("WfInstanceInfos") if isinstance(data, dict) else None
    runs: list[JobInstance] = []
    for info in infos if isinstance(infos, list) else ():
        if not isinstance(info, dict):
            continue
        instance_id = _int(info.get("WfInstanceId"))
        status = _int(info.get("Status"))
        if instance_id is None or status is None:
            continue
        runs.append(
            JobInstance(
                job=key,
                instance_id=instance_id,
                status_code=status,
                schedule_time=_time(info.get("ScheduleTime"), zone),
                start_time=_time(info.get("StartTime"), zone),
                end_time=_time(info.get("EndTime"), zone),
                data_time=_time(info.get("DataTime"), zone),
            )
        )
    return runs


def _dag(key: JobKey, instance_id: int, name: str, body: Any) -> WorkflowRun | None:
    data = _data(body)
    dag = data.get("WfInstanceDag") if isinstance(data, dict) else None
    if not isinstance(dag, dict) or not isinstance(dag.get("Nodes"), list):
        return None
    nodes: list[WorkflowNode] = []
    for node in dag["Nodes"]:
        if not isinstance(node, dict):
            continue
        job_id, iid, status = (_int(node.get(k)) for k in ("JobId", "JobInstanceId", "Status"))
        if job_id is None or iid is None or status is None:
            continue
        nodes.append(
            WorkflowNode(
                job_id,
                iid,
                _str(node.get("JobName"))[:200],
                status,
                _str(node.get("Result"))[:_ERROR_CAP],
            )
        )
    edges: list[tuple[int, int]] = []
    raw_edges = dag.get("Edges")
    for edge in raw_edges if isinstance(raw_edges, list) else ():
        if isinstance(edge, dict):
            source, target = _int(edge.get("Source")), _int(edge.get("Target"))
            if source is not None and target is not None:
                edges.append((source, target))
    return WorkflowRun(key, instance_id, name, tuple(nodes), tuple(edges))


def _data(body: Any) -> Any:
    return body.get("Data") if isinstance(body, dict) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) < 2**63 else None
    if isinstance(value, str) and value.strip().isdigit() and len(value) < 20:
        return int(value)
    return None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _time(value: Any, zone: ZoneInfo) -> datetime | None:
    """`yyyy-MM-dd HH:mm:ss` in the region's zone, or epoch milliseconds; else None."""
    if isinstance(value, str) and value.strip():
        try:
            return datetime.strptime(value.strip(), _TIME_FORMAT).replace(tzinfo=zone)
        except ValueError:
            return None
    number = _int(value)
    if number is not None and 946_684_800_000 <= number < 4_102_444_800_000:
        return datetime.fromtimestamp(number / 1000, zone)
    return None
