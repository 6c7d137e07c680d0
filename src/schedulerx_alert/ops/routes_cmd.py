"""`schedulerx-alert routes --job ID`: where a job's alerts would go, and why, offline."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Config, JobSpec, WatchRule
    from ..config_sections import Sections


def add_parser(commands: Any) -> None:
    routes = commands.add_parser(
        "routes",
        help="print which receivers a job's alerts go to, and why",
        description=(
            "For each watch entry holding the job and each kind it alerts on (or --kind), "
            "prints the receivers with the reason each was chosen (the watch entry's own "
            "receivers, then `routes:` in order, first match wins unless `continue: true`), "
            "why each route did or did not match, the receivers' quiet hours and the config's "
            "silences in force now. Offline: nothing is read from the state."
        ),
    )
    routes.add_argument("--config", "-c", required=True)
    routes.add_argument("--job", type=int, required=True, metavar="ID")
    routes.add_argument("--kind", metavar="KIND", help="failed, rejected, missed, ...")
    routes.add_argument(
        "--trigger", metavar="TYPE", help="scheduled, data_rerun, api, manual_rerun, system_retry"
    )
    routes.add_argument("--json", action="store_true", help="one JSON document")


def run(args: argparse.Namespace) -> int:
    from ..config import ConfigError
    from ..config_sections import load_with_sections
    from ..core.silence import KINDS, TRIGGER_TYPES

    try:
        config, sections = load_with_sections(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.kind is not None and args.kind not in KINDS:
        print(f"routes: --kind: unknown kind {args.kind!r}", file=sys.stderr)
        return 2
    if args.trigger is not None and args.trigger not in TRIGGER_TYPES:
        print(f"routes: --trigger: unknown trigger type {args.trigger!r}", file=sys.stderr)
        return 2
    holders = [
        (index, rule, job)
        for index, rule in enumerate(config.watch)
        for job in rule.jobs
        if job.job_id == args.job
    ]
    if not holders:
        print(f"routes: job {args.job} is in no watch entry of {args.config}", file=sys.stderr)
        return 2
    now = time.time()
    report = [
        _entry(index, rule, job, args.kind, args.trigger, config, sections, now)
        for index, rule, job in holders
    ]
    if args.json:
        print(json.dumps({"job": args.job, "entries": report}, ensure_ascii=False, indent=2))
    else:
        for entry in report:
            _print(entry)
    return 0


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
    from ..core.silence import Subject, in_quiet_hours, silenced_by
    from ..delivery.route import resolve, trace

    kinds = [kind] if kind else sorted(status.label for status in rule.alert_on)
    decisions = []
    for each in kinds:
        subject = Subject(rule.namespace, rule.group, job.job_id, job.name, each, trigger)
        receivers = []
        for name, reason in resolve(subject, [(index, rule.receivers)], sections.routes):
            quiet = sections.quiet_hours.get(name)
            receivers.append(
                {
                    "receiver": name,
                    "reason": reason,
                    "quiet_hours": quiet.describe() if quiet else None,
                    "quiet_now": in_quiet_hours(quiet, now, each),
                }
            )
        steps = [
            {"route": s.label, "outcome": s.outcome, "why": s.why}
            for s in trace(subject, sections.routes)
        ]
        silence = silenced_by(subject, sections.silences, now)
        decisions.append(
            {
                "kind": each,
                "receivers": receivers,
                "routes": steps,
                "silenced_by": silence.id if silence else None,
            }
        )
    return {
        "watch": index,
        "namespace": rule.namespace,
        "group": rule.group,
        "job": job.job_id,
        "name": job.name,
        "trigger": trigger,
        "kinds": decisions,
    }


def _print(entry: dict[str, Any]) -> None:
    name = f" ({entry['name']})" if entry["name"] else ""
    where = f"{entry['namespace']}/{entry['group']}"
    print(f"job {entry['job']}{name} in watch[{entry['watch']}]: {where}")
    if entry["trigger"]:
        print(f"  runs triggered as {entry['trigger']}")
    for decision in entry["kinds"]:
        print(f"  {decision['kind']}:")
        for receiver in decision["receivers"]:
            quiet = ""
            if receiver["quiet_hours"]:
                state = "quiet now" if receiver["quiet_now"] else "not quiet now"
                quiet = f"  [quiet hours {receiver['quiet_hours']}: {state}]"
            print(f"    -> {receiver['receiver']}  because {receiver['reason']}{quiet}")
        for step in decision["routes"]:
            sep = ", " if step["outcome"] == "matched" else ": "
            why = f"{sep}{step['why']}" if step["why"] else ""
            print(f"       {step['route']}: {step['outcome']}{why}")
        if decision["silenced_by"]:
            print(f"    held back now by the config's {decision['silenced_by']}")
    print(
        "  (silences added with `schedulerx-alert silence add` are not read here; "
        "see `silence list`)"
    )
