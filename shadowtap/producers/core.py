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

Loop prevention: a request that carries a valid signed marking (``[marking]``, shared with
the replayer and the target's guard: shadowtap.marking) is mirrored traffic and is never
recorded, counted as ``shadowtap_capture_dropped{reason="mirrored"}``: a staging app that is
itself captured would otherwise feed its mirrored requests back into the pipeline. Only a
request that has the signature header pays for the check (:meth:`Capturer.mirrored`); a
forged or expired marking is recorded like any request.

An adapter asks :meth:`Capturer.admit` first (a request id, or None: not captured), fills in
an :class:`~shadowtap.producers.exchange.Exchange` as the request and response pass, and
hands it to :meth:`Capturer.publish`, which makes the record (what it says about bodies
that did not pass whole: see :mod:`shadowtap.producers.exchange`). Capture's own failures
go through :class:`Failsafe`, never into the app.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from types import TracebackType

import orjson

from shadowtap.config import DEVELOPMENT_HASH_KEY, Settings
from shadowtap.envelope import REDACTED, Envelope, Response, encode, kafka_headers, new_id
from shadowtap.headers import Headers, cookie_value, header_value
from shadowtap.marking import Marker, MarkingHeaders
from shadowtap.producers.exchange import CONTENT_TYPE, BodyCopy, Exchange
from shadowtap.producers.publisher import CaptureMetrics, MetricHook, Publisher, RateLimitedLog
from shadowtap.rules import compile_paths, upper_methods
from shadowtap.sampling import should_sample

log = logging.getLogger("shadowtap.capture")

ALWAYS_REDACTED = ("authorization", "cookie", "set-cookie", "x-api-key", "proxy-authorization")


class Failsafe:
    """Where capture's own failures end: swallowed, counted, logged at most once per interval.

    A bug in shadowtap must never reach the app's users. Each failure drops that request's
    record, counted as ``shadowtap_capture_dropped{reason="internal-error"}``, and is logged
    with its traceback once per ``capture.log_interval_s`` (saying how many were suppressed)::

        with capturer.failsafe:          # a class, not a generator: about 0.2 µs
            ...
        try:                             # the ASGI hot path: a plain try costs nothing
            ...
        except Exception:
            capturer.failsafe.caught()
    """

    __slots__ = ("_log", "_metrics")

    def __init__(self, metrics: CaptureMetrics, interval_s: float) -> None:
        self._metrics = metrics
        self._log = RateLimitedLog(interval_s, log)

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if not isinstance(exc, Exception):
            return False  # none, or KeyboardInterrupt and the like: not ours to stop
        self.caught(exc)
        return True

    def caught(self, exc: BaseException | None = None) -> None:
        """Count and log one failure: the exception being handled, unless ``exc`` is given."""
        self._metrics.count_dropped("internal-error")
        self._log.log(
            logging.WARNING,
            "shadowtap: capture failed, this request is not recorded (a shadowtap bug)",
            exc_info=True if exc is None else exc,
        )


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
        self._hash_key = (c.hash_key or DEVELOPMENT_HASH_KEY).encode()
        self._marker = Marker.from_settings(settings.marking)
        self.marking_headers = MarkingHeaders.of(settings.marking)
        self.metrics = publisher.metrics if publisher is not None else CaptureMetrics(metric_hook)
        self.publisher = publisher if publisher is not None else Publisher(settings, self.metrics)
        self.failsafe = Failsafe(self.metrics, c.log_interval_s)

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

    def admit(self, method: str, path: str) -> str | None:
        """The new request's id when it is captured: wanted, sampled in, and there is room.

        With the queue full (Kafka down or too slow) the request is dropped and counted here,
        before anything is copied or encoded: an outage costs the app a length check.
        """
        if not self.wants(method, path):
            return None
        request_id = new_id()
        if not should_sample(request_id, self.sample_percent):
            return None
        if self.publisher.full():
            self.metrics.count_dropped("queue-full")
            self.publisher.warn_full()
            return None
        return request_id

    def mirrored(
        self, method: str, target: str | bytes, signature: str, record_id: str | None
    ) -> bool:
        """Whether a request that carries a signature is verified mirrored traffic: then it
        is not recorded (counted). ``target`` is the path and query as received (bytes as
        the server gave them, shadowtap.gateway)."""
        if not self._marker.verify(method, target, signature, record_id).valid:
            return False
        self.metrics.count_dropped("mirrored")
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

    def response_copy(
        self, declared: int | None = None, content_type: str | None = None
    ) -> BodyCopy:
        """The bounded copy of a response body, decided from its head before any byte."""
        copy = BodyCopy(self.max_response_body, declared)
        if not self.wants_body(content_type):
            copy.skip()
        return copy

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

    def envelope(self, exchange: Exchange) -> Envelope:
        """The record of a finished exchange: redacted, with what it lacks said in ``meta``."""
        request = exchange.request
        request.finish(whole=exchange.whole, disconnected=exchange.cut)
        meta = exchange.meta
        if exchange.error:
            meta["app_error"] = exchange.error
        if request.truncated and request.skipped:
            meta["request_body_skipped"] = request.skipped
        response = None
        copy = exchange.response
        if copy is not None:
            if copy.truncated and copy.skipped:
                meta["response_body_skipped"] = copy.skipped
            response = Response(
                status=exchange.status or 500,
                headers=self.redact(exchange.response_headers),
                body=copy.value(),
                duration_ms=round((time.perf_counter() - exchange.t0) * 1000, 3),
                body_size=copy.size,
                truncated=copy.truncated,
            )
        principal = self.principal(exchange.headers)
        if principal is not None:
            meta["principal"] = principal
        return Envelope(
            id=exchange.id,
            ts=exchange.ts,
            source=self.source,
            method=exchange.method,
            scheme=exchange.scheme,
            host=exchange.host,
            path=exchange.path,
            query=exchange.query,
            headers=self.redact(exchange.headers),
            body=request.value(),
            body_size=request.body_size,
            truncated=request.truncated,
            client=exchange.client,
            response=response,
            meta=meta,
        )

    def publish(self, exchange: Exchange) -> None:
        """Queue the record of a finished exchange, keyed by its session; never raises."""
        try:
            env = self.envelope(exchange)
            key = self.session_key(exchange.headers) or env.id.encode()
            self.publisher.publish(encode(env), key, kafka_headers(env), env.ts)
        except Exception:  # a plain try: this runs on every captured request
            self.failsafe.caught()

    def flush(self, timeout: float | None = None) -> int:
        with self.failsafe:
            return self.publisher.flush(timeout)
        return 0


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
