"""Envelope v1: lossless round-trip and clear errors for everything else."""

from __future__ import annotations

import base64
import re
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shadowtap.envelope import (
    VERSION,
    Envelope,
    Response,
    decode,
    encode,
    from_dict,
    kafka_headers,
    kafka_timestamp,
    new_id,
    to_dict,
)
from shadowtap.errors import EnvelopeError

# JSON strings cannot hold lone surrogates; everything else is fair game.
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
header_lists = st.lists(st.tuples(text, text), max_size=12)
json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text
meta = st.dictionaries(
    st.text(max_size=10),
    st.recursive(json_scalars, lambda c: st.lists(c, max_size=3), max_leaves=5),
)

responses = st.builds(
    Response,
    status=st.integers(100, 599),
    headers=header_lists,
    body=st.binary(max_size=200),
    duration_ms=st.floats(0, 1e6, allow_nan=False),
    body_size=st.integers(0, 2**40),
    truncated=st.booleans(),
)

envelopes = st.builds(
    Envelope,
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "PROPFIND"]) | text,
    path=text,
    id=st.just(new_id()) | text,
    ts=st.integers(0, 2**53),
    source=text,
    scheme=st.sampled_from(["http", "https"]),
    host=text,
    query=text,
    headers=header_lists,
    body=st.binary(max_size=500),
    body_size=st.integers(0, 2**40),
    truncated=st.booleans(),
    client=text,
    response=st.none() | responses,
    meta=meta,
)


@given(envelopes)
@settings(max_examples=300)
def test_round_trip_is_lossless(env: Envelope) -> None:
    assert decode(encode(env)) == env


def test_round_trip_keeps_duplicate_headers_order_and_non_ascii() -> None:
    headers = [
        ("X-A", "1"),
        ("x-a", "2"),
        ("Accept", "*/*"),
        ("X-Name", "Zoë ünïcödé 名前"),
        ("X-A", "3"),
    ]
    env = Envelope(method="POST", path="/a b/ü", headers=headers, body=bytes(range(256)))
    back = decode(encode(env))
    assert back.headers == headers
    assert back.body == bytes(range(256))


def test_empty_body_is_absent_on_the_wire() -> None:
    raw = orjson.loads(encode(Envelope(method="GET", path="/")))
    assert "body" not in raw
    assert raw["v"] == VERSION


def test_binary_body_is_base64_on_the_wire() -> None:
    raw = orjson.loads(encode(Envelope(method="PUT", path="/f", body=b"\x00\xff\x10")))
    assert base64.b64decode(raw["body"]) == b"\x00\xff\x10"


def test_ids_are_uuid7_and_sort_by_time() -> None:
    ids = [new_id() for _ in range(200)]
    assert all(
        re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", i)
        for i in ids
    )
    assert len(set(ids)) == 200
    prefixes = [i[:13] for i in ids]  # the 48-bit millisecond timestamp
    assert prefixes == sorted(prefixes)


def _valid() -> dict[str, Any]:
    return to_dict(Envelope(method="GET", path="/x", response=Response(200)))


@pytest.mark.parametrize(
    ("data", "reason", "message"),
    [
        (b"\x00garbage", "not-json", "not JSON"),
        (b"[1, 2]", "bad-type", "must be a JSON object, got array"),
        (b'"text"', "bad-type", "got string"),
        (orjson.dumps({k: v for k, v in _valid().items() if k != "v"}), "missing-field", "'v'"),
        (orjson.dumps({**_valid(), "v": 2}), "unsupported-version", "version 2 is not supported"),
        (orjson.dumps({**_valid(), "v": "1"}), "bad-type", "'v' must be an integer"),
        (
            orjson.dumps({k: v for k, v in _valid().items() if k != "path"}),
            "missing-field",
            "'path'",
        ),
        (orjson.dumps({**_valid(), "ts": "yesterday"}), "bad-type", "'ts' must be int, got string"),
        (orjson.dumps({**_valid(), "ts": 2**63}), "bad-value", "'ts' must be epoch milliseconds"),
        (orjson.dumps({**_valid(), "ts": -1}), "bad-value", "'ts' must be epoch milliseconds"),
        (orjson.dumps({**_valid(), "truncated": 0}), "bad-type", "'truncated' must be bool"),
        (
            orjson.dumps({**_valid(), "body_size": True}),
            "bad-type",
            "'body_size' must be int, got boolean",
        ),
        (orjson.dumps({**_valid(), "headers": [["a"]]}), "bad-type", "'headers[0]'"),
        (orjson.dumps({**_valid(), "headers": {"a": "b"}}), "bad-type", "'headers' must be list"),
        (
            orjson.dumps({**_valid(), "body": "@@not base64@@"}),
            "bad-base64",
            "'body' is not base64",
        ),
        (orjson.dumps({**_valid(), "meta": []}), "bad-type", "'meta' must be an object"),
        (
            orjson.dumps({**_valid(), "response": {"headers": []}}),
            "missing-field",
            "'response.status'",
        ),
        (orjson.dumps({**_valid(), "response": 5}), "bad-type", "'response' must be an object"),
    ],
)
def test_bad_input_raises_one_error_that_says_what_is_wrong(
    data: bytes, reason: str, message: str
) -> None:
    with pytest.raises(EnvelopeError) as info:
        decode(data)
    assert info.value.reason == reason
    assert message in str(info.value)


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    env = from_dict({**_valid(), "added_in_v1_5": {"x": 1}})
    assert env.path == "/x"


def test_kafka_headers_carry_routing_fields() -> None:
    env = Envelope(method="POST", path="/api/ü", headers=[("Content-Type", "application/json")])
    assert dict(kafka_headers(env)) == {
        "method": b"POST",
        "path": "/api/ü".encode(),
        "content-type": b"application/json",
    }


def test_header_lookup_is_case_insensitive_and_target_keeps_raw_query() -> None:
    env = Envelope(
        method="GET", path="/s", query="q=%ZZ&a=1", headers=[("X-Id", "1"), ("x-id", "2")]
    )
    assert env.header("x-ID") == "1"
    assert env.header("missing") is None
    assert env.target == "/s?q=%ZZ&a=1"


def test_a_records_kafka_timestamp_is_its_capture_time_unless_retention_or_a_clock_says_no() -> (
    None
):
    # Stamped with capture time, offsets_for_times finds a drill's window; a time older than
    # the topic's retention would be deleted at once, and one far ahead would keep its
    # segment past retention and answer every later lookup: those are written as "now" (0).
    now, week = 1_800_000_000_000, 7 * 24 * 3_600_000
    assert kafka_timestamp(now - 1000, week, now) == now - 1000
    assert kafka_timestamp(now + 60_000, week, now) == now + 60_000  # clock skew
    assert kafka_timestamp(now - week - 1, week, now) == 0
    assert kafka_timestamp(now * 1000, week, now) == 0  # microseconds, not milliseconds
    assert kafka_timestamp(0, week, now) == 0
