"""`schedulerx-alert routes --job ID | --workflow ID`: where a job's or a workflow's alerts
would go, and why.

A job a watch entry names by id needs only the config. A job watched through `jobs: all`
or `job_names:` is known by its group's job list, which the tick keeps in the state (the
discovery catalog): it is looked up there, read-only, as `state show` reads the state,
and its watch entry is chosen as the tick chooses it (sources/discovery.watched_jobs).

A workflow is watched by a `workflows:` entry (its id, or `all` of its group): its alerts
are `workflow_failed` and `workflow_recovered`, routed and silenced under the workflow's
key (core/workflows.py) as the tick does. Its name is SchedulerX's (ListWorkFlows), not
the config's: `--name` gives it, for the routes and silences that select by name.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from schedulerx_alert.cli.context import Context
    from schedulerx_alert.config import Config, JobSpec, WatchRule
    from schedulerx_alert.config.sections import Sections
    from schedulerx_alert.config.workflows import WorkflowWatch
    from schedulerx_alert.core.catalog import JobInfo
    from schedulerx_alert.core.model import JobKey
    from schedulerx_alert.core.silence import Subject


def add_parser(commands: Any) -> None:
    routes = commands.add_parser(
        "routes",
        help="print which receivers a job's or a workflow's alerts go to, and why",
        description=(
            "For each watch entry holding the job and each kind it alerts on (or --kind), "
            "prints the receivers with the reason each was chosen (the watch entry's own "
            "receivers, then `routes:` in order, first match wins unless `continue: true`), "
            "why each route did or did not match, the receivers' quiet hours and the config's "
            "silences in force now. A job named by id needs only the config; one watched "
            "through `jobs: all` or `job_names:` is looked up, read-only, in the job lists "
            "the state keeps (the state location of `--config`, as `state show` reads it). "
            "--workflow ID answers for a workflow the `workflows:` entries watch, for its "
            "kinds workflow_failed and workflow_recovered; --name gives its name as SchedulerX "
            "lists it, for routes and silences that select by name."
        ),
    )
    from schedulerx_alert.cli import conventions as cli

    cli.add_config(routes)
    cli.add_endpoint(routes)
    which = routes.add_mutually_exclusive_group(required=True)
    which.add_argument("--job", type=int, metavar="ID")
    which.add_argument("--workflow", type=int, metavar="ID", help="a workflow's id")
    routes.add_argument(
        "--name", metavar="NAME", help="with --workflow: its name, as SchedulerX lists it"
    )
    routes.add_argument(
        "--kind", metavar="KIND", help="failed, rejected, missed, ...; workflow_failed, ..."
    )
    routes.add_argument(
        "--trigger", metavar="TYPE", help="scheduled, data_rerun, api, manual_rerun, system_retry"
    )
    cli.add_json(routes)


def run(args: argparse.Namespace, clock: Callable[[], float] | None = None) -> int:
    """`clock`: a test's; quiet hours and silences are told at its time."""
    from schedulerx_alert.cli.context import Context
    from schedulerx_alert.cli.terminal import block, json_text
    from schedulerx_alert.config.sections import sections_of
    from schedulerx_alert.core.silence import KINDS, TRIGGER_TYPES

    ctx = Context.load(args)
    if ctx is None:
        return 2
    config, source = ctx.config, ctx.source
    sections = sections_of(config)
    if args.kind is not None and args.kind not in KINDS:
        print(f"routes: --kind: unknown kind {args.kind!r}", file=sys.stderr)
        return 2
    if args.trigger is not None and args.trigger not in TRIGGER_TYPES:
        print(f"routes: --trigger: unknown trigger type {args.trigger!r}", file=sys.stderr)
        return 2
    if args.workflow is not None:
        return _workflow(args, config, source, sections, (clock or time.time)())
    if args.name is not None:
        print("routes: --name is for --workflow (a job's name is read)", file=sys.stderr)
        return 2
    holders = [
        (index, rule, job)
        for index, rule in enumerate(config.watch)
        for job in rule.jobs
        if job.job_id == args.job
    ]
    if not holders and any(rule.discovers for rule in config.watch):
        found = _discovered(ctx, args.job)
        if isinstance(found, str):
            print(block(found), file=sys.stderr)
            return 1 if isinstance(found, _Unread) else 2
        holders = found
    if not holders:
        print(
            f"routes: job {args.job} is in no watch entry of {source}"
            + ("" if any(r.discovers for r in config.watch) else " (none discovers jobs)"),
            file=sys.stderr,
        )
        return 2
    now = (clock or time.time)()
    report = [
        _entry(index, rule, job, args.kind, args.trigger, config, sections, now)
        for index, rule, job in holders
    ]
    if args.json:
        print(json_text({"job": args.job, "entries": report}))
    else:
        for entry in report:
            _print(entry)
    return 0


WORKFLOW_KINDS = ("workflow_failed", "workflow_recovered")


def _workflow(
    args: argparse.Namespace, config: Config, source: str, sections: Sections, now: float
) -> int:
    from schedulerx_alert.cli.terminal import json_text
    from schedulerx_alert.config.workflows import owner_of

    wf_id: int = args.workflow
    if args.kind is not None and args.kind not in WORKFLOW_KINDS:
        print(
            f"routes: --kind: a workflow's alerts are {' or '.join(WORKFLOW_KINDS)}, "
            f"not {args.kind!r}",
            file=sys.stderr,
        )
        return 2
    if args.trigger is not None:
        print("routes: --trigger is for jobs (a workflow's alert has none)", file=sys.stderr)
        return 2
    holders = [
        (index, entry)
        for index, entry in enumerate(config.workflows)
        if entry.all_workflows or wf_id in entry.ids
    ]
    if not holders:
        print(
            f"routes: workflow {wf_id} is in no `workflows:` entry of {source}"
            + ("" if config.workflows else " (it has none)"),
            file=sys.stderr,
        )
        return 2
    name: str | None = args.name or None
    report = [
        _workflow_entry(index, entry, wf_id, name, args.kind, sections, now)
        for index, entry in holders
    ]
    for found in report:
        # A workflow belongs to one entry, as a job does (config/workflows.owner_of): the
        # others' receivers go unused.
        owner = owner_of(config.workflows, found["namespace"], found["group"], wf_id)
        found["used_by_tick"] = found["workflows"] == owner
        found["owner"] = owner
    if args.json:
        print(json_text({"workflow": wf_id, "entries": report}))
    else:
        for found in report:
            _print_workflow(found)
    return 0


def _workflow_entry(
    index: int,
    entry: WorkflowWatch,
    wf_id: int,
    name: str | None,
    kind: str | None,
    sections: Sections,
    now: float,
) -> dict[str, Any]:
    from schedulerx_alert.core.routing import workflow_receivers
    from schedulerx_alert.core.silence import Subject
    from schedulerx_alert.core.workflows import workflow_key

    key = workflow_key(entry.namespace, entry.group, wf_id)
    kinds = [kind] if kind else [k for k in WORKFLOW_KINDS if entry.recovery or "fail" in k]
    decisions = []
    for each in kinds:
        subject = Subject(entry.namespace, entry.group, key.job_id, name, each, None)
        chosen = workflow_receivers(subject, index, entry.receivers, sections.routes)
        decisions.append(_decision(subject, chosen, sections, now))
    by_name = [
        label
        for label, matcher in (
            *((f"routes[{i}]", r.matcher) for i, r in enumerate(sections.routes)),
            *((s.id, s.matcher) for s in sections.silences),
        )
        if matcher.job_names
    ]
    return {
        "workflows": index,
        "namespace": entry.namespace,
        "group": entry.group,
        "workflow": wf_id,
        "name": name,
        # Watched through `workflows: all`: while the group lists it as enabled.
        "all": entry.all_workflows,
        "recovery": entry.recovery,
        # Routes and silences that select by name, told without one (--name).
        "by_name_unknown": by_name if name is None else [],
        "kinds": decisions,
    }


def _print_workflow(entry: dict[str, Any]) -> None:
    from schedulerx_alert.cli.terminal import line

    name = f" ({line(entry['name'])})" if entry["name"] else ""
    where = line(f"{entry['namespace']}/{entry['group']}", 400)
    print(f"workflow {entry['workflow']}{name} in workflows[{entry['workflows']}]: {where}")
    if entry["all"]:
        print("  (watched through `workflows: all`: while its group lists it as enabled)")
    if not entry["recovery"]:
        print("  (recovery: false: a later successful instance is not announced)")
    if not entry["used_by_tick"]:
        print(
            f"  (workflows[{entry['owner']}] watches it too, and the tick routes it by that "
            "entry, not by this one: the first entry of its group naming it by id, else the "
            "first with `workflows: all`)"
        )
    _print_kinds(entry["kinds"])
    if entry["by_name_unknown"]:
        print(
            "  (told without the workflow's name, which only SchedulerX knows: give --name "
            f"for what selects by name: {line(', '.join(entry['by_name_unknown']), 400)})"
        )
    print(
        "  (silences added with `schedulerx-alert silence add` are not read here; "
        "see `silence list --workflow`)"
    )


class _Unread(str):
    """Why the state's job lists could not be read: a problem (exit 1), not a usage error."""


def _discovered(ctx: Context, job_id: int) -> list[tuple[int, WatchRule, JobSpec]] | str:
    """The watch entries that watch `job_id` through their group's job list in the state's
    catalog, as the tick would route it; or why none can be named."""
    from schedulerx_alert.cli.conventions import tried
    from schedulerx_alert.storage.session import StateRefused
    from schedulerx_alert.storage.store import StoreError

    config, redact = ctx.config, ctx.redact
    try:
        store, key, inspection = ctx.inspect_state("routes")
    except (StoreError, StateRefused) as exc:
        return _Unread(
            redact(
                f"routes: job {job_id} is in no watch entry by id, and the job lists the state "
                f"keeps could not be read: {exc}{tried(config)}"
            )
        )
    where = store.describe(key)
    catalog = inspection.state.catalog
    known = {k: info for k, info in catalog.items() if k.job_id == job_id}
    if not known:
        return redact(
            f"routes: job {job_id} is unknown: in no watch entry by id, and in none of the "
            f"job lists in the state {where} (a job created since the last tick read its "
            "group's list is not there yet)"
        )
    holders = _watching(config, known)
    if not holders:
        jobs = ", ".join(f"{k.namespace}/{k.group} {info.name!r}" for k, info in known.items())
        return redact(
            f"routes: job {job_id} ({jobs}) is in the job lists of the state {where}, "
            "but no watch entry watches it (disabled, excluded, or no pattern matches its name)"
        )
    return holders


def _watching(
    config: Config, known: Mapping[JobKey, JobInfo]
) -> list[tuple[int, WatchRule, JobSpec]]:
    from schedulerx_alert.config import JobSpec
    from schedulerx_alert.sources.discovery import watched_jobs

    holders = []
    for key, watched in watched_jobs(config, known).items():
        if key not in known:
            continue  # a job some entry names by id: not the one asked about
        index = next(i for i, rule in enumerate(config.watch) if rule is watched.rule)
        holders.append((index, watched.rule, JobSpec(key.job_id, watched.name)))
    return sorted(holders, key=lambda h: h[0])


def _entry(
    index: int,
    rule: WatchRule,
    job: JobSpec,
    kind: str | None,
    trigger: str | None,
    config: Config,
    sections: Sections,
    now: float,
) -> dict[str, Any]:
    from schedulerx_alert.core.route import resolve
    from schedulerx_alert.core.silence import Subject

    kinds = [kind] if kind else sorted(status.label for status in rule.alert_on)
    decisions = []
    for each in kinds:
        subject = Subject(rule.namespace, rule.group, job.job_id, job.name, each, trigger)
        chosen = resolve(subject, [(index, rule.receivers)], sections.routes)
        decisions.append(_decision(subject, chosen, sections, now))
    return {
        "watch": index,
        "namespace": rule.namespace,
        "group": rule.group,
        "job": job.job_id,
        "name": job.name,
        # Watched through the group's job list rather than by id.
        "discovered": job not in rule.jobs,
        "trigger": trigger,
        "kinds": decisions,
    }


def _decision(
    subject: Subject, chosen: list[tuple[str, str]], sections: Sections, now: float
) -> dict[str, Any]:
    """One kind's answer: the receivers with their reasons and quiet hours, every route's
    part, and the config's silence that holds it now."""
    from schedulerx_alert.core.route import routes_to, trace
    from schedulerx_alert.core.silence import in_quiet_hours, silenced_by

    each = subject.kind
    receivers = []
    for name, reason in chosen:
        quiet = sections.quiet_hours.get(name)
        via = routes_to(subject, name, sections.routes)
        receivers.append(
            {
                "receiver": name,
                "reason": reason,
                "quiet_hours": quiet.describe() if quiet else None,
                "quiet_now": in_quiet_hours(quiet, now, each, subject, via),
                # Why it pages even inside the quiet hours (kind, job or route).
                "still_pages": quiet.exempts(each, subject, via) if quiet else None,
            }
        )
    steps = [
        {"route": s.label, "outcome": s.outcome, "why": s.why}
        for s in trace(subject, sections.routes)
    ]
    silence = silenced_by(subject, sections.silences, now)
    return {
        "kind": each,
        "receivers": receivers,
        "routes": steps,
        "silenced_by": silence.id if silence else None,
    }


def _print(entry: dict[str, Any]) -> None:
    from schedulerx_alert.cli.terminal import line

    # A job's name comes from its author (the job list), the rest from the config: every
    # text is printed through the terminal's escaping.
    name = f" ({line(entry['name'])})" if entry["name"] else ""
    where = line(f"{entry['namespace']}/{entry['group']}", 400)
    print(f"job {entry['job']}{name} in watch[{entry['watch']}]: {where}")
    if entry["trigger"]:
        print(f"  runs triggered as {line(entry['trigger'])}")
    _print_kinds(entry["kinds"])
    if entry.get("discovered"):
        print("  (found in its group's job list, as the state keeps it)")
    print(
        "  (silences added with `schedulerx-alert silence add` are not read here; "
        "see `silence list`)"
    )


def _print_kinds(kinds: list[dict[str, Any]]) -> None:
    from schedulerx_alert.cli.terminal import line

    for decision in kinds:
        print(f"  {line(decision['kind'])}:")
        for receiver in decision["receivers"]:
            quiet = ""
            if receiver["quiet_hours"]:
                state = "quiet now" if receiver["quiet_now"] else "not quiet now"
                if receiver["still_pages"]:
                    state += f"; {receiver['still_pages']}"
                quiet = f"  [quiet hours {line(receiver['quiet_hours'], 400)}: {line(state)}]"
            print(
                f"    -> {line(receiver['receiver'])}  because {line(receiver['reason'], 400)}"
                f"{quiet}"
            )
        for step in decision["routes"]:
            sep = ", " if step["outcome"] == "matched" else ": "
            why = f"{sep}{line(step['why'], 400)}" if step["why"] else ""
            print(f"       {line(step['route'], 400)}: {step['outcome']}{why}")
        if decision["silenced_by"]:
            print(f"    held back now by the config's {line(decision['silenced_by'])}")
