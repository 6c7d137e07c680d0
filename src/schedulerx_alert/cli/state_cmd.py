"""`schedulerx-alert state show | forget`: what the state holds, and dropping one job's history.

`show` takes no lease: it reads the state and applies the checkpoints of ticks
that have not committed, as the next tick will, and changes nothing. `forget`
takes the lease exactly as a tick does, so it never races one.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from schedulerx_alert.cli.terminal import Output
from schedulerx_alert.core.findings import job_of_fingerprint
from schedulerx_alert.core.model import JobKey
from schedulerx_alert.core.state import State

if TYPE_CHECKING:
    from schedulerx_alert.config import Config
    from schedulerx_alert.core.silence import Silence
    from schedulerx_alert.storage.store import StateStore

# Forgetting is a read and a write; a tick waits at most this long for a dead CLI's lease.
FORGET_LEASE_SECONDS = 60.0


def add_parser(commands: Any) -> None:
    state = commands.add_parser(
        "state",
        help="show what the state holds, or forget one job's history",
        description=(
            "Reads the state the config's state.url names (credentials from "
            "ALIBABA_CLOUD_* variables for OSS). `show` changes nothing; `forget` takes "
            "the state's lease like a tick."
        ),
    )
    actions = state.add_subparsers(dest="state_command", required=True)
    show = actions.add_parser(
        "show",
        help="pending alerts, silences, the lease, muted robots, the last tick",
        description=(
            "Prints what the next tick will start from: alerts pending per receiver "
            "(with age), silenced counts, the lease (holder = FC request id, generation), "
            "robots muted by DingTalk and until when, the last committed tick's summary, "
            "the watched jobs. Takes no lease; applies checkpoints of ticks that did not "
            "commit, as the next tick will. Times are in the config's timezone."
        ),
    )
    from schedulerx_alert.cli import conventions as cli

    cli.add_common(show)
    forget = actions.add_parser(
        "forget",
        help="drop one job's history; its next poll is a first poll",
        description=(
            "Removes the job's run records from the state, under the state's lease. "
            "The job's next poll is then a first poll: runs that ended more than "
            "first_run_lookback_minutes before it are recorded as history, and more "
            "recent failures are announced, again if they were announced before. "
            "Refuses while a tick holds the lease, when the id is in more than one "
            "namespace/group (name one), and when alerts of the job are pending "
            "(unless --drop-pending)."
        ),
    )
    cli.add_common(forget)
    forget.add_argument("--job", required=True, type=int, metavar="ID")
    forget.add_argument("--namespace", metavar="NS", help="when the id is in several")
    forget.add_argument("--group", metavar="G", help="when the id is in several")
    forget.add_argument(
        "--drop-pending",
        action="store_true",
        help="also drop the job's alerts not delivered yet (they are never sent)",
    )


def run(args: argparse.Namespace, clock: Callable[[], float] | None = None) -> int:
    # Imported here so that the CLI's other commands stay light.
    from schedulerx_alert.cli import conventions as cli
    from schedulerx_alert.cli.context import Context
    from schedulerx_alert.config.sections import sections_of
    from schedulerx_alert.storage.store import StoreError

    clock = clock or time.time
    command = f"state {args.state_command}"
    ctx = Context.load(args)
    if ctx is None:
        return 2
    config = ctx.config
    sections = sections_of(config)
    try:
        store, key = ctx.open_state()
    except StoreError as exc:
        print(ctx.redact(f"{command}: {exc}{cli.tried(config)}"), file=sys.stderr)
        return 2
    out = Output(ctx.redact, args.json)
    try:
        if args.state_command == "show":
            return _show(config, sections.silences, store, key, clock, out)
        return _forget(args, config, store, key, clock, out)
    except StoreError as exc:
        # The store failed (network, permission): trying again may work.
        out.error(f"{command}: {exc}{cli.tried(config)}")
        return 1


def _show(
    config: Config,
    configured: tuple[Silence, ...],
    store: StateStore,
    key: str,
    clock: Callable[[], float],
    out: Output,
) -> int:
    from schedulerx_alert.cli import state_view
    from schedulerx_alert.storage.session import StateRefused, StateSession
    from schedulerx_alert.storage.silence_book import SilenceBook

    session = StateSession(store, key, owner="state show", ttl=0, clock=clock)
    try:
        inspection = session.inspect()
    except StateRefused as exc:
        out.error(f"state show: {exc}")
        return 2
    book = SilenceBook(store, key).read()
    silences = (*configured, *book.silences)
    notes = [f"silence book: {problem}" for problem in book.problems]
    owed, unread = state_view.follow_ups(store, key)
    notes += unread
    doc = state_view.document(
        inspection, config, store.describe(key), clock(), silences, notes, owed
    )
    if out.json:
        out.document(doc)
    else:
        out.text(state_view.text(doc))
    return 1 if inspection.corrupt else 0


# -- forget -----------------------------------------------------------------------


@dataclass(frozen=True)
class Forgotten:
    job: str
    records: int
    dropped: dict[str, int]
    watched: bool


class Refused(Exception):
    """Forgetting was refused; nothing changed. `candidates` when the id was ambiguous."""

    def __init__(self, message: str, candidates: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.candidates = candidates


def forget_job(
    state: State,
    job_id: int,
    namespace: str | None,
    group: str | None,
    drop_pending: bool,
    watched: Collection[JobKey],
) -> tuple[State, Forgotten]:
    """The state without one job's run records (and, when asked, its pending
    alerts). Pure; raises Refused. Its entries in `State.delivered` go too, so
    that its next poll is a first poll in every respect: what ended inside the
    lookback is announced, whatever was announced before."""

    def match(key: JobKey) -> bool:
        return (
            key.job_id == job_id
            and (namespace is None or key.namespace == namespace)
            and (group is None or key.group == group)
        )

    marked = {k: job for k in state.delivered if (job := _job_of(k)) is not None}
    known = {*state.jobs, *(job for a in state.outbox for job in a.jobs), *marked.values()}
    keys = sorted(k for k in known if match(k))
    if not keys:
        where = "".join(
            f" {label} {value!r}"
            for label, value in (("namespace", namespace), ("group", group))
            if value is not None
        )
        raise Refused(f"the state holds no history of job {job_id}{where}; nothing to forget")
    if len(keys) > 1:
        listed = tuple(str(k) for k in keys)
        raise Refused(
            f"job id {job_id} is in {len(keys)} namespace/group pairs: {', '.join(listed)}; "
            "name one with --namespace and --group",
            listed,
        )
    [key] = keys
    pending = [a for a in state.outbox if key in a.jobs]
    by_receiver = dict(sorted(Counter(a.receiver for a in pending).items()))
    if pending and not drop_pending:
        who = ", ".join(f"{name}: {n}" for name, n in by_receiver.items())
        raise Refused(
            f"job {key} has {len(pending)} alert(s) not delivered yet ({who}); they are "
            "owed to the group. Let a tick deliver them, or pass --drop-pending to drop "
            "them too (they are then never sent)"
        )
    record = state.jobs.get(key)
    new_state = state.with_updates(
        jobs={k: r for k, r in state.jobs.items() if k != key},
        outbox=tuple(a for a in state.outbox if key not in a.jobs),
        delivered={k: t for k, t in state.delivered.items() if marked.get(k) != key},
    )
    return new_state, Forgotten(
        str(key), len(record.instances) if record else 0, by_receiver, key in watched
    )


def _job_of(alert_key: str) -> JobKey | None:
    # Alert keys read "receiver:kind:job:…", the receiver percent-encoded (see Alert.key).
    _, _, fingerprint = alert_key.partition(":")
    return job_of_fingerprint(fingerprint)


def _owner() -> str:
    return f"state forget on {socket.gethostname()} (pid {os.getpid()})"


def _forget(
    args: argparse.Namespace,
    config: Config,
    store: StateStore,
    key: str,
    clock: Callable[[], float],
    out: Output,
) -> int:
    from schedulerx_alert.storage.session import LeaseHeld, LeaseLost, StateRefused, StateSession
    from schedulerx_alert.tick import targets_of

    session = StateSession(store, key, _owner(), FORGET_LEASE_SECONDS, clock)
    try:
        state = session.begin()
    except LeaseHeld as exc:
        return _refused(out, f"refused: {exc}; nothing changed, try again when it is done")
    except StateRefused as exc:
        out.error(f"state forget: {exc}")
        return 2
    for note in session.notes:
        out.error(f"state forget: {note}")
    try:
        new_state, forgotten = forget_job(
            state,
            args.job,
            args.namespace,
            args.group,
            args.drop_pending,
            targets_of(config, state.catalog),
        )
    except Refused as exc:
        session.release()
        return _refused(out, f"refused: {exc}", exc.candidates)
    except BaseException:
        session.release()
        raise
    try:
        session.commit(new_state)
    except LeaseLost as exc:
        return _refused(out, f"not saved: {exc}")
    except BaseException:
        session.release()
        raise
    lookback = config.first_run_lookback.total_seconds() / 60
    dropped = sum(forgotten.dropped.values())
    if out.json:
        out.document(
            {
                "forgotten": forgotten.job,
                "records": forgotten.records,
                "pending_dropped": dropped,
                "pending_dropped_by_receiver": forgotten.dropped,
                "watched": forgotten.watched,
                "first_run_lookback_minutes": lookback,
            }
        )
        return 0
    lines = [
        f"forgot {forgotten.job}: {forgotten.records} run record(s)"
        + (f", {dropped} pending alert(s) dropped" if dropped else "")
    ]
    if forgotten.watched:
        lines.append(
            "its next poll is a first poll: runs that ended more than "
            f"{lookback:g} min before it (first_run_lookback_minutes) are kept as history, "
            "more recent failures are announced, again if they already were"
        )
    else:
        lines.append("the config does not watch it: it stays out of the state")
    out.text("\n".join(lines) + "\n")
    return 0


def _refused(out: Output, message: str, candidates: tuple[str, ...] = ()) -> int:
    if out.json:
        out.document({"forgotten": None, "refused": message, "candidates": list(candidates)})
    else:
        out.error(f"state forget: {message}")
    return 1
