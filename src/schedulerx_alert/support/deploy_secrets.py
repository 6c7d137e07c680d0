"""The robots' secrets as the deploy files pass them: one variable, a JSON object.

A config may name any number of `${VAR}`s (a token and a secret per robot), and the
deploy files must carry them without being edited: s.yaml has no loops, and a ROS
template cannot add environment variables by parameter. So both pass one variable,
`SCHEDULERX_ALERT_SECRETS`, holding `{"DT_OPS_TOKEN": "...", "DT_OPS_SECRET": "..."}`
(s.yaml from the deployer's shell, template.yml from the NoEcho `RobotSecrets`
parameter), and the function adds its entries to its environment before anything
reads the config. `make package` prints the names the deploy must put in it.

No message here shows a value: only names, which are not secret.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, MutableMapping

SECRETS_ENV = "SCHEDULERX_ALERT_SECRETS"
# What a config's ${VAR} may name (config/__init__.py's _VAR).
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# FC sets these itself and refuses a function that sets one (FACTS.md).
RESERVED_PREFIX = "FC_"
EXAMPLE = '{"DT_OPS_TOKEN": "...", "DT_OPS_SECRET": "SEC..."}'


class SecretsError(ValueError):
    """SCHEDULERX_ALERT_SECRETS cannot be used; the message names what, never a value."""


def secrets_in(env: Mapping[str, str]) -> dict[str, str]:
    """The entries of SCHEDULERX_ALERT_SECRETS (none when it is unset or empty)."""
    text = env.get(SECRETS_ENV, "")
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        # JSONDecodeError's message says where, never what it read there.
        where = getattr(exc, "msg", "not JSON")
        pos = getattr(exc, "pos", None)
        at = f" at character {pos}" if pos is not None else ""
        raise SecretsError(
            f"{SECRETS_ENV}: must be a JSON object such as {EXAMPLE}; it is not JSON ({where}{at})"
        ) from None
    if not isinstance(value, dict):
        raise SecretsError(
            f"{SECRETS_ENV}: must be a JSON object such as {EXAMPLE}, "
            f"not a JSON {type(value).__name__}"
        )
    problems = []
    for name, item in value.items():
        if not NAME.fullmatch(name):
            problems.append(f"{name!r} is not a variable name (letters, digits, _)")
        elif name.startswith(RESERVED_PREFIX):
            problems.append(f"{name}: FC reserves names starting with {RESERVED_PREFIX}")
        elif not isinstance(item, str):
            problems.append(f"{name}: its value must be a JSON string, not {type(item).__name__}")
    if problems:
        raise SecretsError(f"{SECRETS_ENV}: " + "; ".join(problems))
    return {str(k): str(v) for k, v in value.items()}


def apply(env: MutableMapping[str, str]) -> list[str]:
    """Add SCHEDULERX_ALERT_SECRETS' entries to `env` (the process's environment in FC);
    the names added. A name set both ways must agree: two values for one secret would
    leave the reader guessing which one the function uses."""
    entries = secrets_in(env)
    clash = sorted(name for name, value in entries.items() if env.get(name, value) != value)
    if clash:
        raise SecretsError(
            f"{SECRETS_ENV}: {', '.join(clash)} also set as a variable of its own, "
            "with another value; set each secret one way"
        )
    env.update(entries)
    return sorted(entries)


def missing_hint(problem: str, env: Mapping[str, str]) -> str | None:
    """Where a config's unset ${VAR} should have come from, for the log line after
    `config rejected`; None when the problem is not an unset variable."""
    if "environment variable" not in problem or "is not set" not in problem:
        return None
    try:
        names = sorted(secrets_in(env))
    except SecretsError:
        names = []
    held = f"it holds {', '.join(names)}" if names else "it is unset or empty"
    return (
        f"the deploy passes the config's ${{VAR}}s in {SECRETS_ENV} (a JSON object; "
        f"s.yaml: the deployer's {SECRETS_ENV}, template.yml: the RobotSecrets parameter): "
        f"{held}; `make package` lists every name it must hold"
    )
