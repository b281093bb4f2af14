"""Signed marking: what verifies, what does not and why; the header parser under fuzzing."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
import yarl
from hypothesis import given
from hypothesis import strategies as st

from shadowtap.config import Settings
from shadowtap.errors import ConfigError
from shadowtap.gateway import environ_target, scope_target
from shadowtap.marking import (
    DEVELOPMENT_KEY,
    MalformedMarking,
    Marker,
    Signature,
    Verdict,
    canonical_target,
    is_development_key,
    parse_signature,
    request_target,
    resolve_key,
)

NOW = 1_750_000_000_000
RID = "0190a0b1-7c2d-7e3f-8a4b-5c6d7e8f9012"
marker = Marker("k" * 32)


def _verify(
    signature: str | None,
    method: str = "POST",
    target: str | bytes = "/stg/api/pay?x=1",
    *,
    record_id: str | None = RID,
    now: int = NOW,
    m: Marker = marker,
) -> Verdict:
    return m.verify(method, target, signature, record_id, now_ms=now).verdict


def test_a_signature_verifies_for_the_request_as_sent() -> None:
    value = marker.sign("POST", "/stg/api/pay?x=1", RID, now_ms=NOW)
    assert value.startswith(f"v1; id={RID}; t={NOW}; sig=")
    check = marker.verify("POST", "/stg/api/pay?x=1", value, RID, now_ms=NOW + 1000)
    assert check.valid
    assert (check.record_id, check.sent_ms) == (RID, NOW)


@pytest.mark.parametrize(
    ("change", "verdict"),
    [
        ({"method": "PUT"}, Verdict.BAD_SIGNATURE),
        ({"target": "/api/pay?x=1"}, Verdict.BAD_SIGNATURE),  # path prefix is signed
        ({"target": "/stg/api/pay?x=2"}, Verdict.BAD_SIGNATURE),
        ({"target": "/stg/api/pay"}, Verdict.BAD_SIGNATURE),
        ({"record_id": "another-id"}, Verdict.WRONG_ID),
        ({"record_id": None}, Verdict.WRONG_ID),
        ({"m": Marker("another key")}, Verdict.BAD_SIGNATURE),
        ({"now": NOW + 300_001}, Verdict.EXPIRED),
        ({"now": NOW - 300_001}, Verdict.EXPIRED),  # sent "in the future": a skewed clock
        ({"now": NOW + 300_000}, Verdict.VALID),
        ({"now": NOW - 300_000}, Verdict.VALID),
        ({"method": "post"}, Verdict.VALID),
    ],
)
def test_every_part_of_the_request_is_signed(change: dict[str, object], verdict: Verdict) -> None:
    value = marker.sign("POST", "/stg/api/pay?x=1", RID, now_ms=NOW)
    assert _verify(value, **change) is verdict  # type: ignore[arg-type]


def test_a_forged_or_altered_signature_is_refused() -> None:
    value = marker.sign("POST", "/stg/api/pay?x=1", RID, now_ms=NOW)
    flipped = value[:-1] + ("0" if value[-1] != "0" else "1")
    later = value.replace(f"t={NOW}", f"t={NOW + 1}")
    assert _verify(flipped) is Verdict.BAD_SIGNATURE
    assert _verify(later) is Verdict.BAD_SIGNATURE  # the send time cannot be moved forward
    assert _verify(None) is Verdict.MISSING
    assert _verify("v1; id=x") is Verdict.MALFORMED


def test_each_retry_signs_again_with_its_own_send_time() -> None:
    first = marker.sign("POST", "/pay", RID, now_ms=NOW)
    retry = marker.sign("POST", "/pay", RID, now_ms=NOW + 3_600_000)
    assert first != retry
    assert _verify(first, target="/pay", now=NOW + 3_600_000) is Verdict.EXPIRED
    assert _verify(retry, target="/pay", now=NOW + 3_600_000) is Verdict.VALID


def test_the_expiry_is_configurable_and_the_detail_says_why() -> None:
    short = Marker("k" * 32, max_skew_s=1)
    value = short.sign("GET", "/", RID, now_ms=NOW)
    check = short.verify("GET", "/", value, RID, now_ms=NOW + 5000)
    assert check.verdict is Verdict.EXPIRED
    assert "sent 5 s ago; at most 1 s" in check.detail


def test_previous_keys_verify_during_a_rotation_but_never_sign() -> None:
    old, new = Marker("old key"), Marker("new key", previous_keys=["old key"])
    assert _verify(old.sign("GET", "/", RID, now_ms=NOW), "GET", "/", m=new) is Verdict.VALID
    assert _verify(new.sign("GET", "/", RID, now_ms=NOW), "GET", "/", m=old) is (
        Verdict.BAD_SIGNATURE
    )


@pytest.mark.parametrize(
    ("sent", "received"),
    [
        ("/a b/caf\u00e9?q=a b", b"/a%20b/caf%C3%A9?q=a%20b"),  # client quotes
        ("/x/%7euser?a=%7e", "/x/~user?a=~"),  # unreserved escapes decoded
        ("/x/%c3%a9", "/x/%C3%A9"),  # hex case
        ("/x?", "/x"),  # empty query dropped
        ("", "/"),
        ("/stg/a;b,c@d", "/stg/a%3Bb%2Cc%40d"),
    ],
)
def test_equivalent_forms_of_the_target_verify(sent: str, received: str | bytes) -> None:
    value = marker.sign("GET", sent, RID, now_ms=NOW)
    assert _verify(value, "GET", received) is Verdict.VALID


def test_what_httpx_and_yarl_send_verifies_against_what_was_signed() -> None:
    url = "http://stg:8080/pre/caf\u00e9/a b?q=x y&e=%C3%A9&t=~&s=a/b"
    value = marker.sign("GET", request_target(url), RID, now_ms=NOW)
    for sent in (httpx.URL(url).raw_path, str(yarl.URL(url).raw_path_qs).encode()):
        assert _verify(value, "GET", sent) is Verdict.VALID, sent


def test_servers_request_targets() -> None:
    scope = {"path": "/caf\u00e9", "raw_path": b"/caf%C3%A9", "query_string": b"a=1"}
    assert scope_target(scope) == b"/caf%C3%A9?a=1"
    assert canonical_target(scope_target({"path": "/caf\u00e9", "query_string": b""})) == (
        "/caf%C3%A9"
    )
    environ = {"SCRIPT_NAME": "/app", "PATH_INFO": "/caf\u00c3\u00a9", "QUERY_STRING": "a=1"}
    assert canonical_target(environ_target(environ)) == "/app/caf%C3%A9?a=1"
    assert environ_target({"RAW_URI": "/x%20y?b=2", **environ}) == b"/x%20y?b=2"
    assert request_target("https://stg/api/x?y=1") == "/api/x?y=1"
    assert request_target("https://stg") == "/"


def test_keys_come_from_the_environment_the_setting_or_the_development_default() -> None:
    def marking(**values: object) -> object:
        return Settings.load(env={}, overrides={"marking": values}).marking

    assert resolve_key(marking(key_env="MK"), {"MK": "from-env"}) == b"from-env"  # type: ignore[arg-type]
    assert resolve_key(marking(key="from-file"), {}) == b"from-file"  # type: ignore[arg-type]
    assert resolve_key(marking(), {}) == DEVELOPMENT_KEY  # type: ignore[arg-type]
    assert is_development_key(DEVELOPMENT_KEY.decode())
    assert Marker().is_development
    assert not Marker("real").is_development
    with pytest.raises(ConfigError, match=r"marking\.key_env names 'MK', which is not set"):
        resolve_key(marking(key_env="MK"), {})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_skew_s = 0"):
        Marker("k", max_skew_s=0)
    with pytest.raises(ConfigError, match="must not be empty"):
        Marker("k", previous_keys=[""])


def test_marking_settings_load_from_the_environment() -> None:
    settings = Settings.load(
        env={"SHADOWTAP_MARKING_KEY_ENV": "MK", "SHADOWTAP_MARKING_MAX_SKEW_S": "60"}
    )
    assert settings.marking.key_env == "MK"
    assert settings.marking.max_skew_s == 60.0
    assert settings.marking.header == "X-Shadowtap-Signature"
    with pytest.raises(ConfigError, match=r"'guard\.on_block' = 'drop' is invalid"):
        Settings.load(env={"SHADOWTAP_GUARD_ON_BLOCK": "drop"})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "not a version"),
        ("v2; id=a; t=1; sig=" + "0" * 64, "version v2 is not supported"),
        ("v1; id=a; t=1", "sig is missing"),
        ("v1; id=a; t=1; sig=" + "0" * 64 + "; x=1", "unknown parameter"),
        ("v1; id=a; id=b; t=1; sig=" + "0" * 64, "id given twice"),
        ("v1; id=a; t=-1; sig=" + "0" * 64, "t is not a time"),
        ("v1; id=a; t=1; sig=" + "0" * 63, "sig is not 64"),
        ("v1; id=; t=1; sig=" + "0" * 64, "id is empty"),
        ("v1; id=%ff; t=1; sig=" + "0" * 64, "not percent-encoded UTF-8"),
        ("v1; id=" + "a" * 2000, "longer than"),
    ],
)
def test_malformed_headers_say_what_is_wrong(value: str, message: str) -> None:
    with pytest.raises(MalformedMarking, match=message):
        parse_signature(value)
    assert marker.verify("GET", "/", value, "a").verdict is Verdict.MALFORMED


@given(st.text(max_size=300))
def test_the_parser_reads_any_text_or_says_it_is_malformed(value: str) -> None:
    try:
        sig = parse_signature(value)
    except MalformedMarking:
        return
    assert parse_signature(sig.header_value()) == sig


@given(
    st.text(min_size=1, max_size=80),
    st.integers(min_value=0, max_value=10**15 - 1),
    st.text(alphabet="0123456789abcdefABCDEF", min_size=64, max_size=64),
)
def test_what_is_written_reads_back(record_id: str, sent: int, mac: str) -> None:
    sig = Signature(record_id, sent, mac.lower())
    assert parse_signature(sig.header_value()) == sig
    assert parse_signature(sig.header_value().replace("; ", " ;\t")) == sig


@given(
    st.sampled_from(["GET", "POST", "PATCH", "DELETE"]),
    st.text(max_size=60),
    st.text(min_size=1, max_size=40),
)
def test_any_request_signs_and_verifies_in_any_quoting(method: str, path: str, rid: str) -> None:
    target = "/" + path
    value = marker.sign(method, target, rid, now_ms=NOW)
    assert _verify(value, method, target, record_id=rid) is Verdict.VALID
    requoted = quote(target.encode("utf-8", "surrogateescape"), safe="/?=&")
    assert _verify(value, method, requoted, record_id=rid) is Verdict.VALID
    assert canonical_target(canonical_target(target)) == canonical_target(target)
