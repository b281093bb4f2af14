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

from shadowtap.gateway import environ_target
from shadowtap.guard.core import GuardedApp, Rejection
from shadowtap.guard.state import enter
from shadowtap.types import Environ, ExcInfo, StartResponse, WSGIApp


class GuardWSGIMiddleware(GuardedApp[WSGIApp]):
    """Runs verified mirrored requests with their side effects blocked."""

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        signature_key, id_key = self.guard.headers.environ
        signature = environ.get(signature_key)
        record_id = environ.get(id_key)
        if signature is None and record_id is None:
            return self.app(environ, start_response)
        decision = self.guard.admit(
            environ.get("REQUEST_METHOD", "GET"),
            environ_target(environ),
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
            headers = [*headers, self.guard.mirrored]
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
