"""Server-side computation of Alibaba Cloud OpenAPI (POP) request signatures.

Written from the published algorithms and checked against what the official SDKs send
(see tests/test_fakes.py):

* V3, ``ACS3-HMAC-SHA256`` in the Authorization header, as sent by
  ``alibabacloud_tea_openapi`` (``Utils.get_authorization``);
* V1, ``HMAC-SHA1`` in the ``Signature`` query parameter, as sent by ``aliyunsdkcore``
  (``rpc_signature_composer``) and by tea-openapi with ``signature_algorithm="v2"``.

Only pure functions live here; the policy (which errors, in which order) is in
:mod:`tests.fakes.schedulerx`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

V3_ALGORITHM = "ACS3-HMAC-SHA256"


def percent_encode(text: str) -> str:
    """RFC 3986 encoding used by both versions: only A-Z a-z 0-9 - _ . ~ stay literal."""
    return quote(text, safe="~", encoding="utf-8")


@dataclass(frozen=True)
class V3Authorization:
    access_key_id: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_v3_authorization(value: str) -> V3Authorization | None:
    """Parse ``ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=a;b,Signature=hex``."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != V3_ALGORITHM:
        return None
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, item = part.strip().partition("=")
        if not sep:
            return None
        fields[name] = item
    try:
        return V3Authorization(
            access_key_id=fields["Credential"],
            signed_headers=tuple(h for h in fields["SignedHeaders"].split(";") if h),
            signature=fields["Signature"],
        )
    except KeyError:
        return None


def v3_canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    encoded = sorted((percent_encode(k), percent_encode(v)) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def v3_canonical_request(
    *,
    method: str,
    path: str,
    query_pairs: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: Iterable[str],
    hashed_payload: str,
) -> str:
    """``headers`` must have lower-case names; only ``signed_headers`` are included."""
    names = sorted(h.lower() for h in signed_headers)
    canonical_headers = "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in names)
    return "\n".join(
        [
            method,
            path or "/",
            v3_canonical_query(query_pairs),
            canonical_headers,
            ";".join(names),
            hashed_payload,
        ]
    )


def v3_string_to_sign(canonical_request: str) -> str:
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    return f"{V3_ALGORITHM}\n{digest}"


def v3_signature(secret: str, string_to_sign: str) -> str:
    return hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def v1_string_to_sign(method: str, params: Iterable[tuple[str, str]]) -> str:
    """``METHOD&%2F&encode(sorted k=v pairs joined by &)``; ``Signature`` must be excluded."""
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params) if k != "Signature"
    )
    return f"{method}&%2F&{percent_encode(canonical)}"


def v1_signature(secret: str, string_to_sign: str) -> str:
    key = (secret + "&").encode()
    return base64.b64encode(hmac.new(key, string_to_sign.encode(), hashlib.sha1).digest()).decode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
