"""Fuzzing the collector over a real loopback socket: malformed, split and pipelined requests.

One collector serves every example on one event loop (so each example costs a connection,
not a server). Each example writes its bytes in the pieces hypothesis chose, half-closes,
and reads until the collector closes, within a timeout. Invariants:

- it never crashes (the same server answers the next example) and never hangs;
- from a pipelined stream it records exactly the complete valid requests before the first
  bad one, in order, byte for byte, answering each with 204 and the bad one with 400;
- one request never becomes two records: a mutated request gives at most one, and a request
  cut short is recorded, if at all, marked as missing its body.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shadowtap.envelope import Envelope
from shadowtap.producers.collector import Collector

from .conftest import Recorder

TIMEOUT_S = 5.0
FUZZ = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
NO_CONTENT = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


@dataclass
class Sent:
    """A valid request and the bytes that carry it."""

    method: str
    target: str
    body: bytes
    raw: bytes


class Sink:
    """One collector on one loop for a whole test; examples connect to it in turn."""

    def __init__(self) -> None:
        self.recorder = Recorder({"max_request_body": 1 << 20})
        self.loop = asyncio.new_event_loop()
        self.server = self.loop.run_until_complete(
            self.loop.create_server(Collector(self.recorder.capturer).connection, "127.0.0.1", 0)
        )
        self.port = self.server.sockets[0].getsockname()[1]

    def send(self, pieces: list[bytes]) -> tuple[bytes, list[Envelope]]:
        """The answer and the records of one connection that sends ``pieces``, then EOF."""
        before = len(self.recorder.producer.records)
        answer = self.loop.run_until_complete(asyncio.wait_for(self._send(pieces), TIMEOUT_S))
        self.loop.run_until_complete(asyncio.sleep(0))  # let the server see the close
        return answer, self.recorder.envelopes[before:]

    async def _send(self, pieces: list[bytes]) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            for piece in pieces:
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0)
            writer.write_eof()
            return await reader.read()
        except ConnectionError:  # the collector closed first; what it answered is lost
            return b"<reset>"
        finally:
            writer.close()

    def close(self) -> None:
        self.server.close()
        self.loop.run_until_complete(self.server.wait_closed())
        self.loop.close()


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.close()


TOKEN = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
VALUE = st.binary(max_size=40).map(
    lambda b: bytes(c for c in b if c in range(0x21, 0x7F) or c == 0x20).strip()
)


@st.composite
def requests(draw: st.DrawFn) -> Sent:
    method = draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]))
    path = "/" + "/".join(draw(st.lists(TOKEN, max_size=3)))
    query = draw(st.one_of(st.just(""), TOKEN.map(lambda t: f"?q={t}&q=%ZZ")))
    names = draw(st.lists(TOKEN, max_size=5))
    headers = b"".join(
        b"X-%s: %s\r\n" % (name.encode(), draw(VALUE)) for name in names if name != "shadowtap"
    )
    body = draw(st.binary(max_size=300)) if method != "GET" else b""
    framing = draw(st.sampled_from(["length", "chunked"])) if body else "none"
    head = b"%s %s HTTP/1.1\r\nHost: shop.example\r\n%s" % (
        method.encode(),
        (path + query).encode(),
        headers,
    )
    if framing == "length":
        raw = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    elif framing == "chunked":
        cuts = sorted(draw(st.lists(st.integers(1, len(body)), max_size=4, unique=True)))
        parts = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts if p)
        raw = head + b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    else:
        raw = head + b"\r\n"
    return Sent(method, path + query, body, raw)


BAD = st.sampled_from(
    [
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde",
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nz\r\nabc\r\n0\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS hello on the plain port
    ]
)


def _pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True) if b > a]


def _same(env: Envelope, sent: Sent) -> bool:
    return (env.method, env.target, env.body, env.truncated) == (
        sent.method,
        sent.target,
        sent.body,
        False,
    )


@FUZZ
@given(
    good=st.lists(requests(), min_size=1, max_size=4),
    bad=st.one_of(st.none(), BAD),
    cuts=st.lists(st.integers(0, 1 << 16), max_size=8),
)
def test_pipelined_split_stream_records_exactly_the_valid_requests(
    sink: Sink, good: list[Sent], bad: bytes | None, cuts: list[int]
) -> None:
    stream = b"".join(s.raw for s in good) + (bad or b"")
    answer, records = sink.send(_pieces(stream, cuts))
    assert len(records) == len(good)
    assert all(_same(env, sent) for env, sent in zip(records, good, strict=True))
    expected = NO_CONTENT * len(good) + (BAD_REQUEST if bad else b"")
    assert answer == expected


@FUZZ
@given(sent=requests(), cut=st.integers(1, 1 << 16), cuts=st.lists(st.integers(), max_size=4))
def test_a_request_cut_short_is_never_passed_off_as_whole(
    sink: Sink, sent: Sent, cut: int, cuts: list[int]
) -> None:
    cut %= len(sent.raw)  # strictly inside the request
    answer, records = sink.send(_pieces(sent.raw[:cut], cuts))
    assert answer in (b"", BAD_REQUEST)
    assert len(records) <= 1
    for env in records:  # cut inside the body: recorded as missing it, with what is known
        assert env.truncated and env.body == b""
        assert env.meta["request_body_skipped"] == "client-disconnected"


@FUZZ
@given(
    sent=requests(),
    edits=st.lists(
        st.tuples(st.integers(0, 1 << 16), st.binary(min_size=0, max_size=4)), max_size=4
    ),
    cuts=st.lists(st.integers(), max_size=4),
)
def test_one_mutated_request_never_becomes_two_records_nor_crashes(
    sink: Sink, sent: Sent, edits: list[tuple[int, bytes]], cuts: list[int]
) -> None:
    raw = bytearray(sent.raw)
    for offset, replacement in edits:  # overwrite or insert a few bytes anywhere
        at = offset % (len(raw) + 1)
        raw[at : at + len(replacement) // 2] = replacement
    answer, records = sink.send(_pieces(bytes(raw), cuts))
    assert len(records) <= 1
    assert answer.count(b"HTTP/1.1 ") <= 2 or answer == b"<reset>"
    for env in records:
        assert env.truncated or env.body_size == len(env.body)


@FUZZ
@given(data=st.binary(max_size=2000), cuts=st.lists(st.integers(), max_size=6))
def test_arbitrary_bytes_never_crash_or_hang_the_collector(
    sink: Sink, data: bytes, cuts: list[int]
) -> None:
    sink.send(_pieces(data, cuts))
    # Still serving: the next connection is answered and recorded.
    answer, records = sink.send([b"GET /alive HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"])
    assert answer == NO_CONTENT
    assert [e.path for e in records] == ["/alive"]
