"""Alibaba Cloud OpenAPI request signing, V3 (ACS3-HMAC-SHA256).

Hand-written instead of the official SDK, for the package's size and cold start
(measured in docs/design.md, "Why no SchedulerX SDK"). The tests prove this signer
against the same loopback server that accepts the official SDK.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from datetime import datetime, timezone
from urllib.parse import quote

ALGORITHM = "ACS3-HMAC-SHA256"


def percent_encode(value: str) -> str:
    return quote(value, safe="-_.~")


def canonical_query(params: Mapping[str, str]) -> str:
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))


def sign_request(
    *,
    method: str,
    host: str,
    action: str,
    version: str,
    query: Mapping[str, str],
    access_key_id: str,
    access_key_secret: str,
    security_token: str | None = None,
    body: bytes = b"",
    path: str = "/",
    headers: Mapping[str, str] | None = None,
    now: datetime | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The headers that authenticate one request, RPC style (path "/", parameters
    in the query) or ROA style (a resource path; every header passed is signed)."""
    now = now or datetime.now(timezone.utc)
    headers = {
        **{name.lower(): value for name, value in (headers or {}).items()},
        "host": host,
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        # uuid would load platform and sysconfig at every cold start for the same 128 bits.
        "x-acs-signature-nonce": nonce or secrets.token_hex(16),
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
    }
    if security_token:
        headers["x-acs-security-token"] = security_token
    signed = sorted(headers)
    canonical_headers = "".join(f"{name}:{headers[name].strip()}\n" for name in signed)
    signed_headers = ";".join(signed)
    canonical_request = "\n".join(
        [
            method.upper(),
            path,
            canonical_query(query),
            canonical_headers,
            signed_headers,
            headers["x-acs-content-sha256"],
        ]
    )
    string_to_sign = f"{ALGORITHM}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"
    signature = hmac.new(
        access_key_secret.encode(), string_to_sign.encode(), hashlib.sha256
    ).hexdigest()
    headers["Authorization"] = (
        f"{ALGORITHM} Credential={access_key_id},"
        f"SignedHeaders={signed_headers},Signature={signature}"
    )
    return headers
