"""The capture core shared by the ASGI, WSGI and Django middleware and the collector.

Every decision is made before anything is copied, from settings compiled once
(``[capture]``):

- ``enabled`` — off switch;
- ``include_paths`` / ``exclude_paths`` — globs (``/api/*``) or regexes (``^/v[12]/``);
- ``include_methods`` / ``exclude_methods``;
- ``sample_percent`` — deterministic on the request id (the same hash as the processor);
- ``max_request_body`` / ``max_response_body`` — bytes copied per direction; over it the
  record keeps no body and says ``truncated``;
- ``content_types`` — copy bodies only of these types (prefix match; empty: all);
- ``redact_headers`` — added to Authorization, Cookie, Set-Cookie, X-Api-Key,
  Proxy-Authorization, whose values never leave the process;
- ``session_header`` / ``session_cookie`` — session affinity: the keyed hash of its value is
  the Kafka key, so one session stays in order on one partition;
- ``principal_header`` / ``principal_jwt_claim`` — who made the request, kept only as a
  keyed hash in ``meta.principal`` so replayers can map users to staging accounts;
- ``hash_key`` — the HMAC key for those hashes (set it; the default is for development);
- ``source`` — the service name written into every record.

A record says what it lacks. A request body that did not pass through capture whole is
never passed off as a complete (or empty) body: the record keeps no body, says
``truncated: true``, keeps the larger of the declared (Content-Length) and the seen size in
``body_size``, and says why in ``meta.request_body_skipped``:

- ``not-read`` — the app answered without reading it all (a 401, 404 or 422 before the body;
  capture never reads ahead of the app to find out what it was);
- ``client-disconnected`` — the client went away mid-body;
- ``content-type`` — ``content_types`` leaves this type out.

A body only over ``max_request_body`` passed through whole and is just ``truncated``.
:class:`BodyCopy` holds this marking for every adapter (ASGI, WSGI, Django, collector).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
from collections.abc import Iterator
from typing import Any

import orjson

from shadowtap.config import Settings
from shadowtap.envelope import REDACTED, Envelope, Response, encode, kafka_headers
from shadowtap.headers import Headers, cookie_value, header_value
from shadowtap.producers.publisher import CaptureMetrics, MetricHook, Publisher
from shadowtap.rules import compile_paths, upper_methods
from shadowtap.sampling import should_sample

log = logging.getLogger("shadowtap.capture")

# RFC 3986 path characters that need no escaping, and '%' so existing escapes stay as they are.
PATH_SAFE = "/:@!$&'()*+,;=-._~%"
ALWAYS_REDACTED = ("authorization", "cookie", "set-cookie", "x-api-key", "proxy-authorization")

# Why a record's request body is not the whole body (``meta.request_body_skipped``).
NOT_READ = "not-read"
CLIENT_DISCONNECTED = "client-disconnected"
CONTENT_TYPE = "content-type"


class Capturer:
    """Edge decisions and publishing for one app; built once, used by every request."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        publisher: Publisher | None = None,
        metric_hook: MetricHook | None = None,
    ) -> None:
        settings = settings or Settings.load()
        c = settings.capture
        self.settings = settings
        self.enabled = c.enabled
        self.source = c.source
        self.sample_percent = c.sample_percent
        self.max_request_body = c.max_request_body
        self.max_response_body = c.max_response_body
        self._include = compile_paths(c.include_paths)
        self._exclude = compile_paths(c.exclude_paths)
        self._include_methods = upper_methods(c.include_methods)
        self._exclude_methods = upper_methods(c.exclude_methods)
        self._content_types = tuple(t.lower() for t in c.content_types)
        self._redact = frozenset(ALWAYS_REDACTED) | {h.lower() for h in c.redact_headers}
        self._session_header = c.session_header.lower()
        self._session_cookie = c.session_cookie
        self._principal_header = c.principal_header.lower()
        self._principal_claim = c.principal_jwt_claim
        self._hash_key = (c.hash_key or "shadowtap-development-key").encode()
        self.metrics = publisher.metrics if publisher is not None else CaptureMetrics(metric_hook)
        self.publisher = publisher if publisher is not None else Publisher(settings, self.metrics)

    def wants(self, method: str, path: str) -> bool:
        """Whether this request is captured at all (before any id, hash or copy)."""
        if not self.enabled:
            return False
        if self._include_methods and method not in self._include_methods:
            return False
        if method in self._exclude_methods:
            return False
        if self._include is not None and self._include.match(path) is None:
            return False
        return self._exclude is None or self._exclude.match(path) is None

    def sampled(self, request_id: str) -> bool:
        return should_sample(request_id, self.sample_percent)

    def admits(self, request_id: str) -> bool:
        """Sampled in, and there is room to queue it.

        With the queue full (Kafka down or too slow) the request is dropped and counted here,
        before anything is copied or encoded: an outage costs the app a length check.
        """
        if not should_sample(request_id, self.sample_percent):
            return False
        if self.publisher.full():
            self.metrics.count_dropped("queue-full")
            self.publisher.warn_full()
            return False
        return True

    def wants_body(self, content_type: str | None) -> bool:
        if not self._content_types:
            return True
        return content_type is not None and content_type.lower().startswith(self._content_types)

    def request_copy(
        self, declared: int | None, *, chunked: bool, content_type: str | None
    ) -> BodyCopy:
        """The bounded copy of a request body, decided from its head before any byte."""
        expected = (declared is not None and declared > 0) or chunked
        if self.wants_body(content_type):
            return BodyCopy(self.max_request_body, declared, expected=expected)
        return BodyCopy(0, declared, expected=expected, skipped=CONTENT_TYPE)

    def redact(self, headers: Headers) -> Headers:
        redact = self._redact
        return [(k, REDACTED if k.lower() in redact else v) for k, v in headers]

    def keyed_hash(self, value: str) -> str:
        return hmac.new(
            self._hash_key, value.encode("utf-8", "surrogateescape"), hashlib.sha256
        ).hexdigest()[:32]

    def session_key(self, headers: Headers) -> bytes | None:
        """The hashed session affinity value, or None (then the record id is the key)."""
        value = None
        if self._session_header:
            value = header_value(headers, self._session_header)
        if value is None and self._session_cookie:
            value = cookie_value(headers, self._session_cookie)
        return None if value is None else self.keyed_hash(value).encode()

    def principal(self, headers: Headers) -> str | None:
        """The keyed hash of the caller's identity (a header or a JWT claim), or None."""
        value = None
        if self._principal_header:
            value = header_value(headers, self._principal_header)
        if value is None and self._principal_claim:
            value = jwt_claim(header_value(headers, "authorization"), self._principal_claim)
        return None if value is None else self.keyed_hash(value)

    def publish(
        self,
        *,
        request_id: str,
        ts: int,
        method: str,
        scheme: str,
        host: str,
        path: str,
        query: str,
        headers: Headers,
        request: BodyCopy,
        client: str,
        response: Response | None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        """Build the envelope (redacted, keyed) and queue it; never raises."""
        try:
            meta = meta or {}
            if request.truncated and request.skipped:
                meta["request_body_skipped"] = request.skipped
            principal = self.principal(headers)
            if principal is not None:
                meta["principal"] = principal
            key = self.session_key(headers)
            if response is not None:
                response.headers = self.redact(response.headers)
            env = Envelope(
                id=request_id,
                ts=ts,
                source=self.source,
                method=method,
                scheme=scheme,
                host=host,
                path=path,
                query=query,
                headers=self.redact(headers),
                body=request.value(),
                body_size=request.body_size,
                truncated=request.truncated,
                client=client,
                response=response,
                meta=meta,
            )
            self.publisher.publish(encode(env), key or request_id.encode(), kafka_headers(env))
        except Exception:  # plain try: this runs on every captured request
            self._internal_error()

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Swallow and count our own failures: they must never reach the app's users."""
        try:
            yield
        except Exception:
            self._internal_error()

    def _internal_error(self) -> None:
        self.metrics.count_dropped("internal-error")
        log.debug("shadowtap capture failed", exc_info=True)

    def flush(self, timeout: float | None = None) -> int:
        with contextlib.suppress(Exception):
            return self.publisher.flush(timeout)
        return 0


class BodyCopy:
    """A bounded copy of a body as it streams past; past the limit it keeps only the size.

    Also the one place that marks a request body which did not pass through whole
    (:meth:`finish`), so every adapter writes the same record for it.
    """

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

    def finish(self, *, whole: bool, disconnected: bool) -> None:
        """The exchange is over: mark a body the head announced that did not pass whole.

        ``whole``: the app read it to its end. Otherwise the client went away mid-body
        (``disconnected``) or the app answered without reading it all.
        """
        if whole or not self.expected:
            return
        self.skipped = CLIENT_DISCONNECTED if disconnected else NOT_READ
        self.truncated = True
        self.chunks = []

    @property
    def body_size(self) -> int:
        """The size a record gives: the declared one when the bytes are not all there."""
        if self.truncated and self.declared is not None and self.declared > self.size:
            return self.declared
        return self.size

    def value(self) -> bytes:
        return b"" if self.truncated else b"".join(self.chunks)


def content_length(headers: Headers) -> int | None:
    return parse_length(header_value(headers, "content-length"))


def parse_length(value: str | bytes | None) -> int | None:
    """A Content-Length value as a number, or None when absent or not a number."""
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def jwt_claim(authorization: str | None, claim: str) -> str | None:
    """A claim from a Bearer JWT's payload, unverified: it is only hashed, never trusted."""
    if not authorization or authorization[:7].lower() != "bearer ":
        return None
    parts = authorization[7:].strip().split(".")
    if len(parts) != 3:
        return None
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return None
    value = payload.get(claim) if isinstance(payload, dict) else None
    return None if value is None else str(value)
