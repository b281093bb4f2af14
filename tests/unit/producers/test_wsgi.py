"""The WSGI middleware: exact input proxy, untouched responses, close() always called."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import Any
from wsgiref.util import FileWrapper

import pytest

from shadowtap.producers.wsgi import ShadowtapWSGIMiddleware
from shadowtap.types import Environ, StartResponse

from .conftest import Recorder


def _environ(body: bytes = b"", **extra: Any) -> Environ:
    environ: Environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/ü",
        "RAW_URI": "/api/%C3%BC?q=%ZZ",
        "QUERY_STRING": "q=%ZZ",
        "SERVER_NAME": "shop",
        "SERVER_PORT": "80",
        "REMOTE_ADDR": "10.0.0.9",
        "CONTENT_TYPE": "application/octet-stream",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "shop.example",
        "HTTP_AUTHORIZATION": "Bearer secret",
        "wsgi.input": io.BytesIO(body + b"TRAILING-GARBAGE"),
        "wsgi.url_scheme": "https",
        "wsgi.file_wrapper": FileWrapper,
    }
    environ.update(extra)
    return environ


class Server:
    def __init__(self) -> None:
        self.status = ""
        self.headers: list[tuple[str, str]] = []

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Any:
        self.status, self.headers = status, headers
        return lambda _data: None


def _call(middleware: ShadowtapWSGIMiddleware, environ: Environ) -> tuple[Server, bytes]:
    server = Server()
    result = middleware(environ, server.start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close:
            close()
    return server, body


def echo(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    data = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Set-Cookie", "sid=1")])
    return [b"got:", data]


def test_input_is_bounded_by_content_length_and_captured(recorder: Recorder) -> None:
    server, body = _call(
        ShadowtapWSGIMiddleware(echo, capturer=recorder.capturer), _environ(b"\x00payload\xff")
    )
    assert body == b"got:\x00payload\xff"
    assert server.status == "200 OK"
    (env,) = recorder.envelopes
    assert (env.method, env.path, env.query, env.scheme, env.host, env.client) == (
        "POST", "/api/%C3%BC", "q=%ZZ", "https", "shop.example", "10.0.0.9",
    )  # fmt: skip
    assert env.body == b"\x00payload\xff" and env.body_size == 9
    assert ("Authorization", "[redacted]") in env.headers
    assert env.response is not None
    assert env.response.body == b"got:\x00payload\xff"
    assert ("Set-Cookie", "[redacted]") in env.response.headers


def test_readline_and_iteration_see_what_they_would_without_shadowtap(recorder: Recorder) -> None:
    lines: list[bytes] = []

    def reads_lines(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        stream = environ["wsgi.input"]
        lines.append(stream.readline())
        lines.extend(stream)
        start_response("204 No Content", [])
        return []

    _call(ShadowtapWSGIMiddleware(reads_lines, capturer=recorder.capturer), _environ(b"a\nb\nc"))
    assert lines == [b"a\n", b"b\n", b"c"]
    assert recorder.envelopes[0].body == b"a\nb\nc"


def test_app_that_never_reads_is_captured_without_a_body(recorder: Recorder) -> None:
    environ = _environ(b"unread")

    def ignores(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])
        return [b"ok"]

    _call(ShadowtapWSGIMiddleware(ignores, capturer=recorder.capturer), environ)
    assert environ["wsgi.input"]._stream.tell() == 0  # nothing read on the app's behalf
    assert recorder.envelopes[0].body == b""


def test_response_iterable_is_closed_even_when_the_client_goes_away(recorder: Recorder) -> None:
    closed: list[bool] = []

    class Stream:
        def __iter__(self) -> Iterator[bytes]:
            yield from (b"one", b"two", b"three")

        def close(self) -> None:
            closed.append(True)

    def streams(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])
        return Stream()

    result = ShadowtapWSGIMiddleware(streams, capturer=recorder.capturer)(
        _environ(), Server().start_response
    )
    iterator = iter(result)
    assert next(iterator) == b"one"
    result.close()  # type: ignore[attr-defined]  # the server gives up after one chunk
    assert closed == [True]
    assert recorder.envelopes[0].response is not None
    assert recorder.envelopes[0].response.body == b"one"


def test_file_wrapper_responses_are_returned_untouched(recorder: Recorder) -> None:
    def sends_file(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/pdf")])
        return environ["wsgi.file_wrapper"](io.BytesIO(b"%PDF"))

    result = ShadowtapWSGIMiddleware(sends_file, capturer=recorder.capturer)(
        _environ(), Server().start_response
    )
    assert isinstance(result, FileWrapper)
    (env,) = recorder.envelopes
    assert env.meta["response_body_skipped"] == "file-wrapper"


def test_app_exception_propagates_and_is_captured(recorder: Recorder) -> None:
    error = ValueError("bad")

    def raises(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        raise error

    with pytest.raises(ValueError) as info:
        ShadowtapWSGIMiddleware(raises, capturer=recorder.capturer)(
            _environ(), Server().start_response
        )
    assert info.value is error
    (env,) = recorder.envelopes
    assert (
        env.response is not None
        and env.response.status == 500
        and env.meta["app_error"] == "ValueError"
    )


def test_upload_over_the_limit_reaches_the_app_and_is_truncated(
    make_recorder: type[Recorder],
) -> None:
    recorder = make_recorder({"max_request_body": 1024})
    payload = b"q" * 100_000
    _, body = _call(ShadowtapWSGIMiddleware(echo, capturer=recorder.capturer), _environ(payload))
    assert body == b"got:" + payload
    (env,) = recorder.envelopes
    assert env.truncated and env.body == b"" and env.body_size == 100_000


def test_path_without_raw_uri_is_reencoded_from_path_info(recorder: Recorder) -> None:
    environ = _environ(RAW_URI="")
    environ["PATH_INFO"] = "/a b/ü".encode().decode("latin-1")
    _call(ShadowtapWSGIMiddleware(echo, capturer=recorder.capturer), environ)
    assert recorder.envelopes[0].path == "/a%20b/%C3%BC"


def _answers_401(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("401 Unauthorized", [("Content-Type", "text/plain")])  # before any read
    return [b"who are you?"]


def test_body_the_app_never_read_keeps_its_declared_size_and_says_so(recorder: Recorder) -> None:
    environ = _environ(b"x" * 30)
    _call(ShadowtapWSGIMiddleware(_answers_401, capturer=recorder.capturer), environ)
    assert environ["wsgi.input"]._stream.tell() == 0  # nothing read on the app's behalf
    (env,) = recorder.envelopes
    assert (env.body, env.body_size, env.truncated) == (b"", 30, True)
    assert env.meta["request_body_skipped"] == "not-read"


def test_body_the_app_read_only_in_part_is_marked_too(recorder: Recorder) -> None:
    def reads_ten(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        environ["wsgi.input"].read(10)
        start_response("422 Unprocessable Entity", [])
        return []

    _call(ShadowtapWSGIMiddleware(reads_ten, capturer=recorder.capturer), _environ(b"x" * 30))
    (env,) = recorder.envelopes
    assert (env.body, env.body_size, env.truncated) == (b"", 30, True)
    assert env.meta["request_body_skipped"] == "not-read"


def test_client_disconnect_mid_body_is_marked(recorder: Recorder) -> None:
    # The server's stream ends early (gunicorn returns what it got when the peer closes).
    environ = _environ(b"x" * 30, **{"wsgi.input": io.BytesIO(b"x" * 12)})
    _call(ShadowtapWSGIMiddleware(echo, capturer=recorder.capturer), environ)
    (env,) = recorder.envelopes
    assert (env.body, env.body_size, env.truncated) == (b"", 30, True)
    assert env.meta["request_body_skipped"] == "client-disconnected"


def test_client_disconnect_raised_by_the_server_is_marked_and_propagates(
    recorder: Recorder,
) -> None:
    class Broken(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            raise OSError("peer went away")

    def reads(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        environ["wsgi.input"].read()
        return []

    with pytest.raises(OSError, match="peer went away"):
        _call(
            ShadowtapWSGIMiddleware(reads, capturer=recorder.capturer),
            _environ(b"x" * 30, **{"wsgi.input": Broken()}),
        )
    (env,) = recorder.envelopes
    assert (env.body, env.body_size, env.truncated) == (b"", 30, True)
    assert env.meta["request_body_skipped"] == "client-disconnected"


def test_request_without_a_body_is_complete_when_the_app_reads_nothing(recorder: Recorder) -> None:
    environ = _environ(b"", REQUEST_METHOD="GET")
    _call(ShadowtapWSGIMiddleware(_answers_401, capturer=recorder.capturer), environ)
    (env,) = recorder.envelopes
    assert (env.body, env.body_size, env.truncated) == (b"", 0, False)
    assert "request_body_skipped" not in env.meta
