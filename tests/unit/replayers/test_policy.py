"""Delivery policy with httpx.MockTransport: retries, backoff, DLQ verdicts, redirects."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import httpx
import pytest

from shadowtap.config import MarkingSettings, ReplayerSettings
from shadowtap.errors import ConfigError, RetryableReplayError
from shadowtap.replayers.policy import HttpxSender, Policy, classify, deliver, make_client
from shadowtap.replayers.rewrite import Outgoing
from shadowtap.results import Delivery

OUT = Outgoing("POST", "http://stg/api", [("Content-Length", "2")], b"{}", "rid-1")


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def _client(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_success_reads_body_up_to_the_limit() -> None:
    async with _client(lambda r: httpx.Response(201, content=b"x" * 100)) as client:
        d = await deliver(client, OUT, Policy(body_limit=10))
    assert (d.status, d.body, d.body_size, d.truncated, d.attempts) == (
        201,
        b"x" * 10,
        100,
        True,
        1,
    )
    assert not d.failed and d.error_kind == ""


async def test_statuses_are_not_retried_by_default() -> None:
    calls = []

    def handler(r: httpx.Request) -> httpx.Response:
        calls.append(r)
        return httpx.Response(503)

    async with _client(handler) as client:
        d = await deliver(client, OUT, Policy())
    assert d.status == 503 and d.error_kind == "" and len(calls) == 1


async def test_configured_statuses_are_retried_with_backoff_then_reported() -> None:
    sleeps = Sleeps()
    retried: list[str] = []
    policy = Policy(retries=3, retry_statuses=frozenset({503}), backoff_base_s=0.1)
    async with _client(lambda r: httpx.Response(503)) as client:
        d = await deliver(client, OUT, policy, sleep=sleeps, on_retry=retried.append)
    assert d.attempts == 4 and d.error_kind == "status-503"
    assert retried == ["status-503"] * 3
    for n, slept in enumerate(sleeps.calls, start=1):
        ceiling = 0.1 * 2 ** (n - 1)
        assert ceiling / 2 <= slept <= ceiling


async def test_retry_then_success() -> None:
    answers = iter([503, 502, 200])
    policy = Policy(retries=5, retry_statuses=frozenset({502, 503}))
    async with _client(lambda r: httpx.Response(next(answers))) as client:
        d = await deliver(client, OUT, policy, sleep=Sleeps())
    assert d.status == 200 and d.attempts == 3 and d.error_kind == ""


async def test_read_timeout_fails_without_retries() -> None:
    def handler(r: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=r)

    async with _client(handler) as client:
        d = await deliver(client, OUT, Policy(), sleep=Sleeps())
    assert d.failed and d.error_kind == "timeout" and d.attempts == 1
    assert "ReadTimeout" in d.error


async def test_connect_errors_are_retried_for_connect_retry_s() -> None:
    n = 0

    def handler(r: httpx.Request) -> httpx.Response:
        nonlocal n
        n += 1
        if n < 6:
            raise httpx.ConnectError("refused", request=r)
        return httpx.Response(200)

    async with _client(handler) as client:
        d = await deliver(client, OUT, Policy(connect_retry_s=60), sleep=Sleeps())
    assert d.status == 200 and d.attempts == 6


async def test_connect_errors_fail_when_connect_retry_is_off() -> None:
    def handler(r: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=r)

    async with _client(handler) as client:
        d = await deliver(client, OUT, Policy(connect_retry_s=0, retries=2), sleep=Sleeps())
    assert d.failed and d.error_kind == "connect" and d.attempts == 3


async def test_redirects_are_never_followed() -> None:
    seen: list[str] = []

    def handler(r: httpx.Request) -> httpx.Response:
        seen.append(str(r.url))
        return httpx.Response(302, headers={"Location": "https://evil.example/"})

    async with httpx.AsyncClient(
        transport=httpx.MockTransport(handler), follow_redirects=True
    ) as client:
        d = await deliver(client, OUT, Policy())
    assert d.status == 302 and seen == ["http://stg/api"]


def test_classify_httpx_errors() -> None:
    req = httpx.Request("GET", "http://x")
    assert classify(httpx.ConnectError("x", request=req)) == "connect"
    assert classify(httpx.ReadTimeout("x", request=req)) == "timeout"
    assert classify(httpx.RemoteProtocolError("x", request=req)) == "disconnected"
    assert classify(httpx.UnsupportedProtocol("x", request=req)) == "protocol"


def test_one_table_classifies_aiohttp_errors_alone_and_under_httpx() -> None:
    import aiohttp

    refused = aiohttp.ClientConnectorError(SimpleNamespace(), OSError(111, "refused"))  # type: ignore[arg-type]
    cases = [
        (refused, "connect"),
        (aiohttp.ServerTimeoutError(), "timeout"),
        (TimeoutError(), "timeout"),
        (aiohttp.ServerDisconnectedError(), "disconnected"),
        (aiohttp.ClientPayloadError(), "disconnected"),
        (aiohttp.InvalidURL("x"), "protocol"),
    ]
    req = httpx.Request("GET", "http://x")
    for exc, kind in cases:
        assert classify(exc) == kind
        # httpx-aiohttp's loose mapping (a disconnect as ConnectTimeout): the cause decides.
        wrapped = httpx.ConnectTimeout("x", request=req)
        wrapped.__cause__ = exc
        from_aiohttp = type(exc).__module__.startswith("aiohttp")
        assert classify(wrapped) == (kind if from_aiohttp else "connect")


async def test_a_transport_failure_is_a_retryable_replay_error_with_its_kind() -> None:
    def handler(r: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("reset by peer", request=r)

    sender = HttpxSender(_client(handler))
    with pytest.raises(RetryableReplayError) as info:
        await sender.attempt(OUT, Policy(), Delivery())
    assert (info.value.kind, str(info.value)) == ("disconnected", "ReadError: reset by peer")
    await sender.aclose()


def test_policy_from_settings_and_validation() -> None:
    p = Policy.from_settings(ReplayerSettings(retries=4, retry_statuses=(503,)), MarkingSettings())
    assert p.retries == 4 and p.retry_statuses == {503}
    assert p.marker is not None and p.marker.is_development  # no key set: the development one
    with pytest.raises(ConfigError):
        Policy.from_settings(ReplayerSettings(retries=-1), MarkingSettings())
    # A result holds two bodies in base64: past 320 KiB each it could exceed a Kafka
    # message, be refused for ever and hold its partition's commits.
    with pytest.raises(ConfigError, match=r"replayer\.result_body_limit"):
        Policy.from_settings(ReplayerSettings(result_body_limit=1 << 20), MarkingSettings())


def test_make_client_bad_ca_file_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ca_file"):
        make_client(ReplayerSettings(target="https://stg", ca_file="/nonexistent/ca.pem"))


async def test_make_client_sends_no_default_headers() -> None:
    for transport in ("aiohttp", "httpx"):
        client = make_client(ReplayerSettings(target="http://stg", transport=transport))  # type: ignore[arg-type]
        assert dict(client.headers) == {}
        assert client.follow_redirects is False
        await client.aclose()


async def test_make_sender_picks_the_transport() -> None:
    from shadowtap.replayers.policy import AiohttpSender, HttpxSender, make_sender

    assert isinstance(make_sender(ReplayerSettings(target="http://stg")), AiohttpSender)
    for settings in (
        ReplayerSettings(target="http://stg", http2=True),
        ReplayerSettings(target="http://stg", transport="httpx"),
        ReplayerSettings(target="http://stg", transport="httpx-aiohttp"),
    ):
        sender = make_sender(settings)
        assert isinstance(sender, HttpxSender)
        await sender.aclose()
