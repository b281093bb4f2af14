"""aiohttp's client: checked in ``ClientSession._request``, which every request and
``ws_connect`` of a session goes through, and again in ``BaseConnector.connect`` for each
redirect that ``_request`` follows by itself (there it can only raise: no response to can).

``_request`` is private, so the supported versions are checked at install. The canned answer
is a ``ClientResponse`` that never had a connection: status, headers, ``read()``, ``text()``,
``json()``, ``content`` and ``raise_for_status()`` work as on a real one.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp.base_protocol import BaseProtocol
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from shadowtap.errors import SideEffectBlocked
from shadowtap.guard.patches import patch
from shadowtap.guard.policy import Block
from shadowtap.guard.state import current

SUPPORTED = ((3, 9), (4, 0))  # [from, to) — _request and ClientResponse's fields as used here
Request = Callable[..., Awaitable[aiohttp.ClientResponse]]
Connect = Callable[..., Awaitable[Any]]


class AiohttpBlocked(SideEffectBlocked, aiohttp.ClientConnectionError):
    """Raised instead of sending: aiohttp's ``ClientConnectionError``."""


class CannedResponse(aiohttp.ClientResponse):
    """A response made here, not read from a connection."""

    def __init__(self, block: Block, method: str, url: URL) -> None:  # no super(): no I/O
        loop = asyncio.get_running_loop()
        self.method = method
        self._url = self._real_url = url
        self.status = block.status
        self.reason = "Blocked by shadowtap guard"
        self.version = aiohttp.HttpVersion11
        self._headers = CIMultiDictProxy(CIMultiDict(block.headers))
        self._raw_headers = tuple((k.encode(), v.encode()) for k, v in block.headers)
        self._body = block.body
        self._history = ()
        self._request_info = aiohttp.RequestInfo(url, method, CIMultiDictProxy(CIMultiDict()), url)
        self._loop = loop
        self._cache = {}
        self._traces = []
        self._resolve_charset = lambda response, body: "utf-8"
        limit = max(2**16, len(block.body))  # never asks the (absent) transport to pause
        self.content = aiohttp.StreamReader(BaseProtocol(loop), limit, loop=loop)
        self.content.feed_data(block.body)
        self.content.feed_eof()


def wrap_request(request: Request) -> Request:
    @functools.wraps(request)
    async def request_checked(
        self: aiohttp.ClientSession, method: str, str_or_url: Any, **kwargs: Any
    ) -> aiohttp.ClientResponse:
        mirror = current()
        if mirror is not None:
            url: URL = self._build_url(str_or_url)
            block = mirror.check_http(method, url.scheme, url.host or "", url.port, url.path)
            if block is not None:
                return block.resolve(
                    lambda b: CannedResponse(b, method.upper(), url), AiohttpBlocked
                )
        return await request(self, method, str_or_url, **kwargs)

    return request_checked


def wrap_connect(connect: Connect) -> Connect:
    @functools.wraps(connect)
    async def connect_checked(
        self: aiohttp.BaseConnector, req: aiohttp.ClientRequest, *args: Any, **kwargs: Any
    ) -> Any:
        mirror = current()
        if mirror is not None:
            url = req.url
            block = mirror.check_http(
                req.method, url.scheme, url.host or "", url.port, url.path, respond=False
            )
            if block is not None:
                raise AiohttpBlocked(block)
        return await connect(self, req, *args, **kwargs)

    return connect_checked


def install() -> None:
    version = tuple(int(part) for part in aiohttp.__version__.split(".")[:2])
    if not SUPPORTED[0] <= version < SUPPORTED[1]:
        raise RuntimeError(f"aiohttp {aiohttp.__version__} is not a version the guard supports")
    patch(aiohttp.ClientSession, "_request", wrap_request)
    patch(aiohttp.BaseConnector, "connect", wrap_connect)
