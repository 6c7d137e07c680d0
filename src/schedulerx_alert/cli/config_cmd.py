"""`schedulerx-alert config push FILE --to oss://BUCKET/KEY`: a new config without a redeploy.

The file is checked exactly as `validate` checks it (every field, the templates
compiled, the timing for the function's timeout), with its `${VAR}`s taken from
this shell for the check only. Nothing is uploaded unless it passes. Then the
object it replaces is kept beside it as `KEY.previous`, and the file's text is
uploaded as it is: its `${VAR}`s stay references, never values. A `.json` key
gets the JSON that `make package` would ship (`packaged_json`), so the function
never needs a YAML parser. The upload uses the operator's credentials
(ALIBABA_CLOUD_* variables), never the function's role, which may only read the key.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from schedulerx_alert.cli.bounds import DEPLOYED_TIMEOUT, timeout_seconds
from schedulerx_alert.config import Config, ConfigError, parse_config, read_config_file
from schedulerx_alert.config.source import OssLocation, parse_oss_url

if TYPE_CHECKING:
    from schedulerx_alert.storage.oss_client import OssBucket

PREVIOUS = ".previous"


def add_parser(commands: Any) -> None:
    config = commands.add_parser(
        "config",
        help="push a new config to OSS, where the function reads it on its next tick",
    )
    actions = config.add_subparsers(dest="config_command", required=True)
    push = actions.add_parser(
        "push",
        help="validate FILE and upload it to oss://BUCKET/KEY, keeping the previous version",
        description=(
            "Checks FILE as `validate` does (its ${VAR}s from this shell, for the check "
            "only) and uploads nothing unless it passes. Then copies the current object to "
            "KEY.previous and uploads FILE's text as it is (as JSON for a .json key). "
            "Credentials: ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET "
            "(and ALIBABA_CLOUD_SECURITY_TOKEN)."
        ),
    )
    from schedulerx_alert.cli import conventions as cli

    push.add_argument("file", metavar="FILE", nargs="?", help="or --config")
    cli.add_config(push, "FILE, as the positional (default: SCHEDULERX_ALERT_CONFIG)")
    cli.add_json(push)
    push.add_argument("--to", required=True, metavar="oss://BUCKET/KEY")
    push.add_argument("--region", help="the bucket's region (default: the config's region)")
    push.add_argument("--endpoint", help="OSS endpoint (default: https://oss-REGION.aliyuncs.com)")
    push.add_argument(
        "--timeout",
        type=timeout_seconds,
        default=DEPLOYED_TIMEOUT,
        help="the function's timeout in seconds, as for validate (default %(default)g)",
    )


def check(path: Path, timeout: float, env: Mapping[str, str]) -> tuple[Config, Any]:
    """Everything `validate` checks; the config and the file's plain values.

    Raises ConfigError with every problem found."""
    raw = read_config_file(path)
    config = parse_config(raw, env, str(path), path.parent)
    from schedulerx_alert.config.timing import Timing
    from schedulerx_alert.delivery.render import Renderer, RenderError

    problems = []
    try:
        # Compiling the templates catches a broken user template offline too.
        Renderer.of(config).compile()
    except RenderError as exc:
        problems.append(str(exc))
    problems += Timing.of(config, timeout).problems()
    # A tick runs without buttons while `actions:` is broken; validate refuses it.
    problems += config.actions.problems if config.actions is not None else ()
    if problems:
        raise ConfigError(problems, str(path))
    return config, raw


def packaged_json(path: Path, env: Mapping[str, str], timeout: float = DEPLOYED_TIMEOUT) -> str:
    """The checked config as JSON, `${VAR}`s kept: what the function reads without YAML.

    Raises ConfigError when the file has a problem, or holds a value JSON cannot carry
    so that it reads the same."""
    config, raw = check(path, timeout, env)
    problems: list[str] = []
    plain = _plain(raw, "", problems)
    if problems:
        raise ConfigError(problems, str(path))
    text = json.dumps(plain, ensure_ascii=False, indent=1) + "\n"
    # What the function will parse must mean exactly what was checked.
    if parse_config(json.loads(text), env, str(path), path.parent) != config:
        raise ConfigError(["(top level): the config does not read the same as JSON"], str(path))
    return text


def _plain(value: Any, path: str, problems: list[str]) -> Any:
    """YAML's values as JSON's; a time becomes the ISO text the parsers read alike."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if not isinstance(key, str):
                problems.append(f"{here}: a key must be text in JSON, not {type(key).__name__}")
                continue
            out[key] = _plain(item, here, problems)
        return out
    if isinstance(value, list):
        return [_plain(item, f"{path}[{index}]", problems) for index, item in enumerate(value)]
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    problems.append(f"{path or '(top level)'}: JSON cannot hold a {type(value).__name__}")
    return None


def run(args: argparse.Namespace) -> int:
    if args.config_command == "push":
        from schedulerx_alert.config.source import CONFIG_ENV

        file = args.file or args.config or os.environ.get(CONFIG_ENV)
        if not file or (args.file and args.config and args.file != args.config):
            print(
                "config push: name one FILE (or --config, or set SCHEDULERX_ALERT_CONFIG)",
                file=sys.stderr,
            )
            return 2
        if file.startswith("oss://"):
            print(f"config push: {file} is in OSS already; push a file", file=sys.stderr)
            return 2
        return push(
            Path(file), args.to, args.region, args.endpoint, args.timeout, as_json=args.json
        )
    raise AssertionError(args.config_command)


def push(
    path: Path,
    to: str,
    region: str | None = None,
    endpoint: str | None = None,
    timeout: float = DEPLOYED_TIMEOUT,
    env: Mapping[str, str] | None = None,
    as_json: bool = False,
) -> int:
    env = os.environ if env is None else env

    def done(message: str, **doc: Any) -> None:
        if as_json:
            print(json.dumps({"config": str(path), "to": to, **doc}, ensure_ascii=False))
        else:
            print(message)

    try:
        location = parse_oss_url(to, "--to")
        config, _ = check(path, timeout, env)
        data = upload_form(path, location, env, timeout)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        print(f"nothing was uploaded to {to}", file=sys.stderr)
        return 2
    from schedulerx_alert.cli.context import can_sign
    from schedulerx_alert.cli.conventions import public_endpoint
    from schedulerx_alert.storage.store import StoreError, connect_bucket
    from schedulerx_alert.support.credentials import resolve_credentials

    credentials = resolve_credentials(None, env)
    if not can_sign(credentials):
        return 2
    region = region or config.region
    tried = endpoint or public_endpoint(region)
    try:
        bucket = connect_bucket(location.bucket, tried, region, credentials)
    except ValueError as exc:
        print(f"push to {location.url} failed: {exc}", file=sys.stderr)
        return 2
    target = _Target(bucket, location)
    try:
        current = target.read()
        if current == data:
            done(f"{location.url} already holds {path}; nothing changed", changed=False)
            return 0
        if current is not None:
            target.write(location.key + PREVIOUS, current)
        etag = target.write(location.key, data)
    except StoreError as exc:
        print(
            f"push to {location.url} failed: {exc} (OSS endpoint tried: {tried}; "
            "another: --endpoint URL)",
            file=sys.stderr,
        )
        return 1
    kept = f"; the version it replaced is {location.url}{PREVIOUS}" if current else ""
    done(
        f"pushed {path} to {location.url} (ETag {etag}){kept}. Each function instance "
        "reads it on its next tick; one that finds it bad keeps its last good config "
        "and reports the problem.",
        changed=True,
        etag=etag,
        previous=f"{location.url}{PREVIOUS}" if current else None,
    )
    return 0


def upload_form(path: Path, location: OssLocation, env: Mapping[str, str], timeout: float) -> bytes:
    """What goes to the object: the file's own text, or JSON for a .json key."""
    if location.key.lower().endswith(".json") and path.suffix.lower() != ".json":
        return packaged_json(path, env, timeout).encode("utf-8")
    return path.read_bytes()


class _Target:
    """The object and its neighbour, errors as StoreError lines."""

    def __init__(self, bucket: OssBucket, location: OssLocation) -> None:
        from schedulerx_alert.storage.oss_client import OssError  # loaded with the bucket already

        self.bucket = bucket
        self.location = location
        self._oss_error = OssError

    def read(self) -> bytes | None:
        from schedulerx_alert.storage.store import StoreError

        try:
            got = self.bucket.get(self.location.key)
        except self._oss_error as exc:
            if exc.code == "NoSuchKey":
                return None
            raise StoreError(exc.describe("read", self.location.key)) from None
        assert got is not None, "only a conditional read is ever not modified"
        return got.data

    def write(self, key: str, data: bytes) -> str:
        from schedulerx_alert.storage.store import StoreError

        try:
            return self.bucket.put(key, data)
        except self._oss_error as exc:
            raise StoreError(exc.describe("write", key)) from None
