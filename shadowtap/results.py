"""Result records on ``shadowtap.results``: what a target answered to one mirrored request.

One record per delivery (including failures), Kafka key = the request's record id, value =
orjson::

    {"v": 1, "id": "0193…", "target": "staging", "group": "staging", "ts": 1732400000123,
     "method": "POST", "path": "/api/cart", "status": 201, "headers": [["content-type", …]],
     "body": "<base64, at most result_body_limit bytes>", "body_size": 5120,
     "truncated": true, "duration_ms": 3.4, "attempts": 1, "error": "", "error_kind": ""}

``status`` is null when no response came (``error_kind``: connect, timeout, disconnected,
protocol, blocked; ``error`` then says which rule blocked it: denied, not-allowed,
incomplete). The diff stage pairs these with the envelope's recorded ``response``.
Fields are added, never changed, as for envelopes (see shadowtap.envelope): unknown fields
are ignored and a new one is written only when set.

Optional fields (absent means the default; readers accept records without them):

- ``incomplete``: ``body-unread`` or ``truncated`` when the mirrored request's body was not
  all in the record (see shadowtap.replayers.rewrite.incomplete): with
  ``replayer.incomplete = "skip"`` it was not sent (``error_kind: blocked``), with ``send``
  the target got it without that body, so its answer is not comparable as it stands.
- ``captured``: the record's capture time (epoch ms, the envelope's ``ts``); the diff pairs
  results on it, not on ``ts`` (when the result was written).
- ``production``: the production response the record was captured with, as the envelope
  holds it (``status``, ``headers``, ``body`` base64, ``body_size``, ``truncated``,
  ``duration_ms``: server-side, measured by capture), its body cut to ``result_body_limit``
  (``truncated`` then true). Absent for records captured without one (``shadowtap
  collect``): those have no two-way baseline. With it a two-way diff (production vs target)
  needs no join.

Both bodies are scrubbed: production's by the processor, the target's by the replayer with
the same scrubber and keys (shadowtap.scrub), so consistent pseudonyms still compare equal.
The body limit (``replayer.result_body_limit``, 64 KiB) matches capture's
``max_response_body``, so a typical JSON response is kept whole on both sides; a body cut on
either side is compared only up to what both kept (shadowtap.diff).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field, fields
from typing import Any

import orjson

from shadowtap.envelope import Response, response_from_dict, response_to_dict
from shadowtap.errors import EnvelopeError
from shadowtap.headers import Headers

VERSION = 1


@dataclass(slots=True)
class Delivery:
    """What came of one delivery, after every attempt (shadowtap.replayers.policy fills it)."""

    status: int | None = None
    headers: Headers = field(default_factory=list)
    body: bytes = b""
    body_size: int = 0
    truncated: bool = False
    duration_ms: float = 0.0
    attempts: int = 0
    error: str = ""
    error_kind: str = ""

    @property
    def failed(self) -> bool:
        return self.status is None


_DELIVERY_FIELDS = tuple(f.name for f in fields(Delivery))


@dataclass(slots=True, kw_only=True)
class Result(Delivery):
    """A target's answer to one mirrored request (or why there was none): the delivery, and
    which request and target it was."""

    id: str
    target: str
    group: str = ""
    ts: int = 0
    method: str = ""
    path: str = ""
    incomplete: str = ""
    captured: int = 0
    production: Response | None = None

    @classmethod
    def of(
        cls,
        delivery: Delivery,
        *,
        id: str,
        target: str,
        group: str,
        ts: int,
        method: str,
        path: str,
        incomplete: str,
        captured: int = 0,
        production: Response | None = None,
    ) -> Result:
        answer = {name: getattr(delivery, name) for name in _DELIVERY_FIELDS}
        return cls(
            id=id,
            target=target,
            group=group,
            ts=ts,
            method=method,
            path=path,
            incomplete=incomplete,
            captured=captured,
            production=production,
            **answer,
        )

    @property
    def ok(self) -> bool:
        return self.status is not None


def encode(result: Result) -> bytes:
    out: dict[str, Any] = {
        "v": VERSION,
        "id": result.id,
        "target": result.target,
        "group": result.group,
        "ts": result.ts,
        "method": result.method,
        "path": result.path,
        "status": result.status,
        "headers": result.headers,
        "body_size": result.body_size,
        "truncated": result.truncated,
        "duration_ms": round(result.duration_ms, 3),
        "attempts": result.attempts,
        "error": result.error,
        "error_kind": result.error_kind,
    }
    if result.body:
        out["body"] = base64.b64encode(result.body).decode("ascii")
    if result.incomplete:
        out["incomplete"] = result.incomplete
    if result.captured:
        out["captured"] = result.captured
    if result.production is not None:
        out["production"] = response_to_dict(result.production)
    return orjson.dumps(out)


def bounded(response: Response, limit: int) -> Response:
    """``response`` with its body cut to ``limit`` bytes (marked truncated when cut)."""
    size = max(response.body_size, len(response.body))
    if len(response.body) <= limit:
        return Response(
            response.status,
            response.headers,
            response.body,
            response.duration_ms,
            size,
            response.truncated,
        )
    return Response(
        response.status, response.headers, response.body[:limit], response.duration_ms, size, True
    )


def decode(data: bytes | str) -> Result:
    """Parse a result record; raise EnvelopeError (reason ``bad-result``) when malformed."""
    try:
        raw = orjson.loads(data)
        if not isinstance(raw, dict) or raw.get("v") != VERSION:
            raise ValueError(f"not a v{VERSION} result object")
        status = raw.get("status")
        if status is not None and type(status) is not int:
            raise ValueError("status must be an integer or null")
        return Result(
            id=str(raw["id"]),
            target=str(raw["target"]),
            group=str(raw.get("group", "")),
            ts=int(raw.get("ts", 0)),
            method=str(raw.get("method", "")),
            path=str(raw.get("path", "")),
            status=status,
            headers=[(str(k), str(v)) for k, v in raw.get("headers", [])],
            body=base64.b64decode(raw.get("body", ""), validate=True),
            body_size=int(raw.get("body_size", 0)),
            truncated=bool(raw.get("truncated", False)),
            duration_ms=float(raw.get("duration_ms", 0.0)),
            attempts=int(raw.get("attempts", 1)),
            error=str(raw.get("error", "")),
            error_kind=str(raw.get("error_kind", "")),
            incomplete=str(raw.get("incomplete", "")),
            captured=int(raw.get("captured", 0)),
            production=None if raw.get("production") is None else _production(raw["production"]),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise EnvelopeError("bad-result", f"not a result record: {exc}") from exc


def _production(raw: Any) -> Response:
    try:
        return response_from_dict(raw)
    except EnvelopeError as exc:
        raise ValueError(f"production: {exc}") from exc
