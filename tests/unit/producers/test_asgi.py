"""The ASGI middleware never changes what the app sees or returns, and captures the rest."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shadowtap.producers.asgi import ShadowtapMiddleware
from shadowtap.types import Message, Receive, Scope, Send

from .conftest import Recorder


def _scope(
    method: str = "POST", path: str = "/api/x", query: bytes = b"a=1&a=2", headers: Any = None
) -> Scope:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "scheme": "https",
        "headers": headers
        if headers is not None
        else [(b"host", b"shop"), (b"content-type", b"application/json")],
        "client": ("10.1.2.3", 5555),
        "server": ("shop", 443),
    }


class Peer:
    """The server side: feeds request messages and records what the app sends."""

    def __init__(self, messages: list[Message]) -> None:
        self.incoming = list(messages)
        self.received = 0
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        self.received += 1
        if not self.incoming:
            return {"type": "http.disconnect"}
        return self.incoming.pop(0)

    async def send(self, message: Message) -> None:
        self.sent.append(message)


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send(
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": b"got:" + body})


def _run(app: Any, scope: Scope, peer: Peer) -> None:
    asyncio.run(app(scope, peer.receive, peer.send))


def test_request_and_response_are_captured_and_passed_on_unchanged(recorder: Recorder) -> None:
    peer = Peer(
        [
            {"type": "http.request", "body": b"\x00\xff", "more_body": True},
            {"type": "http.request", "body": b"ok"},
        ]
    )
    headers = [
        (b"host", b"shop"),
        (b"x-dup", b"1"),
        (b"x-dup", b"2"),
        (b"x-name", "Zoë".encode("latin-1")),
    ]
    _run(
        ShadowtapMiddleware(echo, capturer=recorder.capturer),
        _scope(headers=headers, query=b"q=%ZZ&a=1"),
        peer,
    )
    assert peer.sent[1]["body"] == b"got:\x00\xffok"
    (env,) = recorder.envelopes
    assert (env.method, env.path, env.query, env.scheme, env.host, env.client) == (
        "POST", "/api/x", "q=%ZZ&a=1", "https", "shop", "10.1.2.3",
    )  # fmt: skip
    assert env.headers == [("host", "shop"), ("x-dup", "1"), ("x-dup", "2"), ("x-name", "Zoë")]
    assert env.body == b"\x00\xffok" and env.body_size == 4 and not env.truncated
    assert env.response is not None
    assert (env.response.status, env.response.body) == (201, b"got:\x00\xffok")
    assert recorder.keys == [env.id.encode()]


def test_nothing_is_read_ahead_of_the_app() -> None:
    async def reads_one(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    recorder = Recorder()
    peer = Peer(
        [
            {"type": "http.request", "body": b"a", "more_body": True},
            {"type": "http.request", "body": b"b"},
        ]
    )
    _run(ShadowtapMiddleware(reads_one, capturer=recorder.capturer), _scope(), peer)
    assert peer.received == 1
    (env,) = recorder.envelopes
    assert env.body == b"a"


def test_app_that_never_reads_the_body_is_captured_without_it(recorder: Recorder) -> None:
    async def ignores_body(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    peer = Peer([{"type": "http.request", "body": b"unread"}])
    _run(ShadowtapMiddleware(ignores_body, capturer=recorder.capturer), _scope(), peer)
    assert peer.received == 0
    (env,) = recorder.envelopes
    assert env.body == b"" and env.response is not None and env.response.status == 204


@pytest.mark.parametrize("kind", ["websocket", "lifespan-less"])
def test_non_http_scopes_pass_straight_through(recorder: Recorder, kind: str) -> None:
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((receive, send))

    peer = Peer([])
    _run(ShadowtapMiddleware(app, capturer=recorder.capturer), {"type": "websocket"}, peer)
    assert seen == [(peer.receive, peer.send)]
    assert recorder.envelopes == []


def test_lifespan_shutdown_flushes_the_queue(recorder: Recorder) -> None:
    flushed: list[float | None] = []
    recorder.capturer.flush = lambda timeout=None: flushed.append(timeout) or 0  # type: ignore[method-assign]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.complete"})
        assert (await receive())["type"] == "lifespan.shutdown"
        await send({"type": "lifespan.shutdown.complete"})

    peer = Peer([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    _run(ShadowtapMiddleware(app, capturer=recorder.capturer), {"type": "lifespan"}, peer)
    assert flushed == [None]
    assert [m["type"] for m in peer.sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


def test_app_exception_propagates_untouched_and_is_captured_as_500(recorder: Recorder) -> None:
    error = RuntimeError("boom")

    async def raises(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        raise error

    with pytest.raises(RuntimeError) as info:
        _run(
            ShadowtapMiddleware(raises, capturer=recorder.capturer),
            _scope(),
            Peer([{"type": "http.request", "body": b"x"}]),
        )
    assert info.value is error
    (env,) = recorder.envelopes
    assert env.response is not None and env.response.status == 500
    assert env.meta["app_error"] == "RuntimeError"


def test_streaming_response_passes_through_and_is_copied_up_to_the_limit(
    make_recorder: type[Recorder],
) -> None:
    recorder = make_recorder({"max_response_body": 10})
    chunks = [b"data: %d\n\n" % i for i in range(5)]

    async def sse(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    peer = Peer([{"type": "http.request", "body": b""}])
    _run(ShadowtapMiddleware(sse, capturer=recorder.capturer), _scope(method="GET"), peer)
    assert [m.get("body") for m in peer.sent[1:]] == [*chunks, b""]
    assert all(m is sent for m, sent in zip(peer.sent, peer.sent, strict=True))
    (env,) = recorder.envelopes
    assert env.response is not None
    assert (
        env.response.truncated
        and env.response.body == b""
        and env.response.body_size == sum(map(len, chunks))
    )


def test_large_upload_reaches_the_app_whole_and_the_record_is_truncated(
    make_recorder: type[Recorder],
) -> None:
    recorder = make_recorder({"max_request_body": 64 * 1024})
    chunk = b"z" * (1024 * 1024)
    messages: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": True} for _ in range(49)
    ]
    messages.append({"type": "http.request", "body": chunk})
    received = []

    async def counts(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            received.append(len(message["body"]))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    scope = _scope(headers=[(b"host", b"shop")])  # chunked: no Content-Length to decide from
    _run(ShadowtapMiddleware(counts, capturer=recorder.capturer), scope, Peer(messages))
    assert sum(received) == 50 * len(chunk)
    (env,) = recorder.envelopes
    assert env.truncated and env.body == b"" and env.body_size == 50 * len(chunk)


def test_client_disconnect_mid_body_is_noted(recorder: Recorder) -> None:
    async def reads_all(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            if not message.get("more_body"):
                break

    _run(
        ShadowtapMiddleware(reads_all, capturer=recorder.capturer),
        _scope(headers=_sized(100)),
        Peer([{"type": "http.request", "body": b"part", "more_body": True}]),
    )
    (env,) = recorder.envelopes
    assert env.meta["client_disconnected"] is True
    # Four bytes of a hundred are not the request: no body, the declared size, and why.
    assert (env.body, env.body_size, env.truncated) == (b"", 100, True)
    assert env.meta["request_body_skipped"] == "client-disconnected"
    assert env.response is not None and env.response.status == 500  # no response was started


def test_excluded_and_sampled_out_requests_are_not_wrapped(make_recorder: type[Recorder]) -> None:
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(receive)

    for capture in ({"exclude_paths": ["/api/*"]}, {"sample_percent": 0}):
        recorder = make_recorder(capture)
        seen.clear()

        peer = Peer([])
        _run(ShadowtapMiddleware(app, capturer=recorder.capturer), _scope(), peer)
        assert seen == [peer.receive]
        assert recorder.envelopes == []


def test_full_queue_drops_and_counts_without_touching_the_response() -> None:
    recorder = Recorder(capacity=1)
    middleware = ShadowtapMiddleware(echo, capturer=recorder.capturer)
    for _ in range(3):
        peer = Peer([{"type": "http.request", "body": b"x"}])
        _run(middleware, _scope(), peer)
        assert peer.sent[1]["body"] == b"got:x"
    assert recorder.capturer.metrics.captured == 1
    assert recorder.capturer.metrics.dropped["queue-full"] == 2


def test_with_the_queue_at_its_limit_requests_are_not_even_wrapped() -> None:
    # Kafka down: the queue fills up, and from then on a request costs a length check.
    recorder = Recorder({"queue_max_messages": 1})
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(receive)
        await echo(scope, receive, send)

    middleware = ShadowtapMiddleware(app, capturer=recorder.capturer)
    peers = [Peer([{"type": "http.request", "body": b"x"}]) for _ in range(3)]
    for peer in peers:
        _run(middleware, _scope(), peer)
        assert peer.sent[1]["body"] == b"got:x"
    assert seen[0] != peers[0].receive
    assert seen[1:] == [peers[1].receive, peers[2].receive]
    assert recorder.capturer.metrics.captured == 1
    assert recorder.capturer.metrics.dropped["queue-full"] == 2


def test_our_own_failure_never_reaches_the_app(recorder: Recorder) -> None:
    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("encoder bug")

    recorder.capturer.publisher.publish = broken  # type: ignore[method-assign]
    peer = Peer([{"type": "http.request", "body": b"x"}])
    _run(ShadowtapMiddleware(echo, capturer=recorder.capturer), _scope(), peer)
    assert peer.sent[1]["body"] == b"got:x"
    assert recorder.capturer.metrics.dropped["internal-error"] == 1


def _answers_401(scope: Scope, receive: Receive, send: Send) -> Any:
    async def app() -> None:  # an auth check that fails before the body is read
        await send({"type": "http.response.start", "status": 401, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app()


def _sized(length: int) -> Any:
    return [(b"host", b"shop"), (b"content-length", b"%d" % length)]


def test_body_the_app_never_read_keeps_its_declared_size_and_says_so(recorder: Recorder) -> None:
    peer = Peer([{"type": "http.request", "body": b"x" * 30}])
    _run(
        ShadowtapMiddleware(_answers_401, capturer=recorder.capturer),
        _scope(headers=_sized(30)),
        peer,
    )
    assert peer.received == 0  # capture read nothing on the app's behalf
    (env,) = recorder.envelopes
    assert (env.body, env.body_size, env.truncated) == (b"", 30, True)
    assert env.meta["request_body_skipped"] == "not-read"


def test_body_the_app_read_only_in_part_is_marked_too(recorder: Recorder) -> None:
    async def reads_one_chunk(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 422, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    peer = Peer(
        [
            {"type": "http.request", "body": b"x" * 10, "more_body": True},
            {"type": "http.request", "body": b"x" * 20},
        ]
    )
    _run(
        ShadowtapMiddleware(reads_one_chunk, capturer=recorder.capturer),
        _scope(headers=_sized(30)),
        peer,
    )
    assert peer.received == 1
    (env,) = recorder.envelopes
    assert (env.body, env.body_size, env.truncated) == (b"", 30, True)
    assert env.meta["request_body_skipped"] == "not-read"


def test_unread_chunked_body_is_marked_without_a_size(recorder: Recorder) -> None:
    headers = [(b"host", b"shop"), (b"transfer-encoding", b"chunked")]
    peer = Peer([{"type": "http.request", "body": b"abc"}])
    _run(
        ShadowtapMiddleware(_answers_401, capturer=recorder.capturer), _scope(headers=headers), peer
    )
    (env,) = recorder.envelopes
    assert (env.body, env.body_size, env.truncated) == (b"", 0, True)
    assert env.meta["request_body_skipped"] == "not-read"


def test_request_without_a_body_is_complete_when_the_app_reads_nothing(recorder: Recorder) -> None:
    for headers in ([(b"host", b"shop")], _sized(0)):
        _run(
            ShadowtapMiddleware(_answers_401, capturer=recorder.capturer),
            _scope(method="GET", headers=headers),
            Peer([{"type": "http.request", "body": b""}]),
        )
    for env in recorder.envelopes:
        assert (env.body, env.body_size, env.truncated) == (b"", 0, False)
        assert "request_body_skipped" not in env.meta


def test_our_own_failure_on_the_hot_path_is_counted_and_logged_once_per_interval(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    async def odd_headers(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        # str header names: the app's server may accept them, capture's copy fails on them
        await send({"type": "http.response.start", "status": 200, "headers": [("x", "1")]})
        await send({"type": "http.response.body", "body": b"ok"})

    middleware = ShadowtapMiddleware(odd_headers, capturer=recorder.capturer)
    caplog.set_level("WARNING", logger="shadowtap.capture")
    peers = [Peer([{"type": "http.request", "body": b"x"}]) for _ in range(2)]
    for peer in peers:
        _run(middleware, _scope(), peer)
        assert [m["type"] for m in peer.sent] == ["http.response.start", "http.response.body"]
    assert recorder.capturer.metrics.dropped["internal-error"] == 2
    (line,) = [r for r in caplog.records if r.name == "shadowtap.capture"]
    assert "capture failed" in line.getMessage() and line.exc_info is not None
