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


async def _exchange(collector: Collector, raw: bytes, split: int, eof: bool) -> bytes:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(collector.connection, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for i in range(0, len(raw), split or len(raw) or 1):
            writer.write(raw[i : i + split] if split else raw)
            await writer.drain()
            if split:
                await asyncio.sleep(0)  # let the collector read this piece on its own
        if eof:
            writer.write_eof()
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        return answer
    finally:
        server.close()
        await server.wait_closed()


def _run(collector: Collector, raw: bytes, *, split: int = 0, eof: bool = True) -> bytes:
    """Send ``raw`` (in pieces of ``split`` bytes), then EOF; what came back until closed."""
    runner: Callable[[], Awaitable[bytes]] = lambda: _exchange(collector, raw, split, eof)  # noqa: E731
    return asyncio.run(runner())


@pytest.mark.parametrize("split", [0, 1, 7], ids=["whole", "bytes", "pieces"])
def test_keep_alive_requests_with_length_and_chunked_bodies(recorder: Recorder, split: int) -> None:
    raw = (
        b"POST /api/orders?a=1&a=2 HTTP/1.1\r\nHost: shop-shadow\r\n"
        b"X-Forwarded-For: 203.0.113.9, 10.0.0.1\r\n"
        b'Content-Type: application/json\r\nContent-Length: 7\r\n\r\n{"a":1}'
        b"PUT /b HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n"
        b"GET /c HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n"
    )
    answer = _run(Collector(recorder.capturer), raw, split=split)
    assert answer.count(b"HTTP/1.1 204 No Content") == 3
    first, second, third = recorder.envelopes
    assert (first.method, first.path, first.query, first.host, first.client, first.body) == (
        "POST", "/api/orders", "a=1&a=2", "shop", "203.0.113.9", b'{"a":1}',
    )  # fmt: skip
    assert ("Host", "shop") in first.headers
    assert first.meta == {"capture": "collector", "unshadowed_host": True}
    assert first.response is None
    assert (second.method, second.body, second.body_size) == ("PUT", b"abcde", 5)
    assert all(k.lower() != "x-trailer" for k, _ in second.headers)  # trailers are not kept
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
    assert recorder.capturer.metrics.dropped["rejected-bad-request-line"] == 1


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


def test_two_different_content_lengths_are_refused_and_not_recorded(recorder: Recorder) -> None:
    # The request-smuggling shape: which length frames the body decides where the next
    # request starts. RFC 9112 §6.3: 400 and close, never guess.
    raw = (
        b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\n"
        b"abcGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    answer = _run(Collector(recorder.capturer), raw)
    assert answer.startswith(b"HTTP/1.1 400") and answer.count(b"HTTP/1.1") == 1
    assert recorder.envelopes == []
    assert recorder.capturer.metrics.dropped["rejected-conflicting-content-length"] == 1


_HEAD = b"POST /a HTTP/1.1\r\nHost: a\r\n"


_REJECTED = [
    (
        _HEAD + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        "conflicting-content-length",
    ),
    (_HEAD + b"Content-Length: 3, 3\r\n\r\nabc", "bad-content-length"),
    (_HEAD + b"Content-Length: -1\r\n\r\n", "bad-content-length"),
    (_HEAD + b"Content-Length: 99999999999999999999999\r\n\r\n", "bad-content-length"),
    (
        _HEAD + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "transfer-encoding-with-content-length",
    ),
    (
        _HEAD + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        "transfer-encoding-with-content-length",
    ),
    (_HEAD + b"Transfer-Encoding: gzip\r\n\r\nabc", "bad-transfer-encoding"),
    (_HEAD + b"Transfer-Encoding: chunked, gzip\r\n\r\nabc", "bad-transfer-encoding"),
    (_HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", "bad-chunk"),
    (_HEAD + b"Transfer-Encoding: chunked\r\n\r\n-1\r\nabc\r\n0\r\n\r\n", "bad-chunk"),
    (
        _HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"f" * 17 + b"\r\nabc\r\n0\r\n\r\n",
        "bad-chunk",
    ),
    (_HEAD + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\n", "bad-chunk"),
    (_HEAD + b"X-A: 1\r\n 2\r\nContent-Length: 0\r\n\r\n", "obs-fold"),
    (_HEAD + b"X-A: 1\r\n\t2\r\nContent-Length: 0\r\n\r\n", "obs-fold"),
    (_HEAD + b"X-Big: " + b"b" * 70_000 + b"\r\n\r\n", "head-too-large"),
    (_HEAD + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 60) for i in range(2000)), "head-too-large"),
    (b"POST /a HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "bad-host"),
    (_HEAD + b"Host: b\r\nContent-Length: 0\r\n\r\n", "bad-host"),
    (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", "bad-version"),
    (b"get / HTTP/1.1\r\nHost: a\r\n\r\n", "bad-request-line"),
    (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", "malformed"),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", "malformed"),
]


@pytest.mark.parametrize(("raw", "reason"), _REJECTED, ids=[r for _, r in _REJECTED])
def test_what_rfc_9112_rejects_gets_400_is_counted_and_never_recorded(
    recorder: Recorder, raw: bytes, reason: str
) -> None:
    # A valid request first: it is answered and recorded; nothing after the bad one is.
    good = b"GET /first HTTP/1.1\r\nHost: a\r\n\r\n"
    after = b"GET /after HTTP/1.1\r\nHost: a\r\n\r\n"
    answer = _run(Collector(recorder.capturer), good + raw + after)
    assert answer == (
        b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"
        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )
    assert [e.path for e in recorder.envelopes] == ["/first"]
    assert recorder.capturer.metrics.dropped == {f"rejected-{reason}": 1}


def test_connection_cut_mid_body_is_recorded_as_missing_and_mid_head_is_counted(
    recorder: Recorder,
) -> None:
    collector = Collector(recorder.capturer)
    cut_body = b"POST /cut HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n" + b"x" * 40
    assert _run(collector, cut_body) == b""
    (env,) = recorder.envelopes
    assert (env.path, env.body, env.body_size, env.truncated) == ("/cut", b"", 100, True)
    assert env.meta["request_body_skipped"] == "client-disconnected"
    assert _run(collector, b"POST /cut HTTP/1.1\r\nHost: a\r\nContent-Le") == b""
    assert len(recorder.envelopes) == 1
    assert recorder.capturer.metrics.dropped["closed-mid-head"] == 1


@pytest.mark.parametrize(
    ("raw", "eof"),
    [
        (b"GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", True),
        (b"GET /last HTTP/1.0\r\n\r\n", False),  # closed by us, not by the peer's EOF
        (
            b"GET /last HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
            b"\x81\x05hello",
            True,
        ),
    ],
    ids=["connection-close", "http-1.0", "upgrade"],
)
def test_a_request_that_ends_its_connection_is_answered_and_what_follows_ignored(
    recorder: Recorder, raw: bytes, eof: bool
) -> None:
    then = b"GET /ignored HTTP/1.1\r\nHost: a\r\n\r\n" if eof else b""
    answer = _run(Collector(recorder.capturer), raw + then, eof=eof)
    assert answer == b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"
    assert [e.path for e in recorder.envelopes] == ["/last"]
    assert not recorder.capturer.metrics.dropped
