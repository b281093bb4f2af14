"""The wire format: one captured HTTP exchange, envelope v1.

A Kafka record's value is one envelope encoded with orjson::

    {"v": 1, "id": "0193…", "ts": 1732400000000, "source": "checkout",
     "method": "POST", "scheme": "https", "host": "shop.example", "path": "/api/cart",
     "query": "a=1&a=2", "headers": [["content-type", "application/json"], …],
     "body": "<base64>", "body_size": 1024, "truncated": false, "client": "10.0.0.7",
     "response": {"status": 200, "headers": [...], "body": "<base64>", "duration_ms": 3.2},
     "meta": {"sampled": true, …}}

Header names and values are ``str``; raw bytes from ASGI are decoded as latin-1, which is
lossless (every byte maps to one code point) and what WSGI does too. ``body`` is absent when
empty.

How the wire format changes (envelopes here, result records in shadowtap.results,
DLQ headers in shadowtap.dlq), so that stages can be upgraded one at a time, in any order:

- ``v`` is the major version. Within it, a change only adds an optional field: readers
  ignore fields they do not know, and a field a reader does not find takes its default.
  A new field is written only when set (as ``body`` is), so a record that does not use it
  keeps the same bytes. Every change in the issues that follow is of this kind: results gain
  ``incomplete`` (a body not read or truncated), the production response, a signature…
- Never rename, remove or retype a field, or change what a value means, within a version.
- A reader accepts records one major version older (vN reads vN-1) and refuses a newer one
  with EnvelopeError ``unsupported-version``: the record goes to the DLQ with that reason,
  nothing is lost, and ``shadowtap dlq redrive`` sends it back once readers are upgraded.
- The processor writes only the envelope fields it knows: it cannot scrub what it does not
  know, so it never passes an unknown field on to the mirror. A new field reaches the
  replayers once the processor is upgraded: upgrade readers before the writers that use it.
- tests/fixtures/wire holds records as written today; they are never edited. A change adds
  fixtures and keeps tests/unit/test_wire.py passing on the old ones.
"""

from __future__ import annotations

import base64
import binascii
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from shadowtap import clock
from shadowtap.errors import EnvelopeError
from shadowtap.headers import Headers, header_value

VERSION = 1
# What capture writes instead of a sensitive header's value; later stages leave it alone.
REDACTED = "[redacted]"


# Ids need uniqueness, not secrecy: a seeded PRNG is ten times cheaper than os.urandom.
# Reseeded in forked children (gunicorn, uvicorn --workers) so workers never share ids.
_rand = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _rand.seed(os.urandom(32)))


def new_id() -> str:
    """A UUIDv7 string: time-ordered, so ids sort by arrival (RFC 9562)."""
    rand = _rand.getrandbits(74)
    value = (
        (time.time_ns() // 1_000_000) << 80
        | 0x7 << 76
        | (rand >> 62) << 64
        | 0b10 << 62
        | (rand & 0x3FFF_FFFF_FFFF_FFFF)
    )
    h = "%032x" % value  # noqa: UP031 - measurably faster than format() here
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(slots=True)
class Response:
    """The production (or shadow) response attached to a request."""

    status: int
    headers: Headers = field(default_factory=list)
    body: bytes = b""
    duration_ms: float = 0.0
    body_size: int = 0
    truncated: bool = False


@dataclass(slots=True)
class Envelope:
    """One HTTP request as captured, with what each stage did to it in ``meta``."""

    method: str
    path: str
    id: str = field(default_factory=new_id)
    ts: int = field(default_factory=lambda: time.time_ns() // 1_000_000)
    source: str = ""
    scheme: str = "http"
    host: str = ""
    query: str = ""
    headers: Headers = field(default_factory=list)
    body: bytes = b""
    body_size: int = 0
    truncated: bool = False
    client: str = ""
    response: Response | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        return header_value(self.headers, name)

    @property
    def target(self) -> str:
        """Path with the raw query string, as it appeared on the request line."""
        return f"{self.path}?{self.query}" if self.query else self.path


def to_dict(env: Envelope) -> dict[str, Any]:
    """The JSON-ready mapping of an envelope (bodies base64, empty body omitted)."""
    out: dict[str, Any] = {
        "v": VERSION,
        "id": env.id,
        "ts": env.ts,
        "source": env.source,
        "method": env.method,
        "scheme": env.scheme,
        "host": env.host,
        "path": env.path,
        "query": env.query,
        "headers": env.headers,
        "body_size": env.body_size,
        "truncated": env.truncated,
        "client": env.client,
    }
    if env.body:
        out["body"] = base64.b64encode(env.body).decode("ascii")
    if env.response is not None:
        out["response"] = response_to_dict(env.response)
    if env.meta:
        out["meta"] = env.meta
    return out


def response_to_dict(r: Response) -> dict[str, Any]:
    """The JSON-ready mapping of a response (result records carry production's this way too)."""
    resp: dict[str, Any] = {
        "status": r.status,
        "headers": r.headers,
        "duration_ms": r.duration_ms,
        "body_size": r.body_size,
        "truncated": r.truncated,
    }
    if r.body:
        resp["body"] = base64.b64encode(r.body).decode("ascii")
    return resp


def encode(env: Envelope) -> bytes:
    """Serialize an envelope to the bytes of a Kafka record value."""
    return orjson.dumps(to_dict(env))


def decode(data: bytes | bytearray | memoryview | str) -> Envelope:
    """Parse and validate a record value; raise EnvelopeError saying what is wrong."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError("not-json", f"record is not JSON: {exc}") from exc
    return from_dict(raw)


def from_dict(raw: Any) -> Envelope:
    """Validate a decoded JSON value and build an Envelope from it."""
    if not isinstance(raw, dict):
        raise EnvelopeError("bad-type", f"envelope must be a JSON object, got {_kind(raw)}")
    version = raw.get("v")
    if version is None:
        raise EnvelopeError("missing-field", "envelope has no 'v' (schema version) field")
    if type(version) is not int:
        raise EnvelopeError("bad-type", f"field 'v' must be an integer, got {_kind(version)}")
    if version != VERSION:
        raise EnvelopeError(
            "unsupported-version",
            f"envelope version {version} is not supported (this shadowtap reads v{VERSION})",
        )
    response = raw.get("response")
    meta = raw.get("meta", {})
    if not isinstance(meta, dict):
        raise EnvelopeError("bad-type", f"field 'meta' must be an object, got {_kind(meta)}")
    return Envelope(
        id=_req(raw, "id", str),
        ts=_timestamp(raw),
        source=_req(raw, "source", str),
        method=_req(raw, "method", str),
        scheme=_req(raw, "scheme", str),
        host=_req(raw, "host", str),
        path=_req(raw, "path", str),
        query=_req(raw, "query", str),
        headers=_headers(raw, "headers"),
        body=_body(raw, "body"),
        body_size=_req(raw, "body_size", int),
        truncated=_req(raw, "truncated", bool),
        client=_req(raw, "client", str),
        response=None if response is None else response_from_dict(response),
        meta=meta,
    )


def _timestamp(raw: dict[str, Any]) -> int:
    """``ts``: epoch milliseconds a Kafka timestamp can hold (librdkafka overflows past 2**63)."""
    ts: int = _req(raw, "ts", int)
    if not 0 <= ts < 2**63:
        raise EnvelopeError("bad-value", f"field 'ts' must be epoch milliseconds, got {ts}")
    return ts


# A capture time later than this past the writer's clock is a wrong clock, not the future.
TIMESTAMP_SKEW_MS = 5 * 60 * 1000


def kafka_timestamp(ts: int, max_age_ms: float, now_ms: int | None = None) -> int:
    """The Kafka timestamp to write a record captured at ``ts`` with: ``ts`` itself (so
    ``offsets_for_times`` finds capture time, shadowtap.drill), or 0 (the broker's "now")
    when ``ts`` is older than ``max_age_ms`` (the topic's retention: the broker would delete
    it at once) or beyond a few minutes in the future (a segment whose newest timestamp is
    ahead would outlive retention and answer every later time lookup with this record)."""
    now = clock.now_ms() if now_ms is None else now_ms
    return ts if now - max_age_ms < ts <= now + TIMESTAMP_SKEW_MS else 0


def response_from_dict(raw: Any) -> Response:
    """Validate a response mapping (``to_dict``'s ``response``); EnvelopeError when malformed."""
    if not isinstance(raw, dict):
        raise EnvelopeError("bad-type", f"field 'response' must be an object, got {_kind(raw)}")
    duration = raw.get("duration_ms", 0.0)
    if type(duration) not in (int, float):
        raise EnvelopeError(
            "bad-type", f"field 'response.duration_ms' must be a number, got {_kind(duration)}"
        )
    return Response(
        status=_req(raw, "status", int, "response."),
        headers=_headers(raw, "headers", "response."),
        body=_body(raw, "body", "response."),
        duration_ms=float(duration),
        body_size=_opt(raw, "body_size", int, 0, "response."),
        truncated=_opt(raw, "truncated", bool, False, "response."),
    )


def _req(raw: dict[str, Any], name: str, kind: type, prefix: str = "") -> Any:
    if name not in raw:
        raise EnvelopeError("missing-field", f"envelope has no '{prefix}{name}' field")
    return _check(raw[name], name, kind, prefix)


def _opt(raw: dict[str, Any], name: str, kind: type, default: Any, prefix: str = "") -> Any:
    return _check(raw[name], name, kind, prefix) if name in raw else default


def _check(value: Any, name: str, kind: type, prefix: str) -> Any:
    # bool is a subclass of int in Python but not in JSON: compare types exactly.
    if type(value) is not kind:
        raise EnvelopeError(
            "bad-type",
            f"field '{prefix}{name}' must be {kind.__name__}, got {_kind(value)}",
        )
    return value


def _headers(raw: dict[str, Any], name: str, prefix: str = "") -> Headers:
    value = _req(raw, name, list, prefix)
    out: Headers = []
    for i, pair in enumerate(value):
        if not (
            isinstance(pair, list)
            and len(pair) == 2
            and type(pair[0]) is str
            and type(pair[1]) is str
        ):
            raise EnvelopeError(
                "bad-type",
                f"field '{prefix}{name}[{i}]' must be a [name, value] pair of strings, "
                f"got {orjson.dumps(pair).decode()[:80]}",
            )
        out.append((pair[0], pair[1]))
    return out


def _body(raw: dict[str, Any], name: str, prefix: str = "") -> bytes:
    value = _opt(raw, name, str, "", prefix)
    if not value:
        return b""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EnvelopeError("bad-base64", f"field '{prefix}{name}' is not base64: {exc}") from exc


def _kind(value: Any) -> str:
    return {
        dict: "object",
        list: "array",
        str: "string",
        int: "integer",
        float: "number",
        bool: "boolean",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def kafka_headers(env: Envelope) -> list[tuple[str, bytes]]:
    """Kafka record headers for cheap routing without decoding the value."""
    out = [("method", env.method.encode()), ("path", env.path.encode("utf-8", "replace"))]
    content_type = env.header("content-type")
    if content_type:
        out.append(("content-type", content_type.encode("latin-1", "replace")))
    return out
