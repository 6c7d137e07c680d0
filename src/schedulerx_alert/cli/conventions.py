"""What every command shares: `--config/-c` (else SCHEDULERX_ALERT_CONFIG), `--json`,
`--endpoint` for the commands that read OSS, and the exit codes.

A laptop cannot resolve FC's internal OSS endpoint (`oss-REGION-internal.aliyuncs.com`),
which the example config names and which is the default of `state.endpoint`. Outside
FC (no `FC_FUNCTION_NAME` in the environment) a command therefore reads OSS through
the region's public endpoint unless told otherwise; the function itself never runs
this code and keeps the internal one.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from schedulerx_alert.config import Config
    from schedulerx_alert.storage.config_text import ConfigText
    from schedulerx_alert.support.credentials import Credentials

OK = 0
PROBLEMS = 1
USAGE = 2
EXIT_CODES = (
    "exit status: 0 ok; 1 problems found (a degraded or failed tick, a message DingTalk "
    "refused, a listing or state with problems, a store that could not be read or "
    "written); 2 usage: a bad flag, or a config, credentials or endpoint that cannot be used"
)
CONFIG_HELP = (
    "FILE or oss://BUCKET/KEY (default: SCHEDULERX_ALERT_CONFIG, as the function reads it)"
)
JSON_HELP = "print one JSON document on stdout (diagnostics go to stderr)"
ENDPOINT_HELP = (
    "OSS endpoint for the state and a config in OSS (default: the config's state.endpoint; "
    "off Alibaba Cloud FC, an internal endpoint becomes the region's public "
    "https://oss-REGION.aliyuncs.com)"
)
# Set in every FC instance (FACTS.md); a laptop or a CI runner has none of them.
FC_ENV = "FC_FUNCTION_NAME"
# What a command that calls SchedulerX says when neither the FC context nor the standard
# variables hold credentials.
NO_CREDENTIALS = (
    "no credentials: set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET "
    "(and ALIBABA_CLOUD_SECURITY_TOKEN for STS)"
)
_INTERNAL = re.compile(r"^(https?://)?oss-([a-z0-9-]+?)-internal\.aliyuncs\.com/?$")


def add_config(parser: Any, help: str = CONFIG_HELP) -> None:
    parser.add_argument("--config", "-c", metavar="FILE|oss://BUCKET/KEY", help=help)


def add_json(parser: Any, help: str = JSON_HELP) -> None:
    parser.add_argument("--json", action="store_true", help=help)


def add_endpoint(parser: Any) -> None:
    parser.add_argument("--endpoint", metavar="URL", help=ENDPOINT_HELP)


def add_common(parser: Any, json_help: str = JSON_HELP, config_help: str = CONFIG_HELP) -> None:
    """--config, --json and --endpoint: the flags of a command that reads the config."""
    add_config(parser, config_help)
    add_json(parser, json_help)
    add_endpoint(parser)


def on_fc(env: Mapping[str, str]) -> bool:
    return bool(env.get(FC_ENV))


def public_endpoint(region: str) -> str:
    from schedulerx_alert.config.source import region_endpoint

    return region_endpoint(region, internal=False)


def oss_endpoint(
    configured: str | None, region: str, flag: str | None, env: Mapping[str, str]
) -> str | None:
    """The OSS endpoint a command uses: --endpoint, else the configured one; outside FC an
    internal endpoint (configured or the default) becomes the region's public one."""
    if flag:
        return flag
    if on_fc(env):
        return configured
    if configured is None:
        return public_endpoint(region)
    internal = _INTERNAL.match(configured.strip())
    return public_endpoint(internal.group(2)) if internal else configured


def with_endpoint(config: Config, flag: str | None, env: Mapping[str, str]) -> Config:
    """The config with the state's OSS endpoint a command should use (a file state as is)."""
    if not config.state.url.startswith("oss:"):
        return config
    endpoint = oss_endpoint(config.state.endpoint, config.region, flag, env)
    return replace(config, state=replace(config.state, endpoint=endpoint))


def config_env(flag: str | None, env: Mapping[str, str]) -> Mapping[str, str]:
    """The environment a config in OSS is read with: --endpoint overrides
    SCHEDULERX_ALERT_CONFIG_ENDPOINT (read_config_text uses the public endpoint without)."""
    if not flag:
        return env
    from schedulerx_alert.config.source import ENDPOINT_ENV

    return {**env, ENDPOINT_ENV: flag}


def config_endpoint(value: str | None, env: Mapping[str, str]) -> str | None:
    """The endpoint a config in OSS is read through (for an error message), or None."""
    from schedulerx_alert.config.source import CONFIG_ENV, ENDPOINT_ENV, REGION_ENVS

    where = value or env.get(CONFIG_ENV) or ""
    if not where.startswith("oss://"):
        return None
    region = next((env[name] for name in REGION_ENVS if env.get(name)), "REGION")
    return env.get(ENDPOINT_ENV) or public_endpoint(region)


def load_config(args: Any, credentials: Credentials | None) -> tuple[Config, str] | None:
    """The command's config (its state's OSS endpoint as --endpoint and the place say) and
    where it was read; None after printing why it cannot be read (the command exits 2)."""
    from schedulerx_alert.config import ConfigError

    try:
        text = load_text(args, credentials)
        config = text.parse(os.environ)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None
    return with_endpoint(config, getattr(args, "endpoint", None), os.environ), text.source


def load_text(
    args: Any, credentials: Credentials | None, env: Mapping[str, str] | None = None
) -> ConfigText:
    """The config's text by --config or SCHEDULERX_ALERT_CONFIG, a file or OSS (through
    --endpoint when given); a ConfigError names the endpoint tried for OSS."""
    from schedulerx_alert.config import ConfigError
    from schedulerx_alert.storage.config_text import OSS_READ_SECONDS, load_command_config

    env = os.environ if env is None else env
    read_env = config_env(getattr(args, "endpoint", None), env)
    try:
        return load_command_config(args.config, read_env, credentials, OSS_READ_SECONDS)
    except ConfigError as exc:
        endpoint = config_endpoint(args.config, read_env)
        if endpoint and any("cannot be read" in p for p in exc.problems):
            raise ConfigError(
                [*exc.problems, f"(OSS endpoint tried: {endpoint}; another: --endpoint URL)"],
                exc.source,
            ) from None
        raise


def tried(config: Config) -> str:
    """` (OSS endpoint tried: URL)` for a state in OSS, to end an error line with."""
    state = config.state
    if not state.url.startswith("oss:"):
        return ""
    from schedulerx_alert.config.source import region_endpoint

    endpoint = state.endpoint or region_endpoint(config.region)
    return f" (OSS endpoint tried: {endpoint}; another: --endpoint URL)"
