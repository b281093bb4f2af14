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
marking every adapter uses: see :mod:`shadowtap.producers.core`). Streaming and file
responses pass through untouched and are captured without their body. For byte-exact
headers wrap the WSGI/ASGI application with :mod:`shadowtap.producers.wsgi` or
:mod:`shadowtap.producers.asgi` instead.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from shadowtap.config import Settings
from shadowtap.envelope import Response, new_id
from shadowtap.headers import Headers
from shadowtap.producers.asgi import scope_path
from shadowtap.producers.core import Capturer, parse_length
from shadowtap.producers.wsgi import raw_path, request_headers

_capturer: Capturer | None = None


def _shared_capturer() -> Capturer:
    """One Capturer (one Kafka producer) per process, built from settings.SHADOWTAP."""
    global _capturer
    if _capturer is None:
        from django.conf import settings as django_settings

        overrides = getattr(django_settings, "SHADOWTAP", {}) or {}
        _capturer = Capturer(Settings.load(overrides=overrides))
        import atexit

        atexit.register(_capturer.flush)
    return _capturer


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
        start = self._start(request)
        if start is None:
            return self.get_response(request)
        try:
            response = self.get_response(request)
        except BaseException as exc:
            self._publish(request, start, None, type(exc).__name__)
            raise
        self._publish(request, start, response, "")
        return response

    async def __acall__(self, request: Any) -> Any:
        start = self._start(request)
        get_response: Callable[[Any], Awaitable[Any]] = self.get_response
        if start is None:
            return await get_response(request)
        try:
            response = await get_response(request)
        except BaseException as exc:
            self._publish(request, start, None, type(exc).__name__)
            raise
        self._publish(request, start, response, "")
        return response

    def _start(self, request: Any) -> tuple[str, str, int, float] | None:
        cap = self.capturer
        with cap.guard():
            # Under ASGI, META's PATH_INFO is already decoded: the scope has the wire form.
            scope = getattr(request, "scope", None)
            path = scope_path(scope) if scope is not None else raw_path(request.META)
            if not cap.wants(request.method, path):
                return None
            request_id = new_id()
            if not cap.admits(request_id):
                return None
            return request_id, path, time.time_ns() // 1_000_000, time.perf_counter()
        return None

    def _publish(
        self, request: Any, start: tuple[str, str, int, float], response: Any, error: str
    ) -> None:
        cap = self.capturer
        with cap.guard():
            request_id, path, ts, t0 = start
            meta: dict[str, Any] = {"capture": "django"}
            if error:
                meta["app_error"] = error
            environ = request.META
            headers: Headers = request_headers(environ)
            declared = parse_length(environ.get("CONTENT_LENGTH"))
            chunked = "HTTP_TRANSFER_ENCODING" in environ
            copy = cap.request_copy(
                declared, chunked=chunked, content_type=environ.get("CONTENT_TYPE")
            )
            # Django keeps the body it read in ``_body``; read as a stream, it is not there.
            # Under WSGI it reads a chunked body without Content-Length as empty.
            body: bytes | None = getattr(request, "_body", None)
            if body is not None:
                copy.add(body)
            short = body is not None and declared is not None and len(body) < declared
            unread = body is None or (chunked and declared is None and not body)
            copy.finish(whole=not (unread or short), disconnected=short)
            cap.publish(
                request_id=request_id,
                ts=ts,
                method=request.method,
                scheme=request.scheme,
                host=environ.get("HTTP_HOST", ""),
                path=path,
                query=environ.get("QUERY_STRING", ""),
                headers=headers,
                request=copy,
                client=environ.get("REMOTE_ADDR", ""),
                response=_response(cap, response, t0),
                meta=meta,
            )


def _response(cap: Capturer, response: Any, t0: float) -> Response:
    duration = round((time.perf_counter() - t0) * 1000, 3)
    if response is None:
        return Response(status=500, duration_ms=duration)
    headers: Headers = [(k, v) for k, v in response.items()]
    headers += [("Set-Cookie", morsel.OutputString()) for morsel in response.cookies.values()]
    body = b""
    truncated = True
    size = 0
    if not getattr(response, "streaming", False):
        content: bytes = response.content
        size = len(content)
        truncated = size > cap.max_response_body or not cap.wants_body(response.get("Content-Type"))
        body = b"" if truncated else content
    return Response(
        status=response.status_code,
        headers=headers,
        body=body,
        duration_ms=duration,
        body_size=size,
        truncated=truncated,
    )
