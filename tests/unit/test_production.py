"""The production check every replay, drill and doctor run shares."""

from __future__ import annotations

import threading

import pytest

from shadowtap.envelope import Envelope
from shadowtap.production import (
    Endpoint,
    endpoint_of,
    is_loopback,
    production_endpoints,
    production_match,
)


def _env(host: str, scheme: str = "http", mirrored_from: str | None = None) -> Envelope:
    headers = [("X-Mirrored-From", mirrored_from)] if mirrored_from else []
    return Envelope(method="GET", path="/", host=host, scheme=scheme, headers=headers)


@pytest.mark.parametrize(
    ("authority", "scheme", "expected"),
    [
        ("shop.example", "https", Endpoint("shop.example", 443)),
        ("Shop.Example.:8443", "https", Endpoint("shop.example", 8443)),
        ("127.0.0.1:8001", "http", Endpoint("127.0.0.1", 8001)),
        ("[::1]:9000", "http", Endpoint("::1", 9000)),
        ("https://shop.example/api", "http", Endpoint("shop.example", 443)),
        ("", "http", None),
        ("host:notaport", "http", None),
    ],
)
def test_an_authority_becomes_a_host_and_port(
    authority: str, scheme: str, expected: Endpoint | None
) -> None:
    assert endpoint_of(authority, scheme) == expected


def test_records_name_production_by_host_and_by_the_origin_of_mirrored_requests() -> None:
    records = [
        _env("shop.example", "https"),
        _env("127.0.0.1:8001"),
        _env("stage.internal:8080", mirrored_from="shop.example:8443"),
    ]
    assert production_endpoints(records) == {
        Endpoint("shop.example", 443),
        Endpoint("127.0.0.1", 8001),
        Endpoint("stage.internal", 8080),
        Endpoint("shop.example", 8443),
    }


def test_on_one_machine_production_and_staging_differ_by_port_only() -> None:
    seen = {Endpoint("127.0.0.1", 8001)}
    assert production_match("http://127.0.0.1:8001", seen) is not None
    assert production_match("http://127.0.0.1:8002", seen) is None


@pytest.mark.parametrize(
    ("production", "target", "is_production"),
    [("127.0.0.1", "localhost", True), ("localhost", "127.0.0.1", True),
     ("[::1]", "localhost", True), ("localhost", "[0:0::1]", True),
     ("api.localhost", "127.0.0.1", True), ("127.0.0.2", "localhost", False),
     ("127.0.0.1", "127.0.0.2", False),
     # 0.0.0.0 and :: as a destination reach this machine: production's port there is it
     ("127.0.0.1", "0.0.0.0", True), ("localhost", "[::]", True)],
)  # fmt: skip
def test_loopback_names_of_one_address_are_one_production_host_without_dns(
    production: str, target: str, is_production: bool
) -> None:
    where = endpoint_of(f"{production}:8001")
    assert where is not None
    reason = production_match(f"http://{target}:8001", {where}, resolve=_no_dns)
    assert (reason is not None) is is_production, reason
    assert production_match(f"http://{target}:8002", {where}, resolve=_no_dns) is None


def test_a_target_that_resolves_to_a_production_address_on_the_same_port_is_production() -> None:
    dns = {"shop.example": {"203.0.113.7"}, "alias.example": {"203.0.113.7", "203.0.113.8"}}
    seen = {Endpoint("shop.example", 443)}
    reason = production_match("https://alias.example", seen, resolve=dns.__getitem__)
    assert reason is not None and "203.0.113.7" in reason and "shop.example:443" in reason
    # same address, other port: a different service
    assert production_match("http://alias.example:8443", seen, resolve=dns.__getitem__) is None


@pytest.mark.timeout(10)
def test_names_that_do_not_resolve_or_hang_do_not_block_the_check() -> None:
    released = threading.Event()

    def resolver(host: str) -> set[str]:
        if host == "hangs.example":
            released.wait()  # until the check has answered: it must not wait for this
        raise OSError("no such host")

    seen = {Endpoint("hangs.example", 443), Endpoint("gone.example", 443)}
    try:
        assert production_match("https://stage.example", seen, resolver, 0.2) is None
    finally:
        released.set()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("localhost", True), ("api.localhost", True), ("127.0.0.2", True), ("::1", True),
     ("10.0.0.1", False), ("stage.internal", False)],
)  # fmt: skip
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def _no_dns(host: str) -> set[str]:
    raise AssertionError(f"resolved {host}")
