"""httpx, sync and async: checked per hop at the transport, so redirects are checked too.

Only httpx's own network transports are wrapped; ``MockTransport``, ``WSGITransport`` and
``ASGITransport`` do not leave the process, and the httpx-aiohttp transport goes through
aiohttp's patch.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

import httpx

from shadowtap.errors import SideEffectBlocked
from shadowtap.guard.patches import patch
from shadowtap.guard.policy import Block
from shadowtap.guard.state import Mirror, current

Handle = Callable[[httpx.HTTPTransport, httpx.Request], httpx.Response]
AsyncHandle = Callable[[httpx.AsyncHTTPTransport, httpx.Request], Awaitable[httpx.Response]]


class HttpxBlocked(SideEffectBlocked, httpx.ConnectError):
    """Raised instead of sending: httpx's connect error, so ``except httpx.HTTPError`` sees it."""

    def __init__(self, block: Block, request: httpx.Request) -> None:
        super().__init__(block)
        self.request = request


def canned(block: Block) -> httpx.Response:
    return httpx.Response(block.status, headers=list(block.headers), content=block.body)


def _check(mirror: Mirror, request: httpx.Request) -> Block | None:
    url = request.url
    return mirror.check_http(request.method, url.scheme, url.host, url.port, url.path)


def wrap_sync(handle: Handle) -> Handle:
    @functools.wraps(handle)
    def handle_request(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        mirror = current()
        if mirror is not None and (block := _check(mirror, request)) is not None:
            return block.resolve(canned, lambda b: HttpxBlocked(b, request))
        return handle(self, request)

    return handle_request


def wrap_async(handle: AsyncHandle) -> AsyncHandle:
    @functools.wraps(handle)
    async def handle_async_request(
        self: httpx.AsyncHTTPTransport, request: httpx.Request
    ) -> httpx.Response:
        mirror = current()
        if mirror is not None and (block := _check(mirror, request)) is not None:
            return block.resolve(canned, lambda b: HttpxBlocked(b, request))
        return await handle(self, request)

    return handle_async_request


def install() -> None:
    patch(httpx.HTTPTransport, "handle_request", wrap_sync)
    patch(httpx.AsyncHTTPTransport, "handle_async_request", wrap_async)
