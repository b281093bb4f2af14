"""The collector: raw HTTP/1.1 on a loopback socket, answered at once, unshadowed hosts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from shadowtap.producers.collector import Collector, unshadow

from .conftest import Recorder


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("api.example.com-shadow", ("api.example.com", True)),
        ("api.example.com-shadow:8080", ("api.example.com:8080", True)),
        ("api.example.com:8080-shadow", ("api.example.com:8080", True)),
        ("api.example.com", ("api.example.com", False)),
        ("[::1]:8080", ("[::1]:8080", False)),
        ("", ("", False)),
    ],
)
def test_unshadow_undoes_the_envoy_and_istio_suffix(host: str, expected: tuple[str, bool]) -> None:
    assert unshadow(host) == expected


async def _exchange(collector: Collector, raw: bytes) -> bytes:
    server = await asyncio.start_server(collector.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(raw)
        await writer.drain()
        writer.write_eof()
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        return answer
    finally:
        server.close()
        await server.wait_closed()


def _run(collector: Collector, raw: bytes) -> bytes:
    runner: Callable[[], Awaitable[bytes]] = lambda: _exchange(collector, raw)  # noqa: E731
    return asyncio.run(runner())


def test_keep_alive_requests_with_length_and_chunked_bodies(recorder: Recorder) -> None:
    raw = (
        b"POST /api/orders?a=1&a=2 HTTP/1.1\r\nHost: shop-shadow\r\n"
        b"X-Forwarded-For: 203.0.113.9, 10.0.0.1\r\n"
        b'Content-Type: application/json\r\nContent-Length: 7\r\n\r\n{"a":1}'
        b"PUT /b HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        b"GET /c HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n"
    )
    answer = _run(Collector(recorder.capturer), raw)
    assert answer.count(b"HTTP/1.1 204 No Content") == 3
    first, second, third = recorder.envelopes
    assert (first.method, first.path, first.query, first.host, first.client, first.body) == (
        "POST", "/api/orders", "a=1&a=2", "shop", "203.0.113.9", b'{"a":1}',
    )  # fmt: skip
    assert ("Host", "shop") in first.headers
    assert first.meta == {"capture": "collector", "unshadowed_host": True}
    assert first.response is None
    assert (second.method, second.body, second.body_size) == ("PUT", b"abcde", 5)
    assert third.method == "GET" and third.body == b""


def test_wrong_or_missing_secret_is_refused_and_not_recorded(make_recorder: type[Recorder]) -> None:
    recorder = make_recorder({"collector_secret": "s3cret"})
    collector = Collector(recorder.capturer)
    answer = _run(collector, b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 403")
    answer = _run(
        collector,
        b"GET /x HTTP/1.1\r\nHost: a\r\nX-Shadowtap-Secret: s3cret\r\nConnection: close\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 204")
    (env,) = recorder.envelopes
    assert all(k.lower() != "x-shadowtap-secret" for k, _ in env.headers)
    assert recorder.capturer.metrics.dropped["forbidden"] == 1


def test_garbage_gets_400_and_is_counted(recorder: Recorder) -> None:
    answer = _run(Collector(recorder.capturer), b"NOT HTTP AT ALL\r\nfoo\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400")
    assert recorder.envelopes == []
    assert recorder.capturer.metrics.dropped["bad-request"] == 1


def test_body_over_the_limit_is_read_off_the_socket_but_not_kept(
    make_recorder: type[Recorder],
) -> None:
    recorder = make_recorder({"max_request_body": 10})
    body = b"x" * 100_000
    raw = b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    raw += b"GET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    answer = _run(Collector(recorder.capturer), raw)
    assert answer.count(b"204") == 2
    first, second = recorder.envelopes
    assert first.truncated and first.body == b"" and first.body_size == 100_000
    assert second.path == "/next"
