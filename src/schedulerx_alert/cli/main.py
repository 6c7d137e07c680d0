"""`schedulerx-alert`: validate a config, run a tick from a laptop, invoke the deployment."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

# The commands' modules are light: each imports what it runs with when it runs.
from schedulerx_alert.cli import (
    config_cmd,
    jobs_cmd,
    render_cmd,
    routes_cmd,
    send_cmd,
    silence_cmd,
    state_cmd,
)
from schedulerx_alert.cli.bounds import DEPLOYED_TIMEOUT, timeout_seconds
from schedulerx_alert.config import ConfigError
from schedulerx_alert.support.credentials import resolve_credentials


def main(argv: Sequence[str] | None = None, clock: Callable[[], float] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return _run(args, clock)


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree (tests/test_cli_conventions.py walks it)."""
    from schedulerx_alert.cli import conventions as cli

    parser = argparse.ArgumentParser(
        prog="schedulerx-alert",
        description="Announce failed SchedulerX job runs in DingTalk groups.",
        epilog=cli.EXIT_CODES,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check a config file offline")
    cli.add_config(validate, "FILE (default: SCHEDULERX_ALERT_CONFIG)")
    cli.add_json(validate)
    validate.add_argument(
        "--timeout",
        type=timeout_seconds,
        default=DEPLOYED_TIMEOUT,
        help="the function's timeout in seconds (as deployed: %(default)g); refuses settings "
        "under which a tick of that length cannot poll a single job",
    )
    check = commands.add_parser(
        "check", help="run one tick now with credentials from ALIBABA_CLOUD_* variables"
    )
    cli.add_common(check, "only the summary, as JSON (with --dry-run, the messages in `preview`)")
    check.add_argument(
        "--dry-run", action="store_true", help="print the messages; send nothing, save nothing"
    )
    check.add_argument(
        "--timeout", type=timeout_seconds, default=DEPLOYED_TIMEOUT, help="time budget in seconds"
    )
    check.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="log lines on stderr: text (default on a terminal) or json (as in FC); "
        "also SCHEDULERX_ALERT_LOG_FORMAT",
    )
    _add_invoke_parser(commands)
    # In the order --help lists them.
    for module in (config_cmd, render_cmd, silence_cmd, routes_cmd, state_cmd, jobs_cmd, send_cmd):
        module.add_parser(commands)
    _epilogs(parser, cli.EXIT_CODES)
    return parser


def _epilogs(parser: argparse.ArgumentParser, text: str) -> None:
    """Every command's --help ends with the exit codes."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                sub.epilog = sub.epilog or text
                _epilogs(sub, text)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("schedulerx-alert")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _run(args: argparse.Namespace, clock: Callable[[], float] | None) -> int:
    from schedulerx_alert.cli import conventions as cli

    if args.command in ("send-test", "heartbeat"):
        return send_cmd.run(args, clock)
    if args.command == "invoke":
        return _invoke(args)
    if args.command == "config":
        return config_cmd.run(args)
    if args.command == "render":
        return render_cmd.run(args)
    if args.command == "silence":
        return silence_cmd.run(args)
    if args.command == "routes":
        return routes_cmd.run(args, clock)
    if args.command == "state":
        return state_cmd.run(args, clock)
    if args.command == "jobs":
        return jobs_cmd.run(args, clock)

    if args.command == "validate":
        return _validate(args.config, args.timeout, args.json)
    from schedulerx_alert.cli.context import Context

    ctx = Context.load(args)
    if ctx is None:
        return 2
    config = ctx.config
    # Imported late so that `validate` stays fast and never touches the network stack.
    from schedulerx_alert.handler import run
    from schedulerx_alert.support import process_log as logs

    logs.choose_format(args.log_format)

    summary, redactor = run(config, ctx.credentials, dry_run=args.dry_run, timeout=args.timeout)
    from schedulerx_alert.cli.terminal import (  # job text (names, errors) on a terminal
        block,
        json_text,
    )

    doc = summary.as_dict()
    if args.dry_run and args.json:
        doc["preview"] = list(summary.preview)
    elif args.dry_run:
        for item in summary.preview:
            preview = f"--- to {item['receiver']}: {item['title']}\n{item['text']}\n"
            print(redactor(block(preview)))
    if summary.status == "failed" and any("OSS" in p for p in summary.problems):
        print(redactor(f"check: state {config.state.url}{cli.tried(config)}"), file=sys.stderr)
    print(redactor(json_text(doc)))
    return 0 if summary.status in ("ok", "skipped") else 1


def _validate(path: str | None, timeout: float, as_json: bool = False) -> int:
    from pathlib import Path

    from schedulerx_alert.cli.config_cmd import check
    from schedulerx_alert.cli.terminal import json_text
    from schedulerx_alert.config.source import CONFIG_ENV

    path = path or os.environ.get(CONFIG_ENV)
    if not path:
        print(f"--config: name the config file, or set {CONFIG_ENV}", file=sys.stderr)
        return 2
    try:
        config, _ = check(Path(path), timeout, os.environ)
    except ConfigError as exc:
        if as_json:
            print(json_text({"config": path, "ok": False, "problems": exc.problems}))
        print(exc, file=sys.stderr)
        return 2
    rules = len(config.watch)
    whole = sum(1 for rule in config.watch if rule.discovers)
    if as_json:
        doc = {
            "config": path,
            "ok": True,
            "jobs": config.job_count,
            "watch_rules": rules,
            "discovering_rules": whole,
            "receivers": len(config.receivers),
            "state": config.state.url,
        }
        print(json_text(doc))
        return 0
    groups = f", {whole} reading their group's job list" if whole else ""
    print(
        f"{path}: ok ({config.job_count} jobs in {rules} watch rule(s){groups}, "
        f"{len(config.receivers)} receiver(s), state at {config.state.url})"
    )
    return 0


def _add_invoke_parser(commands: Any) -> None:
    invoke = commands.add_parser(
        "invoke",
        help="call the deployed function once through the FC API and print its summary",
        description=(
            "Calls the deployed function synchronously (FC 3.0 InvokeFunction, or FC 2.0 "
            "with --service) with credentials from ALIBABA_CLOUD_* variables, and prints "
            'the JSON summary it returns. --dry-run sends {"dry_run": true}: the function '
            "renders and reports, and sends and saves nothing."
        ),
    )
    from schedulerx_alert.cli import conventions as cli

    invoke.add_argument(
        "--dry-run", action="store_true", help="the function sends nothing, saves nothing"
    )
    cli.add_config(
        invoke,
        "FILE or oss://BUCKET/KEY: --region defaults to its region "
        "(default: SCHEDULERX_ALERT_CONFIG when set)",
    )
    cli.add_json(invoke, "only the function's JSON summary on stdout (it always is JSON)")
    invoke.add_argument("--function-name", default="schedulerx-alert")
    invoke.add_argument(
        "--region", help="e.g. cn-hangzhou (default: ALIBABA_CLOUD_REGION_ID or FC_REGION)"
    )
    invoke.add_argument(
        "--account-id",
        help="Alibaba Cloud account id, for the account endpoint "
        "(default: ALIBABA_CLOUD_ACCOUNT_ID or FC_ACCOUNT_ID)",
    )
    invoke.add_argument(
        "--endpoint",
        help="FC API endpoint (default: https://ACCOUNT.REGION.fc.aliyuncs.com, "
        "or https://fcv3.REGION.aliyuncs.com without an account id)",
    )
    invoke.add_argument(
        "--service", help="FC 2.0 service holding the function (FC 3.0 functions have none)"
    )
    invoke.add_argument("--qualifier", help="version or alias (default: LATEST)")
    invoke.add_argument(
        "--timeout", type=timeout_seconds, default=90.0, help="seconds to wait for the function"
    )


def _invoke(args: argparse.Namespace) -> int:
    # Only this command needs the FC client code.
    from schedulerx_alert.cli.context import can_sign
    from schedulerx_alert.cli.invoke import (
        InvokeError,
        account_id_from_env,
        invoke,
        redactor_of,
        region_from_env,
    )

    credentials = resolve_credentials(None)
    if not can_sign(credentials):
        return 2
    region = args.region or region_from_env()
    if not region and not args.endpoint:
        region = _config_region(args, credentials)
    if not region and not args.endpoint:
        print("no region: pass --region or set ALIBABA_CLOUD_REGION_ID", file=sys.stderr)
        return 2
    redact = redactor_of(credentials)
    try:
        result = invoke(
            function_name=args.function_name,
            region=region or "",
            credentials=credentials,
            dry_run=args.dry_run,
            account_id=args.account_id or account_id_from_env(),
            endpoint=args.endpoint,
            service=args.service,
            qualifier=args.qualifier,
            timeout=args.timeout,
        )
    except InvokeError as exc:
        print(redact(str(exc)), file=sys.stderr)
        return 2
    from schedulerx_alert.cli.terminal import (  # the function's answer quotes job text
        block,
        json_text,
    )

    if result.error_type:
        raised = f"the function raised ({result.error_type}, RequestId {result.request_id}):"
        print(redact(block(raised)), file=sys.stderr)
        print(redact(block(result.text)), file=sys.stderr)
        return 1
    try:
        summary = result.json()
    except ValueError:
        print(redact(block(result.text)), file=sys.stderr if args.json else sys.stdout)
        return 1
    print(redact(json_text(summary)))
    status = summary.get("status") if isinstance(summary, dict) else None
    return 0 if status in ("ok", "skipped") else 1


def _config_region(args: argparse.Namespace, credentials: Any) -> str | None:
    """The region of --config (or SCHEDULERX_ALERT_CONFIG), when one is named and reads."""
    from schedulerx_alert.cli import conventions as cli
    from schedulerx_alert.config.source import CONFIG_ENV

    if not (args.config or os.environ.get(CONFIG_ENV)):
        return None
    try:
        return cli.load_text(args, credentials).parse(os.environ).region
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None


if __name__ == "__main__":
    sys.exit(main())
