"""requests: checked per hop in ``HTTPAdapter.send``, before urllib3 is reached.

The canned answer is a real ``requests.Response`` built by the adapter from urllib3's canned
response, so ``.json()``, ``.raise_for_status()`` and hooks behave as usual.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from shadowtap.errors import SideEffectBlocked
from shadowtap.guard.patches import patch
from shadowtap.guard.patches.http_urllib3 import canned
from shadowtap.guard.policy import Block
from shadowtap.guard.state import current

Send = Callable[..., requests.Response]


class RequestsBlocked(SideEffectBlocked, requests.exceptions.ConnectionError):
    """Raised instead of sending: ``requests.ConnectionError``."""

    def __init__(self, block: Block, request: requests.PreparedRequest) -> None:
        super().__init__(block)
        self.request = request


def wrap_send(send: Send) -> Send:
    @functools.wraps(send)
    def send_checked(
        self: HTTPAdapter, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        mirror = current()
        if mirror is not None:
            url = request.url or ""
            parts = urlsplit(url)
            method = request.method or "GET"
            block = mirror.check_http(
                method, parts.scheme, parts.hostname or "", parts.port, parts.path
            )
            if block is not None:
                return block.resolve(
                    lambda b: self.build_response(request, canned(b, method, url, False)),
                    lambda b: RequestsBlocked(b, request),
                )
        return send(self, request, *args, **kwargs)

    return send_checked


def install() -> None:
    patch(HTTPAdapter, "send", wrap_send)
