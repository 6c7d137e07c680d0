"""`schedulerx-alert send-test RECEIVER` and `heartbeat --now`: see a message arrive now.

`send-test` posts one short, signed message through the receiver's robot exactly as a tick
posts (DingTalkReceiver: the same signature, keyword, screen and errcodes), and tells
DingTalk's answer in words. `heartbeat --now` sends the digest the next heartbeat would
send (the same counters in the state, the same rendering) without waiting for its hour.
It reads the state without the lease and writes nothing: the scheduled digest still goes
at its hour, so a user sees both, and the counters it reads are left for that one.
Neither prints a token or a secret: every line goes through the redactor of them all.
"""

from __future__ import annotations

import argparse
import getpass
import socket
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from schedulerx_alert.cli.context import Context
    from schedulerx_alert.config import Config
    from schedulerx_alert.delivery.render import Message
    from schedulerx_alert.support.credentials import Credentials


def add_parser(commands: Any) -> None:
    """Two commands: `send-test` and `heartbeat`."""
    from schedulerx_alert.cli import conventions as cli

    test = commands.add_parser(
        "send-test",
        help="post a short signed test message through one receiver's robot now",
        description=(
            "Posts one short test message to RECEIVER's DingTalk robot, signed and "
            "keyworded as a tick posts, and says what DingTalk answered (310000: the "
            "signature, keyword or IP allowlist is wrong; 300001: no such token; 130101: "
            "throttled). Never prints the token or the secret."
        ),
    )
    test.add_argument("receiver", metavar="RECEIVER", help="a receiver name in the config")
    cli.add_common(test)
    beat = commands.add_parser(
        "heartbeat",
        help="send today's heartbeat digest now (--now), without waiting for its hour",
        description=(
            "With --now, sends the digest the heartbeat would send (the counters the state "
            "keeps, the same template) to the heartbeat receiver. It is not recorded: the "
            "state is read without the lease and not written, and the scheduled digest "
            "still goes at heartbeat.at. --dry-run prints it and sends nothing."
        ),
    )
    beat.add_argument("--now", action="store_true", required=True, help="send it now")
    beat.add_argument("--dry-run", action="store_true", help="print it; send nothing")
    cli.add_common(beat)


# DingTalk's errcodes a person meets when setting a robot up (FACTS.md).
MEANINGS = {
    310000: "the signature, keyword or IP allowlist is wrong: check the robot's 加签 secret "
    "(SEC...), its keywords (set `keyword:` on the receiver) and its IP list",
    300001: "DingTalk knows no robot with this access_token (deleted, or mistyped)",
    300005: "DingTalk knows no robot with this access_token (deleted, or mistyped)",
    130101: "the robot sent more than 20 messages in a minute and is throttled for 10 minutes",
    460101: "the message is too large",
    43004: "DingTalk refuses the message body",
    -1: "DingTalk is busy; try again",
}


def meaning(errcode: int | None, message: str) -> str:
    if errcode is not None and errcode in MEANINGS:
        return f"{MEANINGS[errcode]} ({message})"
    return message


def run(args: argparse.Namespace, clock: Callable[[], float] | None = None) -> int:
    from schedulerx_alert.cli.context import Context

    ctx = Context.load(args)
    if ctx is None:
        return 2
    now = (clock or time.time)()
    if args.command == "send-test":
        return _send_test(args, ctx, now)
    return _heartbeat(args, ctx, now)


def _say(args: argparse.Namespace, redact: Callable[[str], str], said: str, **doc: Any) -> None:
    from schedulerx_alert.cli.terminal import Output

    out = Output(redact, args.json)
    if out.json:
        out.document(doc)
    else:
        out.text(said if said.endswith("\n") else f"{said}\n")


def _post(
    config: Config,
    credentials: Credentials | None,
    name: str,
    message: Message,
    now: float,
) -> tuple[bool, str, int | None]:
    """Posts `message` through receiver `name` as a tick would: taken, DingTalk's answer
    in words, its errcode."""
    from schedulerx_alert.delivery.channels.dingtalk import DingTalkReceiver, TransportError
    from schedulerx_alert.handler import screen_of

    receiver = DingTalkReceiver(
        config.receivers[name], 10.0, clock=lambda: now, screen=screen_of(config, credentials)
    )
    try:
        receiver.send(message)
    except TransportError as exc:
        return False, meaning(exc.errcode, str(exc)), exc.errcode
    return True, "DingTalk took it (errcode 0)", 0


def _unknown(config: Config, name: str) -> str | None:
    if name in config.receivers:
        return None
    from schedulerx_alert.cli.terminal import line

    known = ", ".join(config.receivers)
    return f"no receiver {line(name)!r} in the config (its receivers: {known})"


def _send_test(args: argparse.Namespace, ctx: Context, now: float) -> int:
    from schedulerx_alert.delivery.render import Message

    config, redact = ctx.config, ctx.redact
    problem = _unknown(config, args.receiver)
    if problem:
        print(redact(f"send-test: {problem}"), file=sys.stderr)
        return 2
    when = datetime.fromtimestamp(now, config.zone).strftime("%Y-%m-%d %H:%M:%S")
    english = config.templates.language.startswith("en")
    title = "schedulerx-alert test" if english else "schedulerx-alert 测试消息"
    who = f"{_user()}@{socket.gethostname()}"
    text = (
        f"#### {title}\n\nA test from `schedulerx-alert send-test` ({who}, {when} "
        f"{config.timezone}): receiver **{args.receiver}** reaches this group."
        if english
        else f"#### {title}\n\n来自 `schedulerx-alert send-test`（{who}，{when} "
        f"{config.timezone}）：接收方 **{args.receiver}** 可以发到本群。"
    )
    taken, answer, errcode = _post(
        config, ctx.credentials, args.receiver, Message(title, text), now
    )
    receiver = config.receivers[args.receiver]
    robot = f"{receiver.url.origin}{receiver.url.path}"
    _say(
        args,
        redact,
        f"send-test {args.receiver} ({robot}): {answer}",
        receiver=args.receiver,
        sent=taken,
        errcode=errcode,
        answer=answer,
    )
    return 0 if taken else 1


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a container's passwd
        return "someone"


def _heartbeat(args: argparse.Namespace, ctx: Context, now: float) -> int:
    from schedulerx_alert.cli.conventions import tried
    from schedulerx_alert.core import heartbeat as core
    from schedulerx_alert.delivery import heartbeat
    from schedulerx_alert.delivery.render import Renderer
    from schedulerx_alert.storage.session import StateRefused
    from schedulerx_alert.storage.silence_book import SilenceBook
    from schedulerx_alert.storage.store import StoreError
    from schedulerx_alert.tick import targets_of

    config, redact = ctx.config, ctx.redact
    settings = config.heartbeat
    if settings is None:
        print(
            "heartbeat: the config has no heartbeat: section; add one, e.g. "
            "`heartbeat: {receiver: ops, at: '09:30'}` (docs/alerts.md)",
            file=sys.stderr,
        )
        return 2
    try:
        store, key, inspection = ctx.inspect_state("heartbeat --now")
        book = SilenceBook(store, key).read()
    except (StoreError, StateRefused) as exc:
        print(
            redact(f"heartbeat: the state could not be read: {exc}{tried(config)}"), file=sys.stderr
        )
        return 1
    state = inspection.state
    targets = targets_of(config, state.catalog)
    day, _ = core.local_day(now, config.zone)
    silences = heartbeat.silences_of(state, (*config.silences, *book.silences), now)
    found = core.digest(
        state.heartbeat,
        day,
        now,
        heartbeat.reading_of(config, state, targets, now),
        settings.top_jobs,
        silences,
    )
    renderer = Renderer.of(config)
    names = {k: t.job_name for k, t in targets.items() if t.job_name}
    message = heartbeat.heartbeat_message(renderer, found, names, settings.at_text, config.timezone)
    later = f"not recorded: the scheduled digest still goes at {settings.at_text} {config.timezone}"
    if args.dry_run:
        _say(
            args,
            redact,
            f"--- to {settings.receiver}: {message.title}\n{message.text}\n",
            receiver=settings.receiver,
            sent=False,
            title=message.title,
            text=message.text,
        )
        return 0
    taken, answer, errcode = _post(config, ctx.credentials, settings.receiver, message, now)
    _say(
        args,
        redact,
        f"heartbeat for {day} to {settings.receiver}: {answer}; {later}",
        receiver=settings.receiver,
        day=day.isoformat(),
        sent=taken,
        errcode=errcode,
        answer=answer,
        recorded=False,
    )
    return 0 if taken else 1
