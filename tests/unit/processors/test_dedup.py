"""Fingerprints and the windowed memory of what was seen."""

from __future__ import annotations

import pytest

from shadowtap.envelope import Envelope
from shadowtap.processors.dedup import MemorySeen, check_fields, fingerprint

FIELDS = ("method", "path", "query", "body")


def _env(**kw: object) -> Envelope:
    base: dict[str, object] = {"method": "POST", "path": "/pay", "query": "a=1", "body": b"{}"}
    base.update(kw)
    return Envelope(**base)  # type: ignore[arg-type]


def test_fingerprint_covers_configured_fields_only() -> None:
    a, b = _env(), _env()
    assert a.id != b.id and fingerprint(a, FIELDS) == fingerprint(b, FIELDS)
    assert fingerprint(_env(body=b"{1}"), FIELDS) != fingerprint(a, FIELDS)
    assert fingerprint(_env(query="a=2"), FIELDS) != fingerprint(a, FIELDS)
    assert fingerprint(_env(query="a=2"), ("method", "path")) == fingerprint(a, ("method", "path"))
    with_h = _env(headers=[("X-User", "1")])
    assert fingerprint(with_h, ("path", "header:x-user")) != fingerprint(
        a, ("path", "header:x-user")
    )


def test_idempotency_key_wins() -> None:
    a = _env(headers=[("Idempotency-Key", "k1")], body=b"1")
    b = _env(headers=[("idempotency-key", "k1")], body=b"2")
    assert fingerprint(a, FIELDS) == fingerprint(b, FIELDS) == "idem:k1"


def test_unknown_field_fails_at_start() -> None:
    with pytest.raises(ValueError, match="unknown dedup field"):
        check_fields(("method", "bodyy"))


def test_window_and_redelivery() -> None:
    seen = MemorySeen(window_s=10)
    assert not seen.check_and_add("fp", "r1", 1_000)
    assert seen.check_and_add("fp", "r2", 5_000)  # a duplicate inside the window
    assert not seen.check_and_add("fp", "r1", 6_000)  # r1 redelivered: not its own duplicate
    assert not seen.check_and_add("fp", "r3", 12_000)  # the window has passed


def test_memory_is_bounded() -> None:
    seen = MemorySeen(window_s=1000, max_keys=100)
    for i in range(1000):
        seen.check_and_add(f"fp{i}", f"r{i}", i)
    assert len(seen) == 100
