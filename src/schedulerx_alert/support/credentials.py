"""Where the function's Alibaba Cloud credentials come from."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


def resolve_credentials(
    context: Any = None, env: Mapping[str, str] | None = None
) -> Credentials | None:
    """The FC context's STS credentials, else the ALIBABA_CLOUD_* variables.

    python3.9/3.10 runtimes hand credentials on the context; python3.12 only
    sets the environment variables (as does FC 3.0 for every runtime).
    """
    creds = getattr(context, "credentials", None)
    key_id = getattr(creds, "access_key_id", None) or getattr(creds, "accessKeyId", None)
    if key_id:
        secret = getattr(creds, "access_key_secret", None) or getattr(
            creds, "accessKeySecret", None
        )
        token = getattr(creds, "security_token", None) or getattr(creds, "securityToken", None)
        return Credentials(str(key_id), str(secret or ""), str(token) if token else None)
    env = os.environ if env is None else env
    key_id = env.get("ALIBABA_CLOUD_ACCESS_KEY_ID")
    secret = env.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    if key_id and secret:
        return Credentials(key_id, secret, env.get("ALIBABA_CLOUD_SECURITY_TOKEN") or None)
    return None
