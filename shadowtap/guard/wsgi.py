"""WSGI guard middleware for the target app: Flask, Django WSGI, any PEP 3333 app.

    from shadowtap.guard import GuardWSGIMiddleware

    app.wsgi_app = GuardWSGIMiddleware(app.wsgi_app)            # Flask
    application = GuardWSGIMiddleware(get_wsgi_application())   # Django

A request without shadowtap's marking headers goes straight to the app. A verified mirrored
request runs in its own copy of the context, and so does the iteration of its response: side
effects of a streamed body are blocked too, and nothing leaks into the server's thread.
``wsgi.file_wrapper`` responses are returned untouched. The rest is in shadowtap.guard.core.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Iterator
from typing import Any

from shadowtap.config import Settings
from shadowtap.guard.core import Guard, Rejection
from shadowtap.guard.policy import GUARD_HEADER
from shadowtap.guard.state import enter
from shadowtap.marking import wsgi_request_target
from shadowtap.types import Environ, ExcInfo, StartResponse, WSGIApp


def environ_key(header: str) -> str:
    """The WSGI environ key of a request header (``X-Shadowtap-Id`` → ``HTTP_X_SHADOWTAP_ID``)."""
    return "HTTP_" + header.upper().replace("-", "_")


class GuardWSGIMiddleware:
    """Runs verified mirrored requests with their side effects blocked."""

    def __init__(
        self, app: WSGIApp, settings: Settings | None = None, *, guard: Guard | None = None
    ) -> None:
        self.app = app
        self.guard = guard or Guard(settings)
        self._signature = environ_key(self.guard.signature_header)
        self._id = environ_key(self.guard.id_header)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        signature = environ.get(self._signature)
        record_id = environ.get(self._id)
        if signature is None and record_id is None:
            return self.app(environ, start_response)
        decision = self.guard.admit(
            environ.get("REQUEST_METHOD", "GET"),
            wsgi_request_target(environ),
            signature,
            record_id,
        )
        if decision is None:
            return self.app(environ, start_response)
        if isinstance(decision, Rejection):
            start_response(f"{decision.status} Forbidden", decision.headers)
            return [decision.body]

        def start_marked(
            status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
        ) -> Any:
            headers = [*headers, (GUARD_HEADER, "mirrored")]
            if exc_info is None:
                return start_response(status, headers)
            return start_response(status, headers, exc_info)

        context = contextvars.copy_context()
        context.run(enter, decision)
        result = context.run(self.app, environ, start_marked)
        wrapper = environ.get("wsgi.file_wrapper")
        if isinstance(wrapper, type) and isinstance(result, wrapper):
            return result
        return _iterate_in(context, result)


def _iterate_in(context: contextvars.Context, result: Iterable[bytes]) -> Iterator[bytes]:
    try:
        chunks = context.run(iter, result)
        while True:
            try:
                chunk = context.run(next, chunks)
            except StopIteration:
                return
            yield chunk
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            context.run(close)
