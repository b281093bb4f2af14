"""WSGI capture middleware: Flask, Django WSGI, any PEP 3333 app.

    from shadowtap.producers.wsgi import ShadowtapWSGIMiddleware

    app.wsgi_app = ShadowtapWSGIMiddleware(app.wsgi_app)        # Flask
    application = ShadowtapWSGIMiddleware(get_wsgi_application())  # Django

``wsgi.input`` is proxied: the app reads exactly what it would have read (bounded by
Content-Length, like werkzeug's ``LimitedStream``) and a bounded copy is kept. The response
iterable is wrapped in a generator that copies up to the limit and always calls the app's
``close()``; ``wsgi.file_wrapper`` responses are returned untouched (so sendfile still
works) and captured without their body. The record is queued when the server closes the
response, i.e. after it was sent. A body the app did not read to its end, or whose stream
ended or failed early (the client went away), is recorded as missing with its declared size
(``meta.request_body_skipped``). Queued records are flushed at interpreter exit with a
bounded timeout. Settings are in :mod:`shadowtap.producers.core`, that marking in
:mod:`shadowtap.producers.exchange`.
"""

from __future__ import annotations

import atexit
from collections.abc import Iterable, Iterator
from typing import Any

from shadowtap.config import Settings
from shadowtap.gateway import (
    environ_headers,
    environ_path,
    environ_server,
    environ_target,
    parse_length,
)
from shadowtap.headers import header_value
from shadowtap.producers.core import Capturer
from shadowtap.producers.exchange import FILE_WRAPPER, BodyCopy, Exchange
from shadowtap.producers.publisher import MetricHook
from shadowtap.types import Environ, ExcInfo, StartResponse, WSGIApp


class ShadowtapWSGIMiddleware:
    """Copies each captured request and its production response to Kafka."""

    def __init__(
        self,
        app: WSGIApp,
        settings: Settings | None = None,
        *,
        capturer: Capturer | None = None,
        metric_hook: MetricHook | None = None,
    ) -> None:
        self.app = app
        self.capturer = capturer or Capturer(settings, metric_hook=metric_hook)
        atexit.register(self.capturer.flush)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        cap = self.capturer
        method: str = environ.get("REQUEST_METHOD", "GET")
        path = environ_path(environ)
        request_id = cap.admit(method, path)
        if request_id is None:
            return self.app(environ, start_response)
        signature_key, id_key = cap.marking_headers.environ
        signature = environ.get(signature_key)
        if signature is not None and _mirrored(cap, environ, method, signature, id_key):
            return self.app(environ, start_response)
        exchange = _WsgiExchange(cap, environ, request_id, method, path)
        environ["wsgi.input"] = exchange.input
        try:
            result = self.app(environ, exchange.start_response(start_response))
        except BaseException as exc:
            exchange.error = type(exc).__name__
            exchange.publish()
            raise
        wrapper = environ.get("wsgi.file_wrapper")
        if isinstance(wrapper, type) and isinstance(result, wrapper):
            exchange.response.skip(FILE_WRAPPER)  # sendfile: the body never passes us
            exchange.publish()
            return result
        return exchange.iterate(result)


def _mirrored(cap: Capturer, environ: Environ, method: str, signature: str, id_key: str) -> bool:
    with cap.failsafe:
        return cap.mirrored(method, environ_target(environ), signature, environ.get(id_key))
    return False


class _TeeInput:
    """``wsgi.input`` as the app would see it, bounded by Content-Length, copied as read.

    Notes whether the body was read to its end (``whole``) and whether the stream ended
    or failed before that (``ended``: the client went away mid-body).
    """

    __slots__ = ("_copy", "_remaining", "_stream", "ended", "whole")

    def __init__(self, stream: Any, length: int | None, copy: BodyCopy) -> None:
        self._stream = stream
        self._remaining = length
        self._copy = copy
        self.whole = length == 0
        self.ended = False

    def _limit(self, size: int | None) -> int | None:
        if self._remaining is None:
            return size
        if size is None or size < 0:
            return self._remaining
        return min(size, self._remaining)

    def _took(self, data: bytes, limit: int | None, everything: bool) -> bytes:
        self._copy.add(data)
        if self._remaining is None:
            if not data and limit != 0:
                self.whole = True  # end of a body without Content-Length
            return data
        self._remaining -= len(data)
        if self._remaining <= 0:
            self.whole = True
        elif not data or everything:  # the stream ended before Content-Length was reached
            self.ended = True
        return data

    def read(self, size: int | None = -1) -> bytes:
        limit = self._limit(size)
        if limit == 0:
            return b""
        everything = limit is None or limit < 0 or size is None or size < 0
        try:
            data = self._stream.read() if limit is None or limit < 0 else self._stream.read(limit)
        except BaseException:
            self.ended = True
            raise
        return self._took(data, limit, everything)

    def readline(self, size: int | None = -1) -> bytes:
        limit = self._limit(size)
        if limit == 0:
            return b""
        try:
            data = (
                self._stream.readline()
                if limit is None or limit < 0
                else self._stream.readline(limit)
            )
        except BaseException:
            self.ended = True
            raise
        return self._took(data, limit, False)

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")


class _WsgiExchange(Exchange):
    """An exchange filled in as the app reads ``wsgi.input`` and the server iterates the
    response; published once, when the server closes the response."""

    __slots__ = ("cap", "environ", "input", "published")
    response: BodyCopy  # always: an app's response

    def __init__(
        self, cap: Capturer, environ: Environ, request_id: str, method: str, path: str
    ) -> None:
        length = parse_length(environ.get("CONTENT_LENGTH"))
        request = cap.request_copy(
            length,
            chunked="HTTP_TRANSFER_ENCODING" in environ,
            content_type=environ.get("CONTENT_TYPE"),
        )
        super().__init__(request_id, method, path, request, BodyCopy(cap.max_response_body))
        self.cap = cap
        self.environ = environ
        self.headers = environ_headers(environ)
        self.input = _TeeInput(environ.get("wsgi.input"), length, request)
        self.published = False

    def start_response(self, start_response: StartResponse) -> StartResponse:
        def wrapped(
            status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
        ) -> Any:
            with self.cap.failsafe:
                self.status = int(status.split(" ", 1)[0])
                self.response_headers = list(headers)
                self.response = self.cap.response_copy(
                    parse_length(header_value(headers, "content-length")),
                    header_value(headers, "content-type"),
                )
            if exc_info is None:
                return start_response(status, headers)
            return start_response(status, headers, exc_info)

        return wrapped

    def iterate(self, result: Iterable[bytes]) -> Iterator[bytes]:
        try:
            for chunk in result:
                self.response.add(chunk)
                yield chunk
        except BaseException as exc:
            self.error = type(exc).__name__
            raise
        finally:
            try:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            finally:
                self.publish()

    def publish(self) -> None:
        if self.published:
            return
        self.published = True
        with self.cap.failsafe:
            env = self.environ
            self.scheme = env.get("wsgi.url_scheme", "http")
            self.host = header_value(self.headers, "host") or environ_server(env)
            self.query = env.get("QUERY_STRING", "")
            self.client = env.get("REMOTE_ADDR", "")
            self.whole, self.cut = self.input.whole, self.input.ended
            self.cap.publish(self)
