"""Reading an HTTP answer up to a cap: an answer is data from outside, and the function
has 128 MB.

`requests` reads a whole body into memory before anyone looks at it, and the JSON
parser then holds a second copy several times its size: one 50 MB answer ends the
process, and every job's alerts with it. Each client asks with `stream=True` and reads
through `read_capped`, with a cap chosen for what its API answers; an answer over it
fails that one call, named, and the tick goes on with the others.
"""

from __future__ import annotations

import requests

CHUNK = 64 * 1024


class TooLarge(Exception):
    """An answer over its cap: `seen` is how many bytes were read (or announced) by then."""

    def __init__(self, cap: int, seen: int) -> None:
        super().__init__(f"the answer is over the {size(cap)} cap (at least {seen} bytes)")
        self.cap = cap
        self.seen = seen


def size(count: int) -> str:
    """A cap as people write it: 8 MiB, 64 KiB."""
    for unit, factor in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= factor and count % factor == 0:
            return f"{count // factor} {unit}"
    return f"{count} bytes"


def read_capped(response: requests.Response, cap: int) -> bytes:
    """The body of a streamed response, at most `cap` bytes as decoded; raises TooLarge
    before reading further, and requests' errors (RequestException) for a broken body.
    The response is closed either way: a connection left half-read is not reused."""
    try:
        announced = response.headers.get("Content-Length", "")
        identity = response.headers.get("Content-Encoding", "identity") == "identity"
        if identity and announced.isdigit() and int(announced) > cap:
            raise TooLarge(cap, int(announced))
        body = bytearray()
        # Counted as decoded: a small gzip body that inflates past the cap stops there too.
        for chunk in response.iter_content(CHUNK):
            if len(body) + len(chunk) > cap:
                raise TooLarge(cap, len(body) + len(chunk))
            body += chunk
        return bytes(body)
    finally:
        response.close()


def read_prefix(response: requests.Response, limit: int) -> bytes:
    """The first `limit` bytes of a streamed body (an error document), the rest left
    unread; never raises for a broken body, which only shortens it."""
    body = bytearray()
    try:
        for chunk in response.iter_content(CHUNK):
            body += chunk
            if len(body) >= limit:
                break
    except requests.RequestException:
        pass
    finally:
        response.close()
    return bytes(body[:limit])
