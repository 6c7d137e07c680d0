"""HTTP(S) URLs the product connects to, read once by strict rules.

Two parsers read URLs in this process and they disagree on odd input: for
`https://evil:443\\@oapi.dingtalk.com/`, `urllib.parse` sees the host
oapi.dingtalk.com while urllib3, which `requests` connects with, sees evil.
A check made with one and a connection made with the other lets a token leave.
So a URL is accepted only in a form too plain to be read two ways (no user
info, no backslash, no percent-encoding in the host, no fragment, ASCII only),
both parsers must then agree with ours, and what is connected to is rebuilt
from the checked parts: an `HttpUrl` cannot be built from parts that fail the
rules, so whoever holds one holds a URL that was checked.

No message repeats the URL: a webhook's query carries the robot's token.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

import requests
from urllib3.util import parse_url

DEFAULT_PORTS = {"https": 443, "http": 80}
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DNS_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_SHAPE = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)"
    r"(?P<path>/[^?#]*)?(?:\?(?P<query>[^#]*))?"
)
_HOST_PORT = re.compile(r"(?:\[(?P<v6>[^\]]*)\]|(?P<name>[^:\[\]]*))(?::(?P<port>[0-9]{1,5}))?")
# RFC 3986 pchar without percent (checked apart): what `requests` sends as it is.
_PCHAR = r"\-A-Za-z0-9._~!$&'()*+,;=:@"
_PATH = re.compile(rf"(?:/(?:[{_PCHAR}]|%[0-9A-Fa-f]{{2}})*)*")
_QUERY = re.compile(rf"(?:[{_PCHAR}/?]|%[0-9A-Fa-f]{{2}})*")


class UrlError(ValueError):
    """A URL refused; the message says why without repeating the URL."""


def normalise_host(text: str) -> str:
    """A host name or IP literal in its one canonical spelling; raises UrlError."""
    host = text.lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if "%" in host:
        raise UrlError("the host must not be percent-encoded or carry an IPv6 zone")
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host).compressed
        except ValueError:
            raise UrlError("the host is not a valid IPv6 address") from None
    if len(host) > 253 or not _DNS_NAME.fullmatch(host):
        raise UrlError("the host must be a plain DNS name or IP address")
    # Resolvers read `127.1`, `0x7f.1` or `2130706433` as addresses too; no
    # top-level domain starts with a digit, so such a host must be the one
    # canonical dotted quad.
    if host.rsplit(".", 1)[-1][0].isdigit():
        try:
            address = ipaddress.IPv4Address(host)
        except ValueError:
            raise UrlError("the host must be a plain DNS name or a dotted IPv4 address") from None
        if str(address) != host:
            raise UrlError("the host must be a plain DNS name or a dotted IPv4 address")
    return host


@dataclass(frozen=True)
class HttpUrl:
    """A checked http(s) URL; `str()` is exactly what is connected to."""

    scheme: str
    host: str
    port: int | None = None
    path: str = ""
    query: str = ""

    def __post_init__(self) -> None:
        if self.scheme not in DEFAULT_PORTS:
            raise UrlError("must start with https://")
        if normalise_host(self.host) != self.host:
            raise UrlError("the host is not in its canonical form")
        if self.port is not None and not 1 <= self.port <= 65535:
            raise UrlError("the port must be between 1 and 65535")
        if self.port == DEFAULT_PORTS[self.scheme]:
            raise UrlError("the default port is written as no port")
        if not _PATH.fullmatch(self.path):
            raise UrlError("the path has characters that would be read differently")
        # requests decodes %2e before urllib3 removes dot segments: check decoded.
        if any(segment in (".", "..") for segment in unquote(self.path).split("/")):
            raise UrlError("the path must not contain '.' or '..' segments")
        if not _QUERY.fullmatch(self.query):
            raise UrlError("the query has characters that would be read differently")

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.netloc}"

    def __str__(self) -> str:
        return f"{self.origin}{self.path}" + (f"?{self.query}" if self.query else "")

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(self.host)

    def params(self) -> list[tuple[str, str]]:
        """The query's decoded name/value pairs, in order, repeats kept."""
        return parse_qsl(self.query, keep_blank_values=True)

    def with_query(self, query: str) -> HttpUrl:
        return HttpUrl(self.scheme, self.host, self.port, self.path, query)


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_http_url(text: str, *, allow_loopback_http: bool = False) -> HttpUrl:
    """Read `text` by the strict rules; raises UrlError saying which one it breaks.

    http:// is accepted only for a loopback host and only when the caller
    allows it (test servers); everything else must be https://.
    """
    if not text.isascii() or not text.isprintable() or " " in text:
        raise UrlError("must be plain ASCII without spaces or control characters")
    if "\\" in text:
        raise UrlError("must not contain a backslash")
    if "#" in text:
        raise UrlError("must not have a fragment (#...)")
    shape = _SHAPE.fullmatch(text)
    if shape is None:
        raise UrlError("must be an https:// URL")
    scheme = shape["scheme"].lower()
    if scheme not in DEFAULT_PORTS:
        raise UrlError("must start with https://")
    authority = shape["authority"]
    if "@" in authority:
        raise UrlError("must not contain user info (user@host)")
    host_port = _HOST_PORT.fullmatch(authority)
    if host_port is None:
        raise UrlError("must be scheme://host[:port] with a plain host and a numeric port")
    raw_host = host_port["v6"] if host_port["v6"] is not None else host_port["name"]
    if not raw_host:
        raise UrlError("has no host")
    host = normalise_host(raw_host)
    port = int(host_port["port"]) if host_port["port"] else None
    if port is not None and not 1 <= port <= 65535:
        raise UrlError("the port must be between 1 and 65535")
    if port == DEFAULT_PORTS[scheme]:
        port = None
    path = shape["path"] or ""
    if not _PATH.fullmatch(path):
        raise UrlError("the path has characters that would be read differently")
    query = shape["query"] or ""
    url = HttpUrl(scheme, host, port, path, query)
    if scheme == "http" and not (allow_loopback_http and url.is_loopback):
        raise UrlError(
            "must use https:// (http:// only for a loopback test server, "
            "with allow_loopback_http: true)"
        )
    for reading in (text, str(url)):
        if _destination(reading) != (url.scheme, url.host, url.port):
            raise UrlError("is read differently by the URL parsers in use; write it plainly")
    return url


def _destination(text: str) -> tuple[str, str, int | None] | None:
    """Where urllib.parse and requests/urllib3 would each say `text` goes; None if apart."""
    try:
        split = urlsplit(text)
        prepared = requests.PreparedRequest()
        prepared.prepare_url(text, None)
        connected = parse_url(prepared.url or "")
        readings = {
            _canonical(split.scheme, split.hostname, split.port),
            _canonical(connected.scheme, connected.host, connected.port),
        }
    except (ValueError, requests.RequestException):
        return None
    return readings.pop() if len(readings) == 1 else None


def _canonical(
    scheme: str | None, host: str | None, port: int | None
) -> tuple[str, str, int | None]:
    scheme = (scheme or "").lower()
    name = (host or "").lower().strip("[]")
    with contextlib.suppress(ValueError):
        name = ipaddress.ip_address(name).compressed
    return scheme, name, None if port == DEFAULT_PORTS.get(scheme) else port
