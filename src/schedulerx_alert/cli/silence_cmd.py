"""`schedulerx-alert silence add|list|expire`: silence a job or a workflow from a laptop,
without a redeploy.

Silences added here live in the silence book beside the state (storage/silence_book.py);
the ones in the config file are listed with them and can only be changed in the file.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from typing import TYPE_CHECKING, Any

from schedulerx_alert.cli.terminal import block, json_text, line

if TYPE_CHECKING:
    from schedulerx_alert.config import Config
    from schedulerx_alert.core.silence import Matcher, Silence
    from schedulerx_alert.storage.silence_book import SilenceBook

# Longer silences belong in the config file, where a review sees them.
MAX_SECONDS = 31 * 24 * 3600
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?")
# `silence add`'s flag for each key of a silence's match (core/silence.parse_matcher).
_FLAGS = {
    "namespace": "--namespace",
    "group": "--group",
    "jobs": "--job",
    "workflows": "--workflow",
    "job_names": "--name",
    "kinds": "--kind",
}


def add_parser(commands: Any) -> None:
    silence = commands.add_parser(
        "silence",
        help="hold back a job's alerts for a while (stored beside the state; no redeploy)",
        description=(
            "Silences held in the silence book beside the state (OSS or file), read by every "
            "tick. A silenced alert is recorded and counted, not sent; when the silence ends, "
            "one digest lists what it held back. OSS needs ALIBABA_CLOUD_* credentials."
        ),
    )
    from schedulerx_alert.cli import conventions as cli
    from schedulerx_alert.core.model import TERMINAL
    from schedulerx_alert.core.silence import RULE_KINDS

    # What an alert can be: a run's final status (alert_on allows no other) or a rule's.
    kinds = sorted({status.label for status in TERMINAL} | RULE_KINDS)

    actions = silence.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add a silence")
    cli.add_common(add)
    add.add_argument("--job", type=int, action="append", default=[], metavar="ID")
    add.add_argument(
        "--workflow",
        type=int,
        action="append",
        default=[],
        metavar="ID",
        help="a workflow watched as a whole (config workflows:), by its id",
    )
    add.add_argument("--group", metavar="GROUP", help="the application group (GroupId)")
    add.add_argument("--namespace", metavar="NS")
    add.add_argument(
        "--name", action="append", default=[], metavar="GLOB", help="job name glob, e.g. 'etl-*'"
    )
    add.add_argument(
        "--kind",
        action="append",
        default=[],
        choices=kinds,
        help="only alerts of this kind (repeat for several; default: every kind)",
    )
    span = add.add_mutually_exclusive_group(required=True)
    span.add_argument("--for", dest="duration", metavar="DURATION", help="e.g. 2h, 90m, 1d12h")
    span.add_argument(
        "--until", metavar="TIME", help="e.g. '2026-11-26 09:00', in the config's timezone"
    )
    add.add_argument("--why", required=True, help="the reason, shown to everyone")
    add.add_argument("--who", help="who adds it (default: $USER)")
    listing = actions.add_parser("list", help="list silences that have not ended")
    cli.add_common(listing, "one JSON array (where the book is: on stderr)")
    listing.add_argument(
        "--all", action="store_true", help="ended ones too (kept a week after they end)"
    )
    listing.add_argument(
        "--workflow", type=int, metavar="ID", help="only the silences that name this workflow"
    )
    expire = actions.add_parser("expire", help="end silences now")
    expire.add_argument("ids", nargs="*", metavar="ID")
    expire.add_argument(
        "--workflow",
        type=int,
        metavar="ID",
        help="every silence of the book that names this workflow and has not ended",
    )
    cli.add_common(expire)
    expire.add_argument("--who", help="who ends it (default: $USER)")


def run(args: argparse.Namespace) -> int:
    from schedulerx_alert.cli import conventions as cli
    from schedulerx_alert.cli.context import Context
    from schedulerx_alert.config.sections import sections_of
    from schedulerx_alert.storage.silence_book import SilenceBook, SilenceBookError
    from schedulerx_alert.storage.store import StoreError

    ctx = Context.load(args)
    if ctx is None:
        return 2
    config, source = ctx.config, ctx.source
    sections = sections_of(config)
    now = time.time()
    try:
        book = SilenceBook(*ctx.open_state())
        if args.action == "add":
            return _add(args, config, book, now)
        if args.action == "expire":
            return _expire(args, config, book, sections.silences, now)
        return _list(args, config, source, book, sections.silences, now)
    except (SilenceBookError, _Usage) as exc:
        print(block(f"silence {args.action}: {exc}"), file=sys.stderr)
        return 2
    except StoreError as exc:
        # The store failed (network, permission): trying again may work.
        print(block(f"silence {args.action}: {exc}{cli.tried(config)}"), file=sys.stderr)
        return 1


class _Usage(Exception):
    pass


def _add(args: argparse.Namespace, config: Config, book: SilenceBook, now: float) -> int:
    from schedulerx_alert.core.silence import parse_matcher

    given = ((key, getattr(args, flag[2:])) for key, flag in _FLAGS.items())
    raw: dict[str, Any] = {key: value for key, value in given if value}
    if not raw.keys() - {"kinds"}:
        raise _Usage("say what to silence: --job, --workflow, --group, --namespace or --name")
    problems: list[str] = []
    matcher = parse_matcher(raw, "", problems)
    if problems:
        raise _Usage("; ".join(_flag(p) for p in problems))
    end = _end(args, config.timezone, now)
    silence = book.add(matcher, now, end, args.why, _who(args), now)
    watched = {job.job_id for rule in config.watch for job in rule.jobs}
    for job_id in sorted(matcher.job_ids - watched):
        print(f"silence add: note: job {job_id} is not in the config's watch list", file=sys.stderr)
    for workflow in sorted(matcher.workflow_ids - _workflows_watched(config, matcher)):
        print(
            f"silence add: note: workflow {workflow} is not in the config's workflows list",
            file=sys.stderr,
        )
    if args.json:
        print(json_text(_row(silence, now, config.timezone)))
        return 0
    print(
        f"silence {line(silence.id)} added: {line(matcher.describe(), 400)} until "
        f"{_local(silence.until, config.timezone)} {config.timezone} "
        f"(by {line(silence.created_by)}: {line(silence.comment, 400)})"
    )
    return 0


def _workflows_watched(config: Config, matcher: Matcher) -> set[int]:
    """The matcher's workflows that a `workflows:` entry watches (by id, or all of a group
    the matcher does not rule out)."""
    watched: set[int] = set()
    for entry in config.workflows:
        if matcher.group not in (None, entry.group):
            continue
        if matcher.namespace not in (None, entry.namespace):
            continue
        watched |= set(matcher.workflow_ids) if entry.all_workflows else set(entry.ids)
    return watched


def _naming(
    workflow: int, silences: tuple[Silence, ...], now: float, given: list[str]
) -> list[str]:
    """The ids of the book's silences not yet ended that name the workflow."""
    found = [s.id for s in silences if workflow in s.matcher.workflow_ids and s.until > now]
    if not found and not given:
        raise _Usage(
            f"--workflow: the silence book holds no silence of workflow {workflow} in force"
        )
    return [each for each in found if each not in given]


def _flag(problem: str) -> str:
    """`.kinds: unknown kind 'x'` -> `--kind: unknown kind 'x'`."""
    key, _, message = problem.partition(": ")
    flag = _FLAGS.get(key[1:]) if key.startswith(".") else None
    return f"{flag or key}: {message}"


def _end(args: argparse.Namespace, zone: str, now: float) -> float:
    from schedulerx_alert.config.sections import parse_local_time

    if args.duration is not None:
        match = _DURATION.fullmatch(args.duration.strip())
        if not match or not any(match.groups()):
            raise _Usage(f"--for: {args.duration!r} is not a duration such as 2h, 90m or 1d12h")
        # Whole numbers, compared before any float is made: 400 digits of days would
        # overflow one, and more than 4300 are more than int() reads.
        if any(g and len(g) > 7 for g in match.groups()):
            raise _Usage(f"--for: {args.duration[:40]!r} is too long: {_longest()}")
        days, hours, minutes = (int(g or 0) for g in match.groups())
        seconds = days * 86400 + hours * 3600 + minutes * 60
        if seconds > MAX_SECONDS:
            raise _Usage(f"--for: {args.duration[:40]!r} is too long: {_longest()}")
        end = now + seconds
    else:
        try:
            end = parse_local_time(args.until, zone)
        except (ValueError, OverflowError) as exc:
            raise _Usage(f"--until: {exc}") from None
    if end <= now:
        raise _Usage("the silence would end before it starts")
    if end - now > MAX_SECONDS:
        raise _Usage(f"--until: {_longest()}")
    return end


def _longest() -> str:
    return (
        f"at most {MAX_SECONDS // 86400} days from here; longer silences belong in the "
        "config's silences:"
    )


def _who(args: argparse.Namespace) -> str:
    who: str | None = args.who or next(
        (os.environ[v] for v in ("USER", "LOGNAME", "USERNAME") if os.environ.get(v)), None
    )
    if not who:
        raise _Usage("--who: no $USER to take it from; say who you are")
    return who


def _expire(
    args: argparse.Namespace,
    config: Config,
    book: SilenceBook,
    configured: tuple[Silence, ...],
    now: float,
) -> int:
    ids = list(dict.fromkeys(args.ids))
    if args.workflow is not None:
        ids += _naming(args.workflow, book.read().silences, now, ids)
    elif not ids:
        raise _Usage("say which silences to end: their ids, or --workflow ID")
    for each in ids:
        if any(s.id == each for s in configured):
            raise _Usage(f"{line(each)} is in the config file; remove it there and redeploy")
    who = _who(args)
    # One at a time: each expiry is its own record; one that fails stops the rest, and
    # what was already expired is printed first.
    rows = []
    try:
        for each in ids:
            silence = book.expire(each, who, now)
            rows.append(_row(silence, now, config.timezone))
            if not args.json:
                print(
                    f"silence {line(silence.id)} expired by {line(silence.expired_by or '')} "
                    f"({line(silence.matcher.describe(), 400)})"
                )
    finally:
        if args.json:
            print(json_text(rows))
    return 0


def _list(
    args: argparse.Namespace,
    config: Config,
    source: str,
    book: SilenceBook,
    configured: tuple[Silence, ...],
    now: float,
) -> int:
    where = (
        f"silences from the config ({line(source, 400)}) and the silence book "
        f"beside the state, {line(book.store.describe(book.snapshot_key), 400)}"
    )
    print(where, file=sys.stderr if args.json else sys.stdout)
    view = book.read()
    for problem in view.problems:
        print(f"silence list: warning: {line(problem, 400)}", file=sys.stderr)
    silences = [*configured, *view.silences]
    if not args.all:
        silences = [s for s in silences if s.until > now]
    if args.workflow is not None:
        silences = [s for s in silences if args.workflow in s.matcher.workflow_ids]
    silences.sort(key=lambda s: (s.until, s.id))
    zone = config.timezone
    rows = [_row(s, now, zone) for s in silences]
    if args.json:
        print(json_text(rows))
        return 0
    if not rows:
        print("no silences" if args.all else "no silences in force or to come")
        return 0
    header = ("ID", "STATE", f"START ({zone})", "UNTIL", "MATCH", "BY", "WHY")
    table = [header] + [
        (
            line(r["id"], 40),
            r["state"],
            r["start_local"],
            r["until_local"],
            line(s.matcher.describe(), 200),
            line(s.created_by, 40) or "-",
            line(s.comment, 80) or "-",
        )
        for r, s in zip(rows, silences, strict=True)
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        print("  ".join([*cells, row[-1]]).rstrip())
    return 0


def _row(silence: Silence, now: float, zone: str) -> dict[str, Any]:
    return {
        **silence.to_dict(),
        "source": silence.source,
        "state": _state(silence, now),
        "until": silence.until,
        "start_local": _local(silence.start, zone),
        "until_local": _local(silence.until, zone),
    }


def _state(silence: Silence, now: float) -> str:
    if silence.until <= now:
        return "expired" if silence.expired_at is not None else "ended"
    return "active" if silence.start <= now else "pending"


def _local(epoch: float, zone: str) -> str:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.fromtimestamp(epoch, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")
