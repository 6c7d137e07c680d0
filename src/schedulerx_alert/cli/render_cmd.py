"""`schedulerx-alert render`: the exact body DingTalk would receive, for sample data, offline."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from schedulerx_alert.cli.samples import KINDS
from schedulerx_alert.config import (
    LANGUAGES,
    Config,
    ConfigError,
    ReceiverConfig,
    TemplateConfig,
)
from schedulerx_alert.support.urls import parse_http_url

DEFAULT_REGION = "cn-hangzhou"
# The samples' zone (the API page's example is a China region's).
DEFAULT_ZONE = "Asia/Shanghai"
# Never called: DingTalkReceiver needs a webhook to exist, and render sends nothing.
_NOWHERE = "https://oapi.dingtalk.com/robot/send?access_token=render-sends-nothing"


def add_parser(commands: Any) -> None:
    kinds = "; ".join(f"{k.name}: {k.description}" for k in KINDS.values())
    render = commands.add_parser(
        "render",
        help="print the DingTalk message of one kind for sample data; optionally draw it",
        description=(
            "Prints the JSON body a DingTalk robot would receive for one kind of message, "
            "made from sample data (the example instance of SchedulerX's GetJobInstanceList "
            "page, failed or rejected), offline. With --config, that config's language, "
            "templates and receiver options (keyword, at_mobiles) apply; nothing is sent "
            f"and no secret is printed. Kinds: {kinds}."
        ),
    )
    render.add_argument("--kind", "-k", required=True, choices=list(KINDS))
    render.add_argument(
        "--template",
        "-t",
        metavar="FILE",
        help="a Jinja2 template to use for this kind instead of the default (or the config's)",
    )
    render.add_argument(
        "--lang", choices=LANGUAGES, help="message language (default: the config's, or zh-CN)"
    )
    from schedulerx_alert.cli import conventions as cli

    cli.add_common(
        render,
        "the body as JSON on stdout (it always is; notes go to stderr)",
        "take language, templates and receiver from it (default: SCHEDULERX_ALERT_CONFIG "
        "when set, else the defaults)",
    )
    render.add_argument(
        "--receiver", metavar="NAME", help="the config's receiver to format for (default: first)"
    )
    render.add_argument(
        "--preview",
        metavar="OUT",
        type=Path,
        help="also draw the message as a DingTalk group shows it: OUT.html, or OUT.png "
        "(needs the [preview] extra; PNG needs Chromium)",
    )


def run(args: argparse.Namespace) -> int:
    # The product modules are imported here so that the CLI's other commands stay light.
    from schedulerx_alert.cli.samples import Sample
    from schedulerx_alert.delivery.channels.dingtalk import DingTalkReceiver
    from schedulerx_alert.delivery.held_digests import action_links
    from schedulerx_alert.delivery.outbox import Planner
    from schedulerx_alert.delivery.render import Renderer, RenderError

    kind = KINDS[args.kind]
    from schedulerx_alert.cli import conventions as cli
    from schedulerx_alert.config.source import CONFIG_ENV
    from schedulerx_alert.support.credentials import resolve_credentials

    config: Config | None = None
    args.config = args.config or os.environ.get(CONFIG_ENV)
    if args.config:
        try:
            config = cli.load_text(args, resolve_credentials(None)).parse(os.environ)
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return 2
    templates = config.templates if config else TemplateConfig()
    language = args.lang or templates.language
    chosen: dict[str, str | None] = {"alert": templates.alert, "summary": templates.summary}
    if args.template:
        if kind.template is None:
            print(
                f"render: --template: the {kind.name} message is not made from a template",
                file=sys.stderr,
            )
            return 2
        chosen[kind.template] = args.template
    try:
        receiver_config = _receiver(config, args.receiver, args.config)
    except LookupError as exc:
        print(f"render: {exc.args[0]}", file=sys.stderr)
        return 2
    try:
        renderer = Renderer(
            language,
            config.region if config else DEFAULT_REGION,
            chosen["alert"],
            chosen["summary"],
            timezone=config.timezone if config else DEFAULT_ZONE,
            kind_templates={
                name: path
                for name, path in chosen.items()
                if name not in ("alert", "summary") and path is not None
            },
        )
        receiver = DingTalkReceiver(receiver_config)
        # The tick's own path: its planner (mentions, buttons) and the receiver's payload.
        planner = Planner(
            renderer,
            receiver,
            config.dingtalk.summary_threshold if config else 3,
            links=action_links(config, time.time) if config else None,
        )
        heartbeat = config.heartbeat if config else None
        sample = Sample(
            renderer,
            language,
            heartbeat.at_text if heartbeat else "09:00",
            config.timezone if config else DEFAULT_ZONE,
        )
        message = kind.message(sample, planner)
    except RenderError as exc:
        print(f"render: {exc}", file=sys.stderr)
        return 2
    if config is not None and config.actions is not None and config.actions.problems:
        print(
            "render: note: the actions: section has problems (see validate); a tick sends "
            "without buttons, and so does this",
            file=sys.stderr,
        )
    body = receiver.body(message)
    if args.preview is not None:
        from schedulerx_alert.cli.preview import PreviewError, write

        # Drawn before anything is printed: a failed preview leaves no half-done output.
        try:
            write(json.loads(body), args.preview, language)
        except (PreviewError, OSError) as exc:
            print(f"render: preview: {exc}", file=sys.stderr)
            return 2
        print(f"render: preview written to {args.preview}", file=sys.stderr)
    sys.stdout.flush()
    sys.stdout.buffer.write(body + b"\n")
    sys.stdout.buffer.flush()
    if not message.text.strip():
        print("render: warning: the message text is empty; DingTalk refuses it", file=sys.stderr)
    if len(body) > receiver.max_bytes:
        print(
            f"render: warning: {len(body)} bytes, over the {receiver.max_bytes} a message may "
            "take; a tick would shorten or split it",
            file=sys.stderr,
        )
    return 0


def _receiver(config: Config | None, name: str | None, source: str | None) -> ReceiverConfig:
    """The receiver whose options (keyword, at_mobiles) shape the body; never its secrets."""
    if config is None:
        if name is not None:
            raise LookupError("--receiver needs --config")
        return ReceiverConfig(name="render", url=parse_http_url(_NOWHERE))
    if name is None:
        return next(iter(config.receivers.values()))
    if name not in config.receivers:
        known = ", ".join(config.receivers)
        raise LookupError(f"--receiver: no receiver {name!r} in {source} ({known})")
    return config.receivers[name]
