"""Header names match in any case, the first value wins, and removal keeps the order."""

from __future__ import annotations

from shadowtap.headers import header_value, without


def test_first_value_in_any_case() -> None:
    headers = [("X-Id", "1"), ("x-id", "2")]
    assert header_value(headers, "X-ID") == "1"
    assert header_value(headers, "other") is None


def test_without_drops_every_named_header_and_keeps_the_order() -> None:
    headers = [("A", "1"), ("Cookie", "s=1"), ("b", "2"), ("COOKIE", "t=2"), ("X-Secret", "k")]
    assert without(headers, {"cookie", "x-secret"}) == [("A", "1"), ("b", "2")]
    assert without(headers, set()) == headers
