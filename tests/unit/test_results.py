"""Result records round-trip and reject garbage."""

from __future__ import annotations

import pytest

from shadowtap.errors import EnvelopeError
from shadowtap.results import Result, decode, encode


def test_round_trip() -> None:
    r = Result(
        id="i",
        target="staging",
        group="g",
        ts=5,
        method="GET",
        path="/x",
        status=503,
        headers=[("a", "b")],
        body=b"\x00\xff",
        body_size=10,
        truncated=True,
        duration_ms=1.5,
        attempts=3,
        error="e",
        error_kind="status-503",
        incomplete="truncated",
    )
    assert decode(encode(r)) == r


def test_incomplete_is_optional_on_the_wire() -> None:
    # Result records evolve by optional fields: absent means a whole request body.
    whole = encode(Result(id="i", target="t", status=200))
    assert b"incomplete" not in whole
    assert decode(whole).incomplete == ""
    older = b'{"v": 1, "id": "i", "target": "t", "status": 200}'
    assert decode(older).incomplete == ""
    unread = Result(id="i", target="t", error_kind="blocked", error="incomplete")
    unread.incomplete = "body-unread"
    assert decode(encode(unread)).incomplete == "body-unread"


def test_failure_has_null_status() -> None:
    r = decode(encode(Result(id="i", target="t", error_kind="connect")))
    assert r.status is None and not r.ok


@pytest.mark.parametrize("data", [b"nope", b"[]", b'{"v": 2}', b'{"v": 1, "id": "x"}'])
def test_garbage_is_rejected(data: bytes) -> None:
    with pytest.raises(EnvelopeError) as info:
        decode(data)
    assert info.value.reason == "bad-result"
