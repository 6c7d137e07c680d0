"""Evidence for this tick's new alerts: the jobs' owners and the failed runs' last log lines.

`mention_owners` reads the job's SchedulerX contacts from the catalog; a job the catalog does
not know (watched by id, in a group whose list is never read), or knows from longer ago
than `discovery_interval`, is looked up with GetJobInfo and kept in the catalog.
`include_log` asks GetLog (Professional edition only) for the failed run's last lines; for
a failed workflow instance (its `workflows:` entry's `include_log`), for its first failed
node's: one call per instance, whatever the number of failed nodes.

Best effort by design: both go through their API's one-minute budget (poll.Budgets, kept in
the state with the other APIs'), never start after polling's time is up, and take at most
PHASE_SECONDS however many alerts there are. A call that fails, times out, finds no budget
or no time leaves the alert as it is, with a short note in place of the log: an alert is
never held back for its evidence. A GetLog SchedulerX refuses outright (an edition without
it, a role that may not read logs) is a problem of the tick as well: the option is set and
cannot work, so the tick must not read `ok`. What was gathered is stored on the pending alert, so a
message retried next tick asks SchedulerX nothing again.
"""

from __future__ import annotations

import copy
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from schedulerx_alert.config import Config, WatchRule
from schedulerx_alert.config.workflows import WorkflowWatch, owner_of
from schedulerx_alert.core.catalog import JobInfo
from schedulerx_alert.core.evidence import Evidence, excerpt, note
from schedulerx_alert.core.findings import RECOVERED, SETTLED, WORKFLOW_FAILED
from schedulerx_alert.core.model import InstanceStatus, JobInstance, JobKey
from schedulerx_alert.core.state import Alert, State
from schedulerx_alert.core.workflows import workflow_id
from schedulerx_alert.delivery.mentions import owners_of
from schedulerx_alert.sources import discovery, jobinfo, plan
from schedulerx_alert.sources.fetch import RetryPolicy, attempt
from schedulerx_alert.sources.poll import JOB_INFO, LIST, Budgets
from schedulerx_alert.sources.schedulerx import SchedulerXClient, SchedulerXError

log = logging.getLogger("schedulerx_alert")
T = TypeVar("T")
LOG = "GetLog"
#: Lines asked for (GetLog's Line, at most 200): more than a message shows, since blank
#: lines are dropped and the answer's order is not documented.
LOG_ASK = 50
#: One GetLog call, and the whole gathering: a slow log costs the alert its log, not its time.
LOG_CALL_SECONDS = 3.0
PHASE_SECONDS = 6.0
#: Around the run's own times: GetLog's default window is the last 30 minutes only.
WINDOW_MARGIN = 60.0
# A log line that starts with a time (log4j, logback): tells which way the answer runs.
_STAMP = re.compile(r"\s*\[?(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?)")
# How an edition without GetLog is likely to say so (its answer is not documented).
_EDITION = re.compile(r"edition|professional|版本|专业版|not support|不支持", re.IGNORECASE)


@dataclass
class Gathered:
    state: State
    calls: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    # Why a configured include_log cannot work (GetLog refused): the tick is degraded.
    problems: list[str] = field(default_factory=list)


def gather(
    config: Config,
    client: SchedulerXClient | None,
    state: State,
    new: Sequence[Alert],
    deadline: float,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Gathered:
    """`state` with evidence on the alerts of `new` that their watch entries ask for, the
    catalog entries GetJobInfo read, and the calls made added to the sources' budgets."""
    started = clock()
    rules = _rules(config, state.catalog, {job for a in new for job in a.jobs})
    nodes = {a.key: found for a in new if (found := node_owners(config, a))}
    node_logs = {
        a.key: inst
        for a in new
        if not a.evidence.log_tried and (inst := node_run(config, a)) is not None
    }
    wanted = [
        a
        for a in new
        if a.key in nodes
        or a.key in node_logs
        or any(
            (r := rules.get(job)) is not None and (r.mention_owners or r.include_log)
            for job in a.jobs
        )
    ]
    if not wanted:
        return Gathered(state)
    budgets = Budgets(config.schedulerx.max_calls_per_minute, state.sources.calls, clock)
    work = _Work(
        config=config,
        client=_quick(client),
        budgets=budgets,
        deadline=min(deadline, started + PHASE_SECONDS),
        clock=clock,
        sleep=sleep,
        catalog=dict(state.catalog),
        now=started,
    )
    owner_jobs = {
        job
        for a in wanted
        if _pages(a)
        for job in a.jobs
        if (r := rules.get(job)) is not None and r.mention_owners
    } | {job for a in wanted if _pages(a) for job in nodes.get(a.key, ())}
    runs = {
        _run_key(inst): inst
        for a in wanted
        if (inst := _failed_run(a)) is not None
        and (r := rules.get(inst.job)) is not None
        and r.include_log
        and not a.evidence.log_tried
    } | {_run_key(inst): inst for inst in node_logs.values()}
    # Owners first: a few GetJobInfo calls at most, and every alert of the job needs them.
    with ThreadPoolExecutor(max_workers=max(1, config.schedulerx.concurrency)) as pool:
        list(pool.map(work.guarded(work.owners), sorted(owner_jobs, key=str)))
        list(pool.map(work.guarded(work.log), runs.values()))

    outbox = []
    keys = {a.key for a in wanted}
    for alert in state.outbox:
        if alert.key in keys:
            alert = replace(alert, evidence=work.evidence_of(alert, rules, nodes, node_logs))
        outbox.append(alert)
    calls = {a: t for a, t in budgets.recent().items() if a != LIST and t}
    return Gathered(
        state.with_updates(
            outbox=tuple(outbox),
            catalog=work.catalog,
            sources=replace(state.sources, calls=calls),
        ),
        work.calls,
        [*work.notes, *work.unread()],
        work.problems(),
    )


def _rules(
    config: Config, catalog: Mapping[JobKey, JobInfo], jobs: set[JobKey]
) -> dict[JobKey, WatchRule]:
    watched = discovery.watched_jobs(config, catalog)
    found = {}
    for job in jobs:
        if job.job_id < 0:
            continue  # a workflow (core/workflows.py): no job record, no log of its own
        rule = watched[job].rule if job in watched else discovery.rule_for_unlisted(config, job)
        if rule is not None:
            found[job] = rule
    return found


def node_owners(config: Config, alert: Alert) -> tuple[JobKey, ...]:
    """The jobs whose owners a failed workflow instance's message mentions: its failed
    nodes' (core/rules/workflow_failed.py), when its `workflows:` entry mentions owners."""
    if alert.kind != WORKFLOW_FAILED or len(alert.jobs) != 1:
        return ()
    flow = alert.jobs[0]
    if not any(entry.mention_owners for entry in _entries(config, flow)):
        return ()
    ids = alert.facts.get("failed_job_ids")
    listed = ids if isinstance(ids, tuple) else ()
    found = [JobKey(flow.namespace, flow.group, int(i)) for i in listed if str(i).isdigit()]
    return tuple(dict.fromkeys(job for job in found if job.job_id > 0))


def node_run(config: Config, alert: Alert) -> JobInstance | None:
    """The run whose log a failed workflow instance's message shows, when its `workflows:`
    entry includes logs: its first failed node's, the one whose error the message quotes
    (core/rules/workflow_failed.py). Its times are the instance's, which hold the node's
    run: GetLog's window is read from them."""
    if alert.kind != WORKFLOW_FAILED or len(alert.jobs) != 1 or alert.instance is None:
        return None
    flow = alert.jobs[0]
    if not any(entry.include_log for entry in _entries(config, flow)):
        return None
    # failed_job_ids keeps the failed nodes' job ids in their order, each once: the first
    # is the first failed node's, as the first of failed_instances is its run.
    jobs, runs = alert.facts.get("failed_job_ids"), alert.facts.get("failed_instances")
    if not (isinstance(jobs, tuple) and isinstance(runs, tuple) and jobs and runs):
        return None
    job, run = str(jobs[0]), str(runs[0])
    if not (job.isdigit() and run.isdigit() and int(job) > 0):
        return None
    return replace(
        alert.instance,
        job=JobKey(flow.namespace, flow.group, int(job)),
        instance_id=int(run),
        status_code=int(InstanceStatus.FAILED),
        result="",
    )


def _entries(config: Config, flow: JobKey) -> list[WorkflowWatch]:
    """The `workflows:` entry this workflow belongs to (config/workflows.owner_of), if any."""
    index = owner_of(config.workflows, flow.namespace, flow.group, workflow_id(flow))
    return [] if index is None else [config.workflows[index]]


def _pages(alert: Alert) -> bool:
    """Whether the alert calls for its owners: good news (a recovery, a job settled back
    to working) does not page anyone."""
    if alert.kind == RECOVERED:
        return False
    return not (alert.kind == SETTLED and alert.facts.get("settled_as") == "ok")


def _failed_run(alert: Alert) -> JobInstance | None:
    inst = alert.instance
    if not alert.finding.is_run_failure or inst is None or len(alert.instances) != 1:
        return None
    return None if inst.status is InstanceStatus.SUCCESS else inst


def _run_key(inst: JobInstance) -> tuple[JobKey, int, str]:
    return inst.job, inst.instance_id, inst.attempt or ""


def _quick(client: SchedulerXClient | None) -> SchedulerXClient | None:
    """The client with a shorter timeout: evidence is worth a few seconds, not the tick."""
    if client is None:
        return None
    quick = copy.copy(client)
    quick.timeout = min(client.timeout, LOG_CALL_SECONDS)
    return quick


@dataclass
class _Work:
    config: Config
    client: SchedulerXClient | None
    budgets: Budgets
    deadline: float
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    catalog: dict[JobKey, JobInfo]
    now: float
    calls: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    logs: dict[tuple[JobKey, int, str], tuple[tuple[str, ...], str]] = field(default_factory=dict)
    owners_by_job: dict[JobKey, tuple[str, ...]] = field(default_factory=dict)
    refused: dict[tuple[str, str], str] = field(default_factory=dict)
    # The runs of each group whose log a refusal cost.
    refusals: Counter[tuple[str, str]] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def guarded(self, task: Callable[[T], None]) -> Callable[[T], None]:
        """A defect costs the evidence of one job or run, never the alert or the tick."""

        def run(item: T) -> None:
            try:
                task(item)
            except Exception as exc:
                from schedulerx_alert.delivery.neutralise import fold

                log.exception("gathering evidence failed")
                self._note(f"evidence for {item}: {type(exc).__name__}: {fold(str(exc), 200)}")
                if isinstance(item, JobInstance):
                    self._keep(item, (), f"could not be read ({type(exc).__name__})")

        return run

    def call(self, action: str, params: dict[str, str]) -> tuple[Any, str]:
        """One call within its budget and the deadline, not retried; the body or why not."""
        if self.client is None:
            return None, "SchedulerX cannot be reached this tick (no credentials)"
        client = self.client
        tried = attempt(
            lambda: client.call(action, params),
            self.budgets[action],
            self.deadline,
            client.timeout,
            RetryPolicy(attempts=1),
            self.clock,
            self.sleep,
        )
        with self.lock:
            self.calls[action] += tried.calls
        if tried.value is not None:
            return tried.value, ""
        if tried.error is not None:
            return None, _why(action, tried.error)
        if "quota" in tried.stopped:
            return None, f"the {action} quota for this minute is used up"
        return None, tried.stopped or "not asked"

    # -- owners ----------------------------------------------------------------------------

    def owners(self, job: JobKey) -> None:
        with self.lock:
            info = self.catalog.get(job)
        stale = self.config.schedulerx.discovery_interval.total_seconds()
        if info is None or self.now - info.refreshed_at >= stale:
            body, why = self.call(
                JOB_INFO,
                {"Namespace": job.namespace, "GroupId": job.group, "JobId": str(job.job_id)},
            )
            fresh = jobinfo.parse_answer(job, body, self.now) if body is not None else None
            if fresh is not None and not _list_read(self.config, (job.namespace, job.group)):
                # What owners need, the name, and what the entry's rules use (jobinfo.py):
                # mention_owners changes neither how the job is polled nor its rules.
                fresh = jobinfo.for_rules(self.config, fresh)
            if fresh is not None:
                info = fresh
                with self.lock:
                    self.catalog[job] = fresh
            elif info is None:
                self._note(f"owners of job {job} unknown ({why or 'answer unreadable'})")
                return
        assert info is not None
        owners, problems = owners_of(info.contacts, f"job {job}")
        with self.lock:
            self.owners_by_job[job] = owners
            self.notes.extend(problems)

    # -- logs ------------------------------------------------------------------------------

    def log(self, inst: JobInstance) -> None:
        job = inst.job
        group = (job.namespace, job.group)
        with self.lock:
            refused = self.refused.get(group)
        if refused is not None:
            self._keep(inst, (), refused)
            with self.lock:
                self.refusals[group] += 1
            return
        params = {
            "Namespace": job.namespace,
            "GroupId": job.group,
            "JobId": str(job.job_id),
            "JobInstanceId": str(inst.instance_id),
            "Line": str(LOG_ASK),
            "Reverse": "true",
        }
        params.update(_window(inst, self.now))
        body, why = self.call(LOG, params)
        if body is None:
            if _refusal(why):
                with self.lock:
                    self.refused[group] = why
                    self.refusals[group] += 1
            self._keep(inst, (), why)
            return
        lines = _log_lines(body)
        if lines is None:
            self._keep(inst, (), "GetLog's answer has no Data.Logs list")
        elif not any(text.strip() for text in lines):
            self._keep(
                inst,
                (),
                "SchedulerX has no log lines for this run (GetLog needs the Professional "
                "edition and the group's log service)",
            )
        else:
            self._keep(inst, excerpt(_chronological(lines)), "")

    def _keep(self, inst: JobInstance, lines: tuple[str, ...], why: str) -> None:
        with self.lock:
            self.logs[_run_key(inst)] = (lines, note(why))

    def _note(self, text: str) -> None:
        with self.lock:
            self.notes.append(text)

    def unread(self) -> list[str]:
        """A note for the logs asked for and not read, other than refused ones: the
        messages say why, and so does the tick."""
        with self.lock:
            missed = [why for _, why in self.logs.values() if why]
        refused = {note(why) for why in self.refused.values()}
        missed = [why for why in missed if why not in refused]
        if not missed:
            return []
        return [f"include_log: {len(missed)} run(s) without their log lines, e.g. {missed[0]}"]

    def problems(self) -> list[str]:
        """One line per group whose GetLog was refused: include_log is set there and cannot
        work until the edition or the role changes."""
        return [
            f"include_log: GetLog refused in {ns}/{group} ({why}); "
            f"{self.refusals[(ns, group)]} failure message(s) went without their log lines"
            for (ns, group), why in sorted(self.refused.items())
        ]

    # -- the result ------------------------------------------------------------------------

    def evidence_of(
        self,
        alert: Alert,
        rules: Mapping[JobKey, WatchRule],
        nodes: Mapping[str, tuple[JobKey, ...]],
        node_logs: Mapping[str, JobInstance],
    ) -> Evidence:
        evidence = alert.evidence
        jobs = [job for job in alert.jobs if (r := rules.get(job)) is not None and r.mention_owners]
        owners = dict.fromkeys(
            owner
            for job in (*jobs, *nodes.get(alert.key, ()))
            for owner in self.owners_by_job.get(job, ())
            if _pages(alert)
        )
        if owners:
            evidence = replace(evidence, owners=tuple(owners)[:10])
        inst = _failed_run(alert) or node_logs.get(alert.key)
        if inst is not None and _run_key(inst) in self.logs and not evidence.log_tried:
            lines, why = self.logs[_run_key(inst)]
            evidence = replace(evidence, log=lines, log_note="" if lines else why)
        return evidence


def _list_read(config: Config, group: tuple[str, str]) -> bool:
    """Whether the planner reads the group's job list (plan._discovered_here), which then
    keeps the catalog's entries whole."""
    if discovery.discovers(config, group):
        return True
    return config.schedulerx.query != "every_job" and not plan.small_group(config, group)


def _window(inst: JobInstance, now: float) -> dict[str, str]:
    """StartTimestamp/EndTimestamp (ms) around the run, from its earliest known time."""
    times = [t for t in (inst.schedule_time, inst.start_time, inst.end_time) if t is not None]
    if not times:
        return {}
    start = min(t.timestamp() for t in times) - WINDOW_MARGIN
    end = inst.end_time.timestamp() + WINDOW_MARGIN if inst.end_time else now
    return {"StartTimestamp": str(int(start * 1000)), "EndTimestamp": str(int(end * 1000))}


def _log_lines(body: Any) -> list[str] | None:
    data = body.get("Data") if isinstance(body, Mapping) else None
    logs = data.get("Logs") if isinstance(data, Mapping) else None
    if isinstance(logs, str):  # one text rather than a list: its lines
        return logs.splitlines()
    if not isinstance(logs, list):
        return None
    return [text for text in logs[: 4 * LOG_ASK] if isinstance(text, str)]


def _chronological(lines: list[str]) -> list[str]:
    """Oldest first. Asked with Reverse=true (newest first, as the SDK describes it); when
    the lines carry times, those decide, whatever the server did."""
    stamps = [m.group(1).replace("T", " ").replace(",", ".") for m in map(_STAMP.match, lines) if m]
    if len(stamps) >= 2 and stamps[0] != stamps[-1]:
        return lines if stamps[0] < stamps[-1] else lines[::-1]
    return lines[::-1]


def _refusal(why: str) -> bool:
    """Whether GetLog's failure is SchedulerX saying no for good (the edition, the role), not
    a slow or failing call: asked once per group, and a problem of the tick."""
    return bool(_EDITION.search(why)) or why == _not_allowed(LOG)


def _not_allowed(action: str) -> str:
    return f"{action} is not allowed for the function's role (RAM)"


def _why(action: str, error: SchedulerXError) -> str:
    """A short reason for the message: SchedulerX's own words only for business errors,
    which name the job or the edition, never for signature or credential errors."""
    if error.auth:
        return _not_allowed(action)
    if error.throttled:
        return f"SchedulerX throttled {action}"
    if error.status is None and "timed out" in error.message:
        return f"{action} timed out"
    if error.status is None or error.status >= 500:
        return f"SchedulerX did not answer {action} ({error.message.partition(': ')[2]})"
    if error.status >= 400:
        return f"SchedulerX refused {action} (HTTP {error.status} {error.code})".strip()
    # "GetLog: Success=false, Code 500: <SchedulerX's message>"
    return f"SchedulerX: {error.message.split(': ', 2)[-1][:120]}"
