"""`schedulerx-alert`: validate a config, run a tick from a laptop."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .config import ConfigError, load_config
from .credentials import resolve_credentials


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="schedulerx-alert",
        description="Announce failed SchedulerX job runs in DingTalk groups.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check a config file offline")
    validate.add_argument("--config", "-c", required=True)
    check = commands.add_parser(
        "check", help="run one tick now with credentials from ALIBABA_CLOUD_* variables"
    )
    check.add_argument("--config", "-c", required=True)
    check.add_argument(
        "--dry-run", action="store_true", help="print the messages; send nothing, save nothing"
    )
    check.add_argument("--timeout", type=float, default=60.0, help="time budget in seconds")
    args = parser.parse_args(argv)

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.command == "validate":
        rules = len(config.watch)
        print(
            f"{args.config}: ok ({config.job_count} jobs in {rules} watch rule(s), "
            f"{len(config.receivers)} receiver(s), state at {config.state.url})"
        )
        return 0
    from .app import run

    summary, redactor = run(
        config, resolve_credentials(None), dry_run=args.dry_run, timeout=args.timeout
    )
    if args.dry_run:
        for item in summary.preview:
            print(redactor(f"--- to {item['receiver']}: {item['title']}\n{item['text']}\n"))
    print(redactor(json.dumps(summary.as_dict(), ensure_ascii=False, indent=2)))
    return 0 if summary.status in ("ok", "skipped") else 1


if __name__ == "__main__":
    sys.exit(main())
