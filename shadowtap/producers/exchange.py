"""One captured exchange as an adapter sees it pass; :class:`~shadowtap.producers.core.Capturer`
turns it into the record.

Each adapter (ASGI, WSGI, Django, the collector) only translates its framework's request and
response into an :class:`Exchange`: the request line and headers, a bounded copy of each body
(:class:`BodyCopy`) as it streams past, the status and response headers, and what happened
(the body read to its end or cut off, the app's exception). Everything the record says
beyond that (redaction, keys, ``meta``, the marking below) is decided in one place, the core.

A record says what it lacks. A request body that did not pass through capture whole is
never passed off as a complete (or empty) body: the record keeps no body, says
``truncated: true``, keeps the larger of the declared (Content-Length) and the seen size in
``body_size``, and says why in ``meta.request_body_skipped``:

- ``not-read`` — the app answered without reading it all (a 401, 404 or 422 before the body;
  capture never reads ahead of the app to find out what it was);
- ``client-disconnected`` — the client went away mid-body;
- ``content-type`` — ``capture.content_types`` leaves this type out.

A body only over ``max_request_body`` passed through whole and is just ``truncated``. A
response body is bounded by ``max_response_body`` the same way; one capture could not copy
at all is recorded without it (``meta.response_body_skipped`` says why where the adapter
knows, e.g. ``file-wrapper``).
"""

from __future__ import annotations

import time
from typing import Any

from shadowtap.headers import Headers

# Why a body is not in the record (``meta.request_body_skipped`` / ``response_body_skipped``).
NOT_READ = "not-read"
CLIENT_DISCONNECTED = "client-disconnected"
CONTENT_TYPE = "content-type"
FILE_WRAPPER = "file-wrapper"


class BodyCopy:
    """A bounded copy of a body as it streams past; past the limit it keeps only the size."""

    __slots__ = ("chunks", "declared", "expected", "limit", "size", "skipped", "truncated")

    def __init__(
        self, limit: int, declared: int | None = None, *, expected: bool = True, skipped: str = ""
    ) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.limit = limit
        self.declared = declared
        # Whether the head announced a body (Content-Length > 0 or chunked).
        self.expected = expected
        # Why no bytes are kept although there is a body (see the module docstring).
        self.skipped = skipped
        # Decided from Content-Length before buffering anything (as Sentry does).
        self.truncated = declared is not None and declared > limit

    def add(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.size += len(chunk)
        if self.truncated:
            return
        if self.size > self.limit:
            self.truncated = True
            self.chunks = []
            return
        self.chunks.append(bytes(chunk))

    def skip(self, reason: str = "") -> None:
        """Keep none of the body; ``reason`` (when known) goes into the record's ``meta``."""
        self.skipped = reason
        self.truncated = True
        self.chunks = []

    def finish(self, *, whole: bool, disconnected: bool) -> None:
        """The exchange is over: mark a body the head announced that did not pass whole.

        ``whole``: the app read it to its end. Otherwise the client went away mid-body
        (``disconnected``) or the app answered without reading it all.
        """
        if whole or not self.expected:
            return
        self.skip(CLIENT_DISCONNECTED if disconnected else NOT_READ)

    @property
    def body_size(self) -> int:
        """The size a record gives: the declared one when the bytes are not all there."""
        if self.truncated and self.declared is not None and self.declared > self.size:
            return self.declared
        return self.size

    def value(self) -> bytes:
        return b"" if self.truncated else b"".join(self.chunks)


class Exchange:
    """One request and its response, filled in by an adapter as they pass.

    Only ``id``, ``method``, ``path`` and the request copy are known at the start; an adapter
    sets the rest when its framework gives it, at the latest just before
    ``Capturer.publish(exchange)``. ``response`` is None where there is no production
    response (the collector receives copies); ``status`` 0 means none was started (the
    record says 500).
    """

    __slots__ = (
        "client", "cut", "error", "headers", "host", "id", "meta", "method", "path", "query",
        "request", "response", "response_headers", "scheme", "status", "t0", "ts", "whole",
    )  # fmt: skip

    def __init__(
        self,
        request_id: str,
        method: str,
        path: str,
        request: BodyCopy,
        response: BodyCopy | None,
    ) -> None:
        self.id = request_id
        self.method = method
        self.path = path
        self.ts = time.time_ns() // 1_000_000
        self.t0 = time.perf_counter()
        self.request = request
        self.response = response
        self.scheme = "http"
        self.host = ""
        self.query = ""
        self.headers: Headers = []
        self.client = ""
        self.status = 0
        self.response_headers: Headers = []
        # The request body was read to its end (whole), or its stream ended before (cut: the
        # client went away); neither: the app did not read it all.
        self.whole = False
        self.cut = False
        self.error = ""  # the class name of the app's exception
        self.meta: dict[str, Any] = {}  # what only this adapter knows
