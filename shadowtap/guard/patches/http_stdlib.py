"""urllib.request, and any other user of http.client (xmlrpc, httplib2, older SDKs).

``AbstractHTTPHandler.do_open`` opens every http(s) URL of urllib, once per redirect, and can
return a canned response. Below it, ``HTTPConnection.connect`` is the last line for code that
drives http.client itself: it sees only a host and a port and has no response to can, so it
raises in either mode. urllib3 and requests connect on their own and are patched above.
"""

from __future__ import annotations

import functools
import http.client
import io
import urllib.error
import urllib.request
import urllib.response
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from shadowtap.errors import SideEffectBlocked
from shadowtap.guard.patches import patch
from shadowtap.guard.policy import Block
from shadowtap.guard.state import current

DoOpen = Callable[..., Any]
Connect = Callable[[http.client.HTTPConnection], None]


class UrllibBlocked(SideEffectBlocked, urllib.error.URLError):
    """Raised instead of opening: urllib's ``URLError`` (an ``OSError``)."""


class HTTPClientBlocked(SideEffectBlocked, ConnectionRefusedError):
    """Raised instead of connecting: a ``ConnectionRefusedError``."""


def canned(block: Block, url: str) -> urllib.response.addinfourl:
    head = "".join(f"{name}: {value}\r\n" for name, value in block.headers) + "\r\n"
    headers = http.client.parse_headers(io.BytesIO(head.encode("latin-1")))
    response = urllib.response.addinfourl(io.BytesIO(block.body), headers, url, block.status)
    response.msg = "Blocked by shadowtap guard"  # type: ignore[attr-defined] # read by urllib's error handling for 4xx/5xx
    return response


def wrap_do_open(do_open: DoOpen) -> DoOpen:
    @functools.wraps(do_open)
    def do_open_checked(
        self: urllib.request.AbstractHTTPHandler,
        http_class: type[http.client.HTTPConnection],
        req: urllib.request.Request,
        **kwargs: Any,
    ) -> Any:
        mirror = current()
        if mirror is not None:
            url = req.full_url
            parts = urlsplit(url)
            block = mirror.check_http(
                req.get_method(), parts.scheme, parts.hostname or "", parts.port, parts.path
            )
            if block is not None:
                return block.resolve(lambda b: canned(b, url), UrllibBlocked)
        return do_open(self, http_class, req, **kwargs)

    return do_open_checked


def wrap_connect(connect: Connect) -> Connect:
    @functools.wraps(connect)
    def connect_checked(self: http.client.HTTPConnection) -> None:
        mirror = current()
        if mirror is not None:
            tunnel = getattr(self, "_tunnel_host", None)  # through a proxy: the real destination
            host = tunnel or self.host
            port = getattr(self, "_tunnel_port", None) if tunnel else self.port
            scheme = "https" if isinstance(self, http.client.HTTPSConnection) else "http"
            block = mirror.check_http("CONNECT", scheme, host, port, "", respond=False)
            if block is not None:
                raise HTTPClientBlocked(block)
        connect(self)

    return connect_checked


def install() -> None:
    patch(urllib.request.AbstractHTTPHandler, "do_open", wrap_do_open)
    patch(http.client.HTTPConnection, "connect", wrap_connect)
