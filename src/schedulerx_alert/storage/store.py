"""Where the state lives: a tiny blob-store interface with interchangeable backends.

Everything above this layer (state documents, the lease) is written against
`StateStore`; OSS and the local file system are just two backends. The one
primitive that makes concurrency control possible is `create`, a write that
fails when the key exists: OSS offers it (x-oss-forbid-overwrite) where it
offers no compare-and-swap.
"""

from __future__ import annotations

import os
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from schedulerx_alert.config.source import region_endpoint
from schedulerx_alert.support.credentials import Credentials

if TYPE_CHECKING:
    from schedulerx_alert.config import Config
    from schedulerx_alert.storage.oss_client import OssBucket


class StoreError(Exception):
    """The store could not be read or written (network, permission, server)."""


class StateStore(ABC):
    """A flat namespace of small objects, addressed by key."""

    @abstractmethod
    def describe(self, key: str) -> str:
        """Where an object lives, for log lines (no secrets)."""

    @abstractmethod
    def read(self, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""

    @abstractmethod
    def write(self, key: str, data: bytes) -> None:
        """Create or replace an object."""

    @abstractmethod
    def create(self, key: str, data: bytes) -> bool:
        """Create an object only if the key is free; False when it exists."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove an object; absent objects are fine."""


class FileStateStore(StateStore):
    """Objects as files in one directory, for local runs and tests."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def describe(self, key: str) -> str:
        return str(self._path(key))

    def _path(self, key: str) -> Path:
        return self.directory / key

    def read(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read {self._path(key)}: {exc.strerror}") from exc

    def _temp(self, data: bytes) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        return temp

    def write(self, key: str, data: bytes) -> None:
        try:
            # Rename is atomic, so a reader never sees half a state file.
            os.replace(self._temp(data), self._path(key))
        except OSError as exc:
            raise StoreError(f"cannot write {self._path(key)}: {exc.strerror}") from exc

    def create(self, key: str, data: bytes) -> bool:
        try:
            temp = self._temp(data)
        except OSError as exc:
            raise StoreError(f"cannot write in {self.directory}: {exc.strerror}") from exc
        try:
            # link() fails if the target exists: create-only, with full content.
            os.link(temp, self._path(key))
            return True
        except FileExistsError:
            return False
        except OSError as exc:
            raise StoreError(f"cannot create {self._path(key)}: {exc.strerror}") from exc
        finally:
            os.unlink(temp)

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot delete {self._path(key)}: {exc.strerror}") from exc


class OssStateStore(StateStore):
    """Objects in an OSS bucket under one prefix (storage/oss_client.py)."""

    def __init__(self, bucket: OssBucket, prefix: str = "") -> None:
        from schedulerx_alert.storage.oss_client import OssError  # loaded with the bucket already

        self.bucket = bucket
        self.prefix = prefix
        self._oss_error = OssError

    @classmethod
    def connect(
        cls,
        bucket_name: str,
        prefix: str,
        endpoint: str,
        region: str,
        credentials: Credentials,
        timeout: float = 5.0,
    ) -> OssStateStore:
        try:
            bucket = connect_bucket(bucket_name, endpoint, region, credentials, timeout)
        except ValueError as exc:
            raise StoreError(f"OSS state: {exc}") from None
        return cls(bucket, prefix)

    def describe(self, key: str) -> str:
        return f"oss://{self.bucket.bucket_name}/{self._key(key)}"

    def _key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def read(self, key: str) -> bytes | None:
        try:
            fetched = self.bucket.get(self._key(key))
        except self._oss_error as exc:
            if exc.code == "NoSuchKey":
                return None
            raise StoreError(exc.describe("read", self._key(key))) from None
        assert fetched is not None, "only a conditional read is ever not modified"
        return fetched.data

    def write(self, key: str, data: bytes) -> None:
        try:
            self.bucket.put(self._key(key), data)
        except self._oss_error as exc:
            raise StoreError(exc.describe("write", self._key(key))) from None

    def create(self, key: str, data: bytes) -> bool:
        try:
            self.bucket.put(self._key(key), data, forbid_overwrite=True)
            return True
        except self._oss_error as exc:
            if exc.status == 409:
                return False
            raise StoreError(exc.describe("create", self._key(key))) from None

    def delete(self, key: str) -> None:
        try:
            self.bucket.delete(self._key(key))
        except self._oss_error as exc:
            raise StoreError(exc.describe("delete", self._key(key))) from None


def connect_bucket(
    bucket_name: str,
    endpoint: str,
    region: str,
    credentials: Credentials,
    timeout: float = 5.0,
) -> OssBucket:
    """The bucket, signed (V4) with these credentials. Raises ValueError for a bucket
    name or endpoint OSS cannot have."""
    # Only deployments with their state or config in OSS load the client.
    from schedulerx_alert.storage.oss_client import OssBucket

    return OssBucket(
        bucket_name,
        endpoint,
        region,
        credentials.access_key_id,
        credentials.access_key_secret,
        credentials.security_token,
        timeout=timeout,
    )


def open_store(
    url: str,
    endpoint: str | None,
    region: str,
    credentials: Credentials | None,
    timeout: float = 5.0,
) -> tuple[StateStore, str]:
    """The store and the state object's key for a `state.url`."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        path = Path(parts.path)
        return FileStateStore(path.parent), path.name
    if parts.scheme == "oss":
        if credentials is None:
            raise StoreError("OSS state needs credentials, and none were found")
        prefix, _, name = parts.path.lstrip("/").rpartition("/")
        endpoint = endpoint or region_endpoint(region)
        store = OssStateStore.connect(
            parts.netloc, f"{prefix}/" if prefix else "", endpoint, region, credentials, timeout
        )
        return store, name
    raise StoreError(f"unsupported state url scheme {parts.scheme!r}")


def open_state_store(
    config: Config, credentials: Credentials | None, timeout: float | None = None
) -> tuple[StateStore, str]:
    """The store and key of the config's `state:` (the tick, the commands and the
    silence links all read the same object); `timeout` defaults to the config's."""
    state = config.state
    return open_store(
        state.url,
        state.endpoint,
        config.region,
        credentials,
        state.timeout_seconds if timeout is None else timeout,
    )
