"""urllib3 (and what sits on it without requests, such as botocore): checked per request.

``HTTPConnectionPool.urlopen`` serves every request of a pool, ``PoolManager`` and proxies
included, and is called again for each redirect.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import urllib3
from urllib3.connectionpool import HTTPConnectionPool

from shadowtap.errors import SideEffectBlocked
from shadowtap.guard.patches import patch
from shadowtap.guard.policy import Block
from shadowtap.guard.state import current

Urlopen = Callable[..., urllib3.BaseHTTPResponse]


class Urllib3Blocked(SideEffectBlocked, urllib3.exceptions.HTTPError):
    """Raised instead of sending: a urllib3 ``HTTPError``."""


def canned(block: Block, method: str, url: str, preload: bool = True) -> urllib3.HTTPResponse:
    """The canned answer as a urllib3 response (requests builds its response from it too)."""
    return urllib3.HTTPResponse(
        body=io.BytesIO(block.body),
        headers=dict(block.headers),
        status=block.status,
        reason="Blocked by shadowtap guard",
        preload_content=preload,
        decode_content=False,
        request_method=method,
        request_url=url,
    )


def wrap_urlopen(urlopen: Urlopen) -> Urlopen:
    @functools.wraps(urlopen)
    def urlopen_checked(
        self: HTTPConnectionPool, method: str, url: str, *args: Any, **kwargs: Any
    ) -> urllib3.BaseHTTPResponse:
        mirror = current()
        if mirror is not None:
            parts = urlsplit(url)  # absolute through an HTTP proxy, else a path on this pool
            host = parts.hostname or self.host
            port = parts.port if parts.hostname else self.port
            block = mirror.check_http(method, parts.scheme or self.scheme, host, port, parts.path)
            if block is not None:
                preload = kwargs.get("preload_content", True)
                return block.resolve(lambda b: canned(b, method, url, preload), Urllib3Blocked)
        return urlopen(self, method, url, *args, **kwargs)

    return urlopen_checked


def install() -> None:
    patch(HTTPConnectionPool, "urlopen", wrap_urlopen)
