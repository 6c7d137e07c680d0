"""Server-side computation of OSS request signatures (V1 ``OSS`` and V4 ``OSS4-HMAC-SHA256``).

Follows the OSS documentation ("Include signatures in the Authorization header", V1 and V4)
and matches what oss2 sends (``oss2.auth.ProviderAuth`` / ``ProviderAuthV4``); the proof
is in tests/test_fakes.py, which talks to the fake with the real oss2 client.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

V4_ALGORITHM = "OSS4-HMAC-SHA256"

#: Query parameters that V1 includes in the canonicalized resource ("sub-resources").
#: Everything else (prefix, marker, max-keys, list-type, ...) is left out of the signature.
V1_SUBRESOURCES = frozenset(
    {
        "acl",
        "append",
        "asyncFetch",
        "bucketInfo",
        "callback",
        "callback-var",
        "cname",
        "comp",
        "continuation-token",
        "cors",
        "delete",
        "encryption",
        "endTime",
        "group",
        "inventory",
        "inventoryId",
        "lifecycle",
        "link",
        "live",
        "location",
        "logging",
        "objectInfo",
        "objectMeta",
        "partNumber",
        "policy",
        "position",
        "qos",
        "qosInfo",
        "referer",
        "replication",
        "replicationLocation",
        "replicationProgress",
        "requestPayment",
        "resourceGroup",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "response-content-language",
        "response-content-type",
        "response-expires",
        "restore",
        "security-token",
        "sequential",
        "startTime",
        "stat",
        "status",
        "style",
        "styleName",
        "symlink",
        "tagging",
        "transferAcceleration",
        "uploadId",
        "uploads",
        "versionId",
        "versioning",
        "versions",
        "vod",
        "website",
        "worm",
        "wormExtend",
        "wormId",
        "x-oss-process",
        "x-oss-traffic-limit",
    }
)

#: Headers V4 always signs besides x-oss-*.
V4_DEFAULT_SIGNED = ("content-type", "content-md5")


def canonical_resource(bucket: str, key: str, query: Iterable[tuple[str, str]]) -> str:
    """V1 resource: ``/bucket/key`` (key not encoded) plus sorted sub-resources."""
    base = f"/{bucket}/{key}" if bucket else "/"
    subresources = sorted((k, v) for k, v in query if k in V1_SUBRESOURCES)
    if not subresources:
        return base
    return base + "?" + "&".join(f"{k}={v}" if v else k for k, v in subresources)


def v1_string_to_sign(
    method: str, headers: Mapping[str, str], bucket: str, key: str, query: Iterable[tuple[str, str]]
) -> str:
    """``headers`` must have lower-case names."""
    oss_headers = sorted((k, v.strip()) for k, v in headers.items() if k.startswith("x-oss-"))
    canonical_headers = "".join(f"{k}:{v}\n" for k, v in oss_headers)
    return "\n".join(
        [
            method,
            headers.get("content-md5", ""),
            headers.get("content-type", ""),
            headers.get("x-oss-date") or headers.get("date", ""),
            canonical_headers + canonical_resource(bucket, key, query),
        ]
    )


def v1_signature(secret: str, string_to_sign: str) -> str:
    digest = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def parse_v1_authorization(value: str) -> tuple[str, str] | None:
    """``OSS AccessKeyId:Signature`` → (access key id, signature)."""
    scheme, _, credentials = value.strip().partition(" ")
    access_key_id, sep, signature = credentials.rpartition(":")
    if scheme != "OSS" or not sep or not access_key_id:
        return None
    return access_key_id, signature


@dataclass(frozen=True)
class V4Authorization:
    access_key_id: str
    date: str  # yyyymmdd
    region: str
    product: str
    additional_headers: tuple[str, ...]
    signature: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.product}/aliyun_v4_request"


def parse_v4_authorization(value: str) -> V4Authorization | None:
    """``OSS4-HMAC-SHA256 Credential=AK/date/region/oss/aliyun_v4_request, Signature=...``."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != V4_ALGORITHM:
        return None
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, item = part.strip().partition("=")
        if sep:
            fields[name] = item
    credential = fields.get("Credential", "").split("/")
    if len(credential) != 5 or credential[4] != "aliyun_v4_request" or "Signature" not in fields:
        return None
    additional = fields.get("AdditionalHeaders", "")
    return V4Authorization(
        access_key_id=credential[0],
        date=credential[1],
        region=credential[2],
        product=credential[3],
        additional_headers=tuple(h.lower() for h in additional.split(";") if h),
        signature=fields["Signature"],
    )


def v4_uri_encode(text: str, keep_slashes: bool) -> str:
    safe = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
    if keep_slashes:
        safe += b"/"
    return "".join(chr(b) if b in safe else f"%{b:02X}" for b in text.encode())


def v4_canonical_request(
    *,
    method: str,
    bucket: str,
    key: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    additional_headers: Iterable[str],
) -> str:
    """``headers`` must have lower-case names."""
    uri = v4_uri_encode(f"/{bucket}/{key}" if bucket else "/", keep_slashes=True)
    encoded_query = sorted(
        (v4_uri_encode(k, keep_slashes=False), v4_uri_encode(v, keep_slashes=False))
        for k, v in query
    )
    canonical_query = "&".join(f"{k}={v}" if v else k for k, v in encoded_query)
    additional = sorted(set(additional_headers))
    signed = sorted(
        (k, v.strip())
        for k, v in headers.items()
        if k.startswith("x-oss-") or k in V4_DEFAULT_SIGNED or k in additional
    )
    canonical_headers = "".join(f"{k}:{v}\n" for k, v in signed)
    return "\n".join(
        [
            method,
            uri,
            canonical_query,
            canonical_headers,
            ";".join(additional),
            headers.get("x-oss-content-sha256", "UNSIGNED-PAYLOAD"),
        ]
    )


def v4_string_to_sign(canonical_request: str, date_time: str, scope: str) -> str:
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    return f"{V4_ALGORITHM}\n{date_time}\n{scope}\n{digest}"


def v4_signature(secret: str, auth: V4Authorization, string_to_sign: str) -> str:
    key = ("aliyun_v4" + secret).encode()
    for part in (auth.date, auth.region, auth.product, "aliyun_v4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
