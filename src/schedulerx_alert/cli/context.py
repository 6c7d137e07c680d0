"""What a command that reads the config starts from: the credentials the standard
variables hold, the config (a file or OSS, its state's endpoint as --endpoint says), a
redactor of every secret either names, and the state they point at.

Each command keeps its own words and exit codes; only the steps are shared here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeGuard

if TYPE_CHECKING:
    from schedulerx_alert.config import Config
    from schedulerx_alert.storage.session import Inspection
    from schedulerx_alert.storage.store import StateStore
    from schedulerx_alert.support.credentials import Credentials


@dataclass(frozen=True)
class Context:
    config: Config
    # Where the config was read (a path or oss://BUCKET/KEY), for messages.
    source: str
    credentials: Credentials | None
    redact: Callable[[str], str]

    @classmethod
    def load(cls, args: Any) -> Context | None:
        """None after printing why the config cannot be read (the command exits 2)."""
        from schedulerx_alert.cli.conventions import load_config
        from schedulerx_alert.handler import secrets_of
        from schedulerx_alert.support.credentials import resolve_credentials
        from schedulerx_alert.support.redact import Redactor

        credentials = resolve_credentials(None)
        loaded = load_config(args, credentials)
        if loaded is None:
            return None
        config, source = loaded
        return cls(config, source, credentials, Redactor(secrets_of(config, credentials)))

    def open_state(self) -> tuple[StateStore, str]:
        """The state's store and key; raises StoreError."""
        from schedulerx_alert.storage.store import open_state_store

        return open_state_store(self.config, self.credentials)

    def inspect_state(self, owner: str) -> tuple[StateStore, str, Inspection]:
        """The state as the next tick would start from it, read without the lease;
        raises StoreError or StateRefused."""
        from schedulerx_alert.storage.session import StateSession

        store, key = self.open_state()
        return store, key, StateSession(store, key, owner=owner, ttl=0).inspect()


def can_sign(credentials: Credentials | None, prefix: str = "") -> TypeGuard[Credentials]:
    """Whether a command that calls Alibaba Cloud has credentials; says so when not."""
    if credentials is not None:
        return True
    from schedulerx_alert.cli.conventions import NO_CREDENTIALS

    print(f"{prefix}{NO_CREDENTIALS}", file=sys.stderr)
    return False
