"""`schedulerx-alert`: validate a config, run a tick from a laptop, invoke the deployment."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from schedulerx_alert.cli.bounds import timeout_seconds
from schedulerx_alert.config import ConfigError
from schedulerx_alert.support.credentials import resolve_credentials


def main(argv: Sequence[str] | None = None, clock: Callable[[], float] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="schedulerx-alert",
        description="Announce failed SchedulerX job runs in DingTalk groups.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check a config file offline")
    validate.add_argument("--config", "-c", required=True)
    validate.add_argument(
        "--timeout",
        type=timeout_seconds,
        default=60.0,
        help="the function's timeout in seconds (as deployed: 60); refuses settings "
        "under which a tick of that length cannot poll a single job",
    )
    check = commands.add_parser(
        "check", help="run one tick now with credentials from ALIBABA_CLOUD_* variables"
    )
    check.add_argument(
        "--config",
        "-c",
        metavar="FILE|oss://BUCKET/KEY",
        help="default: SCHEDULERX_ALERT_CONFIG, as the function reads it",
    )
    check.add_argument(
        "--dry-run", action="store_true", help="print the messages; send nothing, save nothing"
    )
    check.add_argument(
        "--timeout", type=timeout_seconds, default=60.0, help="time budget in seconds"
    )
    check.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="log lines on stderr: text (default on a terminal) or json (as in FC); "
        "also SCHEDULERX_ALERT_LOG_FORMAT",
    )
    _add_invoke_parser(commands)
    from schedulerx_alert.cli import (
        config_cmd,
        jobs_cmd,
        render_cmd,
        routes_cmd,
        silence_cmd,
        state_cmd,
    )

    config_cmd.add_parser(commands)
    render_cmd.add_parser(commands)
    silence_cmd.add_parser(commands)
    routes_cmd.add_parser(commands)
    state_cmd.add_parser(commands)
    jobs_cmd.add_parser(commands)
    args = parser.parse_args(argv)
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
        return _validate(args.config, args.timeout)
    from schedulerx_alert.storage.config_text import OSS_READ_SECONDS, load_command_config

    credentials = resolve_credentials(None)
    try:
        text = load_command_config(args.config, os.environ, credentials, OSS_READ_SECONDS)
        config = text.parse(os.environ)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    # Imported late so that `validate` stays fast and never touches the network stack.
    from schedulerx_alert.handler import run
    from schedulerx_alert.support import process_log as logs

    logs.choose_format(args.log_format)

    summary, redactor = run(config, credentials, dry_run=args.dry_run, timeout=args.timeout)
    from schedulerx_alert.cli.terminal import (  # job text (names, errors) on a terminal
        block,
        json_text,
    )

    if args.dry_run:
        for item in summary.preview:
            preview = f"--- to {item['receiver']}: {item['title']}\n{item['text']}\n"
            print(redactor(block(preview)))
    print(redactor(json_text(summary.as_dict())))
    return 0 if summary.status in ("ok", "skipped") else 1


def _validate(path: str, timeout: float) -> int:
    from pathlib import Path

    from schedulerx_alert.cli.config_cmd import check

    try:
        config, _ = check(Path(path), timeout, os.environ)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    rules = len(config.watch)
    whole = sum(1 for rule in config.watch if rule.discovers)
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
    invoke.add_argument(
        "--dry-run", action="store_true", help="the function sends nothing, saves nothing"
    )
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
    from schedulerx_alert.cli.invoke import (
        InvokeError,
        account_id_from_env,
        invoke,
        region_from_env,
    )
    from schedulerx_alert.support.redact import Redactor

    credentials = resolve_credentials(None)
    if credentials is None:
        print(
            "no credentials: set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET "
            "(and ALIBABA_CLOUD_SECURITY_TOKEN for STS)",
            file=sys.stderr,
        )
        return 2
    region = args.region or region_from_env()
    if not region and not args.endpoint:
        print("no region: pass --region or set ALIBABA_CLOUD_REGION_ID", file=sys.stderr)
        return 2
    redact = Redactor(
        [credentials.access_key_id, credentials.access_key_secret, credentials.security_token]
    )
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
        print(redact(block(result.text)))
        return 1
    print(redact(json_text(summary)))
    status = summary.get("status") if isinstance(summary, dict) else None
    return 0 if status in ("ok", "skipped") else 1


if __name__ == "__main__":
    sys.exit(main())
