"""Django capture middleware, configured from ``settings.SHADOWTAP``; WSGI and ASGI alike.

    # settings.py
    MIDDLEWARE = ["shadowtap.producers.django.ShadowtapDjangoMiddleware", ...]  # first
    SHADOWTAP = {
        "kafka": {"bootstrap": "kafka:9092"},
        "capture": {"source": "billing", "exclude_paths": ["/admin/*"], "sample_percent": 25},
    }

``SHADOWTAP`` takes the same sections and keys as the TOML file (see shadowtap.config);
``SHADOWTAP_*`` environment variables still apply underneath it. Put the middleware first
so it sees the final response.

Django hands middleware a parsed request, so the body is copied only if the app read it
(``request.body``); a body the app never read, or read as a stream, is not read here and
the record says so with its declared size (``meta.request_body_skipped = "not-read"``, the
marking every adapter uses: see :mod:`shadowtap.producers.exchange`). Streaming and file
responses pass through untouched and are captured without their body. For byte-exact
headers wrap the WSGI/ASGI application with :mod:`shadowtap.producers.wsgi` or
:mod:`shadowtap.producers.asgi` instead.
"""

from __future__ import annotations

import atexit
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from shadowtap.config import Settings
from shadowtap.gateway import (
    environ_headers,
    environ_path,
    environ_target,
    parse_length,
    scope_path,
    scope_target,
)
from shadowtap.producers.core import Capturer
from shadowtap.producers.exchange import BodyCopy, Exchange


@functools.cache
def _shared_capturer() -> Capturer:
    """One Capturer (one Kafka producer) per process, built from settings.SHADOWTAP."""
    capturer = Capturer(Settings.from_django())
    atexit.register(capturer.flush)
    return capturer


class ShadowtapDjangoMiddleware:
    """Captures each request with its response after the view (and later middleware) ran."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        from asgiref.sync import iscoroutinefunction, markcoroutinefunction

        self.get_response = get_response
        self.capturer = _shared_capturer()
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self.is_async:
            return self.__acall__(request)
        exchange = self._start(request)
        if exchange is None:
            return self.get_response(request)
        try:
            response = self.get_response(request)
        except BaseException as exc:
            exchange.error = type(exc).__name__
            self._publish(exchange, request, None)
            raise
        self._publish(exchange, request, response)
        return response

    async def __acall__(self, request: Any) -> Any:
        exchange = self._start(request)
        get_response: Callable[[Any], Awaitable[Any]] = self.get_response
        if exchange is None:
            return await get_response(request)
        try:
            response = await get_response(request)
        except BaseException as exc:
            exchange.error = type(exc).__name__
            self._publish(exchange, request, None)
            raise
        self._publish(exchange, request, response)
        return response

    def _start(self, request: Any) -> Exchange | None:
        cap = self.capturer
        with cap.failsafe:
            # Under ASGI, META's PATH_INFO is already decoded: the scope has the wire form.
            scope = getattr(request, "scope", None)
            path = scope_path(scope) if scope is not None else environ_path(request.META)
            request_id = cap.admit(request.method, path)
            if request_id is None:
                return None
            environ = request.META
            signature_key, id_key = cap.marking_headers.environ
            signature = environ.get(signature_key)
            if signature is not None:
                target = scope_target(scope) if scope is not None else environ_target(environ)
                if cap.mirrored(request.method, target, signature, environ.get(id_key)):
                    return None
            copy = cap.request_copy(
                parse_length(environ.get("CONTENT_LENGTH")),
                chunked="HTTP_TRANSFER_ENCODING" in environ,
                content_type=environ.get("CONTENT_TYPE"),
            )
            exchange = Exchange(
                request_id, request.method, path, copy, BodyCopy(cap.max_response_body)
            )
            exchange.meta["capture"] = "django"
            return exchange
        return None

    def _publish(self, exchange: Exchange, request: Any, response: Any) -> None:
        cap = self.capturer
        with cap.failsafe:
            environ = request.META
            exchange.scheme = request.scheme
            exchange.host = environ.get("HTTP_HOST", "")
            exchange.query = environ.get("QUERY_STRING", "")
            exchange.headers = environ_headers(environ)
            exchange.client = environ.get("REMOTE_ADDR", "")
            _request_body(exchange, request)
            if response is not None:
                _response(cap, exchange, response)
            cap.publish(exchange)


def _request_body(exchange: Exchange, request: Any) -> None:
    """What Django read of the body: it keeps it in ``_body``; read as a stream, it is not
    there. Under WSGI it reads a chunked body without Content-Length as empty."""
    copy = exchange.request
    body: bytes | None = getattr(request, "_body", None)
    if body is not None:
        copy.add(body)
    declared = copy.declared
    short = body is not None and declared is not None and len(body) < declared
    unread = body is None or (copy.expected and declared is None and not body)
    exchange.whole = not (unread or short)
    exchange.cut = short


def _response(cap: Capturer, exchange: Exchange, response: Any) -> None:
    exchange.status = response.status_code
    exchange.response_headers = [(k, v) for k, v in response.items()]
    exchange.response_headers += [
        ("Set-Cookie", morsel.OutputString()) for morsel in response.cookies.values()
    ]
    if getattr(response, "streaming", False):
        copy = cap.response_copy()
        copy.skip()  # streamed to the client, not read here
    else:
        copy = cap.response_copy(None, response.get("Content-Type"))
        copy.add(response.content)
    exchange.response = copy
