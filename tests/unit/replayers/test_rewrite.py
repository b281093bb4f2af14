"""Rewrite: URL, marks, hop-by-hop headers, header rules, allow/deny and credentials."""

from __future__ import annotations

import pytest

from shadowtap.config import ReplayerSettings
from shadowtap.envelope import Envelope
from shadowtap.errors import ConfigError
from shadowtap.replayers.rewrite import Rewriter, incomplete, parse_target
from shadowtap.rules import RequestRule


def _env(**kw: object) -> Envelope:
    base: dict[str, object] = {
        "method": "POST",
        "path": "/api/cart",
        "query": "a=1&a=2",
        "host": "shop.example",
        # Captured as 9 bytes, 7 after scrubbing: the rewrite sends the length it sends.
        "headers": [("Content-Type", "application/json"), ("Content-Length", "9")],
        "body": b'{"x":1}',
        "body_size": 9,
        "id": "0193-id",
    }
    base.update(kw)
    return Envelope(**base)  # type: ignore[arg-type]


def _names(headers: list[tuple[str, str]]) -> list[str]:
    return [k.lower() for k, _ in headers]


def _get(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in headers if k.lower() == name.lower()]


def test_url_host_marks_and_content_length() -> None:
    rw = Rewriter(ReplayerSettings(target="https://stg.internal:8443/base/", path_prefix="v2"))
    out = rw.rewrite(_env())
    assert out.url == "https://stg.internal:8443/base/v2/api/cart?a=1&a=2"
    assert out.method == "POST" and out.body == b'{"x":1}'
    assert _get(out.headers, "host") == ["stg.internal:8443"]
    assert _get(out.headers, "content-length") == ["7"]
    assert _get(out.headers, "x-shadowtap-id") == ["0193-id"]
    assert _get(out.headers, "idempotency-key") == ["0193-id"]
    assert _get(out.headers, "x-mirrored-from") == ["shop.example"]


def test_default_port_is_omitted_from_host_and_original_host_can_be_kept() -> None:
    assert Rewriter(ReplayerSettings(target="https://stg")).rewrite(_env()).headers[0] == (
        "Host",
        "stg",
    )
    keep = Rewriter(ReplayerSettings(target="http://stg:80", host_header="original"))
    assert _get(keep.rewrite(_env()).headers, "host") == ["shop.example"]


def test_existing_idempotency_key_is_kept() -> None:
    rw = Rewriter(ReplayerSettings(target="http://stg"))
    out = rw.rewrite(_env(headers=[("Idempotency-Key", "client-key")]))
    assert _get(out.headers, "idempotency-key") == ["client-key"]


def test_hop_by_hop_and_connection_named_headers_are_stripped() -> None:
    rw = Rewriter(ReplayerSettings(target="http://stg"))
    headers = [
        ("Connection", "keep-alive, X-Private"),
        ("X-Private", "1"),
        ("Keep-Alive", "timeout=5"),
        ("Transfer-Encoding", "chunked"),
        ("TE", "trailers"),
        ("Upgrade", "h2c"),
        ("Proxy-Authorization", "Basic x"),
        ("Host", "shop.example"),
        ("Accept", "*/*"),
        ("X-Dup", "1"),
        ("X-Dup", "2"),
    ]
    out = rw.rewrite(_env(headers=headers, body=b"", method="GET"))
    names = _names(out.headers)
    for gone in ("connection", "x-private", "keep-alive", "transfer-encoding", "te", "upgrade"):
        assert gone not in names
    assert "proxy-authorization" not in names
    assert names.count("host") == 1
    assert _get(out.headers, "x-dup") == ["1", "2"]
    assert "content-length" not in names  # GET without a body


def test_header_remove_set_add() -> None:
    rw = Rewriter(
        ReplayerSettings(
            target="http://stg",
            remove_headers=("X-Remove",),
            set_headers={"X-Env": "staging", "Accept": "application/json"},
            add_headers={"X-Dup": "3"},
        )
    )
    out = rw.rewrite(
        _env(headers=[("x-remove", "a"), ("accept", "*/*"), ("X-Dup", "1"), ("X-Env", "prod")])
    )
    assert "x-remove" not in _names(out.headers)
    assert _get(out.headers, "accept") == ["application/json"]
    assert _get(out.headers, "x-env") == ["staging"]
    assert _get(out.headers, "x-dup") == ["1", "3"]


def test_deny_and_allow_rules() -> None:
    rw = Rewriter(
        ReplayerSettings(
            target="http://stg",
            deny=(RequestRule(path="/payments*", methods=("post",)),),
            allow=(RequestRule(path="^/(api|payments)/"),),
        )
    )
    assert rw.blocked(_env(path="/payments/1")) == "denied"
    assert rw.blocked(_env(path="/payments/1", method="GET")) is None
    assert rw.blocked(_env(path="/admin")) == "not-allowed"
    assert rw.blocked(_env(path="/api/x")) is None


def test_static_credential_from_env_replaces_redacted_value() -> None:
    rw = Rewriter(
        ReplayerSettings(target="http://stg", auth_env="STG_TOKEN"),
        environ={"STG_TOKEN": "Bearer staging-secret"},
    )
    out = rw.rewrite(_env(headers=[("Authorization", "[REDACTED]")]))
    assert _get(out.headers, "authorization") == ["Bearer staging-secret"]


def test_missing_credential_env_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="STG_TOKEN"):
        Rewriter(ReplayerSettings(target="http://stg", auth_env="STG_TOKEN"), environ={})


def test_principal_maps_to_test_account() -> None:
    rw = Rewriter(
        ReplayerSettings(
            target="http://stg",
            auth_header="X-Api-Key",
            principal_key="principal",
            principal_accounts={"p-alice": "key-test-1"},
            principal_default="key-test-default",
        )
    )
    assert _get(rw.rewrite(_env(meta={"principal": "p-alice"})).headers, "x-api-key") == [
        "key-test-1"
    ]
    assert _get(rw.rewrite(_env(meta={"principal": "p-bob"})).headers, "x-api-key") == [
        "key-test-default"
    ]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "no replay target"),
        ("htp://staging", "must start with http"),
        ("staging.internal", "must start with http"),
        ("http://", "no host"),
        ("http://stag ing", "not a valid host"),
        ("http://staging:80x", "not a valid URL"),
        ("http://staging?x=1", "must not carry"),
        ("http://user:pw@staging", "must not carry"),
    ],
)
def test_target_url_typos_are_clear_config_errors(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_target(url)


def test_ipv6_target() -> None:
    t = parse_target("http://[::1]:8080")
    assert t.authority == "[::1]:8080" and t.origin == "http://[::1]:8080"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, None),
        ({"method": "GET", "headers": [], "body": b"", "body_size": 0}, None),
        ({"headers": [("Content-Length", "0")], "body": b"", "body_size": 0}, None),
        # marked by capture: the app answered before reading it, or the client went away
        (
            {"body": b"", "body_size": 9, "truncated": True,
             "meta": {"request_body_skipped": "not-read"}},
            "body-unread",
        ),
        (
            {"body": b"", "body_size": 9, "truncated": True,
             "meta": {"request_body_skipped": "client-disconnected"}},
            "body-unread",
        ),
        # over the capture limit, or a content type capture does not copy
        ({"body": b"", "body_size": 100_000, "truncated": True}, "truncated"),
        (
            {"body": b"", "body_size": 9, "truncated": True,
             "meta": {"request_body_skipped": "content-type"}},
            "truncated",
        ),
        # from a capture that did not mark it yet: "body_size: 0, truncated: false"
        ({"body": b"", "body_size": 0}, "body-unread"),
        ({"body": b"{", "body_size": 1}, "body-unread"),
    ],
)  # fmt: skip
def test_incomplete_says_why_a_body_is_not_the_request_body(
    changes: dict[str, object], expected: str | None
) -> None:
    assert incomplete(_env(**changes)) == expected


def test_incomplete_records_are_skipped_by_default_and_sent_without_a_body_when_asked() -> None:
    unread = _env(body=b"", body_size=9, truncated=True, meta={"request_body_skipped": "not-read"})
    assert Rewriter(ReplayerSettings(target="http://stg")).blocked(unread) == "incomplete"
    send = Rewriter(ReplayerSettings(target="http://stg", incomplete="send"))
    assert send.blocked(unread) is None
    out = send.rewrite(unread)
    assert out.body == b"" and _get(out.headers, "content-length") == ["0"]
    # Deny rules still come first.
    deny = Rewriter(ReplayerSettings(target="http://stg", deny=(RequestRule(path="/api/*"),)))
    assert deny.blocked(unread) == "denied"
