"""Edge decisions of the capture core: rules, sampling, bodies, redaction, keys."""

from __future__ import annotations

import base64

import orjson
import pytest

from shadowtap.envelope import REDACTED
from shadowtap.headers import cookie_value
from shadowtap.producers.core import jwt_claim
from shadowtap.producers.exchange import BodyCopy
from shadowtap.sampling import should_sample

from .conftest import Recorder


def _jwt(payload: dict[str, object]) -> str:
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    return f"{part(b'{}')}.{part(orjson.dumps(payload))}.sig"


@pytest.mark.parametrize(
    ("capture", "method", "path", "wanted"),
    [
        ({}, "GET", "/anything", True),
        ({"enabled": False}, "GET", "/", False),
        ({"include_paths": ["/api/*"]}, "GET", "/api/x", True),
        ({"include_paths": ["/api/*"]}, "GET", "/web", False),
        ({"exclude_paths": ["/admin*", "^/v[0-9]+/internal"]}, "GET", "/admin/users", False),
        ({"exclude_paths": ["/admin*", "^/v[0-9]+/internal"]}, "GET", "/v2/internal/x", False),
        ({"exclude_paths": ["/admin*"]}, "GET", "/api", True),
        ({"include_methods": ["post"]}, "GET", "/", False),
        ({"include_methods": ["post"]}, "POST", "/", True),
        ({"exclude_methods": ["OPTIONS"]}, "OPTIONS", "/", False),
    ],
)
def test_rules_decide_before_anything_is_copied(
    make_recorder: type[Recorder], capture: dict[str, object], method: str, path: str, wanted: bool
) -> None:
    assert make_recorder(capture).capturer.wants(method, path) is wanted


def test_sampling_is_deterministic_and_agrees_with_the_processor(
    make_recorder: type[Recorder],
) -> None:
    cap = make_recorder({"sample_percent": 30}).capturer
    admitted = [cap.admit("GET", "/") for _ in range(2000)]
    kept = [i for i in admitted if i is not None]
    assert all(should_sample(i, 30) for i in kept)  # the processor keeps the same requests
    assert 0.25 < len(kept) / len(admitted) < 0.35


def test_body_types_are_a_prefix_match(make_recorder: type[Recorder]) -> None:
    cap = make_recorder({"content_types": ["application/json", "text/"]}).capturer
    assert cap.wants_body("application/json; charset=utf-8")
    assert cap.wants_body("text/plain")
    assert not cap.wants_body("image/png")
    assert not cap.wants_body(None)
    assert make_recorder().capturer.wants_body(None)


def test_sensitive_headers_never_leave_the_process(make_recorder: type[Recorder]) -> None:
    cap = make_recorder({"redact_headers": ["X-Internal-Token"]}).capturer
    headers = [
        ("Authorization", "Bearer abc"),
        ("cookie", "sid=1"),
        ("X-Api-Key", "k"),
        ("Proxy-Authorization", "Basic x"),
        ("x-internal-token", "t"),
        ("Accept", "*/*"),
    ]
    redacted = cap.redact(headers)
    assert [v for _, v in redacted] == [REDACTED] * 5 + ["*/*"]
    assert [k for k, _ in redacted] == [k for k, _ in headers]


def test_session_key_is_a_keyed_hash_of_header_or_cookie(make_recorder: type[Recorder]) -> None:
    by_cookie = make_recorder({"session_cookie": "sid", "hash_key": "k1"}).capturer
    key = by_cookie.session_key([("Cookie", "a=1; sid=abc; b=2")])
    assert key is not None and b"abc" not in key and len(key) == 32
    assert key == by_cookie.session_key([("cookie", "sid=abc")])
    other_key = make_recorder({"session_cookie": "sid", "hash_key": "k2"}).capturer
    assert other_key.session_key([("cookie", "sid=abc")]) != key
    by_header = make_recorder({"session_header": "X-Session"}).capturer
    assert by_header.session_key([("x-session", "s1")]) is not None
    assert by_header.session_key([("other", "s1")]) is None


def test_principal_from_header_or_jwt_sub_is_only_a_hash(make_recorder: type[Recorder]) -> None:
    cap = make_recorder({"principal_jwt_claim": "sub", "hash_key": "k"}).capturer
    token = _jwt({"sub": "user-42", "role": "admin"})
    principal = cap.principal([("Authorization", f"Bearer {token}")])
    assert principal == cap.keyed_hash("user-42")
    assert cap.principal([("Authorization", "Basic abc")]) is None
    by_header = make_recorder({"principal_header": "X-User"}).capturer
    assert by_header.principal([("X-User", "u1")]) == by_header.keyed_hash("u1")


@pytest.mark.parametrize(
    "header", [None, "Bearer not-a-jwt", "Bearer a.!!!.c", "Bearer a.bnVsbA.c", "Token a.b.c"]
)
def test_malformed_tokens_give_no_principal(header: str | None) -> None:
    assert jwt_claim(header, "sub") is None


def test_cookie_value_parses_only_the_named_cookie() -> None:
    headers = [("Cookie", "x=1; sid=abc=def"), ("Cookie", "sid=second")]
    assert cookie_value(headers, "sid") == "abc=def"
    assert cookie_value(headers, "nope") is None


def test_body_copy_is_bounded_by_declared_length_and_by_what_streams() -> None:
    declared = BodyCopy(10, declared=11)
    declared.add(b"x" * 5)
    assert declared.truncated and declared.value() == b"" and declared.size == 5
    streamed = BodyCopy(10)
    for _ in range(4):
        streamed.add(b"abc")
    assert streamed.truncated and streamed.value() == b"" and streamed.size == 12
    assert streamed.chunks == []
    fits = BodyCopy(10)
    fits.add(b"0123456789")
    assert not fits.truncated and fits.value() == b"0123456789"


def test_failsafe_swallows_our_errors_but_not_an_interrupt(recorder: Recorder) -> None:
    cap = recorder.capturer
    with cap.failsafe:
        raise RuntimeError("capture bug")
    assert cap.metrics.dropped["internal-error"] == 1
    with pytest.raises(KeyboardInterrupt), cap.failsafe:
        raise KeyboardInterrupt
    assert cap.metrics.dropped["internal-error"] == 1
