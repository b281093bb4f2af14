"""Real FastAPI, Flask and Django apps, under real servers, captured into real Kafka.

Each app (tests/e2e/apps) runs in a subprocess on a loopback port, configured through
``SHADOWTAP_*`` variables (and, for Django, ``settings.SHADOWTAP`` in a settings module
written into a temporary directory): FastAPI under uvicorn, Flask under gunicorn, Django
under gunicorn (WSGI) and under uvicorn (ASGI). Requests go out with httpx; the records are
read back from the captured topic and compared with what was sent, byte for byte: header
values are compared as bytes (latin-1, the lossless decoding capture uses). The responses
the client gets through the middleware are compared with the same routes served without it.

One server and one topic per framework (module-scoped); each test marks its requests with a
unique ``X-Test-Case`` header and waits for its own records.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from shadowtap.config import KafkaSettings, Settings
from shadowtap.devkafka import free_port
from shadowtap.envelope import REDACTED, Envelope, decode
from shadowtap.kafka import create_topics, make_consumer
from tests.e2e.apps import STREAM_CHUNKS
from tests.e2e.apps.servers import capture_env, start_server, stop_server

FRAMEWORKS = ["fastapi", "flask", "django-wsgi", "django-asgi"]
LIMIT = 65536

# JSON with non-ASCII text, followed by bytes that are not UTF-8 at all.
BODY = '{"name": "Zoë ☃ 日本", "emoji": "🚀", "n": 1}'.encode() + b"\x00\xff\xfe\x80"
QUERY = "a=1&a=2&b=&q=%ZZ&e=%C3%A9&sp=x+y&pct=%"
DJANGO_SETTINGS = """
SECRET_KEY = "e2e-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "tests.e2e.apps.django_views"
INSTALLED_APPS = []
MIDDLEWARE = ["shadowtap.producers.django.ShadowtapDjangoMiddleware"]
DATA_UPLOAD_MAX_MEMORY_SIZE = None
USE_TZ = True
SHADOWTAP = {{"capture": {{"source": "{source}", "exclude_paths": ["/ready", "/bare/*"]}}}}
"""


@dataclass
class Live:
    """A running app and a consumer of its captured topic."""

    framework: str
    base: str
    consumer: object
    seen: dict[str, list[Envelope]] = field(default_factory=dict)

    @property
    def is_asgi(self) -> bool:
        return self.framework in ("fastapi", "django-asgi")

    @property
    def is_django(self) -> bool:
        return self.framework.startswith("django")

    def records(self, case: str, want: int, timeout: float = 30) -> list[Envelope]:
        """The records of one test case, oldest first, once ``want`` of them arrived."""
        deadline = time.monotonic() + timeout
        while len(self.seen.get(case, ())) < want and time.monotonic() < deadline:
            msg = self.consumer.poll(0.5)  # type: ignore[attr-defined]
            if msg is None or msg.error():
                continue
            env = decode(msg.value())
            self.seen.setdefault(header(env.headers, "x-test-case") or "", []).append(env)
        got = sorted(self.seen.get(case, ()), key=lambda e: e.ts)
        assert len(got) == want, f"{len(got)} records for {case}, expected {want}"
        return got


def header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name), None)


def headers_named(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in headers if k.lower() == name]


def _server(framework: str, port: int) -> list[str]:
    uvicorn = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port)]
    gunicorn = [sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}"]
    return {
        "fastapi": [*uvicorn, "--log-level", "warning", "tests.e2e.apps.fastapi_app:app"],
        "flask": [*gunicorn, "tests.e2e.apps.flask_app:app"],
        "django-wsgi": [*gunicorn, "tests.e2e.apps.django_wsgi:application"],
        "django-asgi": [
            *uvicorn,
            "--log-level",
            "warning",
            "tests.e2e.apps.django_asgi:application",
        ],
    }[framework]


@pytest.fixture(scope="module", params=FRAMEWORKS)
def live(
    request: pytest.FixtureRequest,
    kafka_settings: KafkaSettings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Live]:
    framework: str = request.param
    tmp = tmp_path_factory.mktemp(framework)
    topic = f"captured-{framework}-{uuid.uuid4().hex[:8]}"
    settings = Settings.load(
        env={},
        overrides={
            "kafka": {"bootstrap": kafka_settings.bootstrap, "client_id": "shadowtap-tests"},
            "topics": {"captured": topic, "partitions": 3},
        },
    )
    create_topics(settings)
    env = capture_env(
        kafka_settings.bootstrap, topic, SHADOWTAP_CAPTURE_MAX_REQUEST_BODY=str(LIMIT)
    )
    if framework.startswith("django"):
        module = f"e2e_settings_{uuid.uuid4().hex[:8]}"
        (tmp / f"{module}.py").write_text(DJANGO_SETTINGS.format(source=framework))
        env["DJANGO_SETTINGS_MODULE"] = module
        env["PYTHONPATH"] = os.pathsep.join((str(tmp), env["PYTHONPATH"]))
    else:
        env["SHADOWTAP_CAPTURE_SOURCE"] = framework
        env["SHADOWTAP_CAPTURE_EXCLUDE_PATHS"] = '["/ready", "/bare/*"]'
    port = free_port()
    proc = start_server(_server(framework, port), port, env, tmp / "server.log")
    consumer = make_consumer(settings.kafka, f"e2e-{topic}")
    try:
        consumer.subscribe([topic])
        yield Live(framework, f"http://127.0.0.1:{port}", consumer)
    finally:
        consumer.close()
        stop_server(proc)


def _case() -> str:
    return uuid.uuid4().hex


def test_post_is_recorded_byte_for_byte_with_the_response(live: Live) -> None:
    case = _case()
    sent_headers = [
        ("Content-Type", b"application/json; charset=utf-8"),
        ("X-Test-Case", case.encode()),
        ("X-Dup", b"one"),
        ("X-Dup", b"two"),
        ("X-Latin1", "Zoë café".encode("latin-1")),
        ("X-Utf8", "Zoë ☃".encode()),
        ("Authorization", b"Bearer production-secret"),
        ("Cookie", b"session=abc123; theme=dark"),
        ("X-Api-Key", b"k-123"),
    ]
    with httpx.Client(base_url=live.base, timeout=10) as client:
        answer = client.post(f"/echo?{QUERY}", content=BODY, headers=sent_headers)
        bare = client.post(f"/bare/echo?{QUERY}", content=BODY, headers=sent_headers)
    assert answer.status_code == bare.status_code == 201
    assert answer.content == bare.content == b"echo:" + BODY
    assert answer.headers["x-seen-query"] == bare.headers["x-seen-query"] == QUERY

    (rec,) = live.records(case, 1)
    assert (rec.method, rec.path, rec.query) == ("POST", "/echo", QUERY)
    assert rec.source == live.framework
    assert rec.body == BODY and rec.body_size == len(BODY) and not rec.truncated
    assert rec.client == "127.0.0.1"
    assert rec.host == live.base.removeprefix("http://")

    got = rec.headers

    def raw(name: str) -> list[bytes]:
        return [v.encode("latin-1") for v in headers_named(got, name)]

    assert raw("content-type") == [b"application/json; charset=utf-8"]
    assert raw("x-latin1") == ["Zoë café".encode("latin-1")]
    assert raw("x-utf8") == ["Zoë ☃".encode()]
    if live.framework == "fastapi":  # ASGI keeps every header line in order
        assert raw("x-dup") == [b"one", b"two"]
    else:  # WSGI servers and Django's ASGIRequest join repeated headers with ","
        assert raw("x-dup") == [b"one,two"]
    for name in ("authorization", "cookie", "x-api-key"):
        assert headers_named(got, name) == [REDACTED], name
    assert "production-secret" not in repr(rec) and "abc123" not in repr(rec)

    assert rec.response is not None
    assert rec.response.status == 201
    assert rec.response.body == b"echo:" + BODY
    assert header(rec.response.headers, "x-seen-query") == QUERY
    assert headers_named(rec.response.headers, "set-cookie") == [REDACTED]
    assert rec.response.duration_ms >= 0


@pytest.mark.parametrize(
    "raw_path", ["/caf%C3%A9/x%2Fy", "/%E2%82%AC/%ZZ"], ids=["latin1-range", "beyond-latin1"]
)
def test_percent_encoded_path_is_recorded_as_sent(live: Live, raw_path: str) -> None:
    case = _case()
    with httpx.Client(base_url=live.base, timeout=10) as client:
        answer = client.get(raw_path, headers={"X-Test-Case": case})
        bare = client.get(f"/bare{raw_path}", headers={"X-Test-Case": "bare"})
    assert answer.status_code == bare.status_code == 404
    (rec,) = live.records(case, 1)
    assert rec.path == raw_path
    assert rec.response is not None and rec.response.status == 404


def test_app_error_is_captured_and_the_error_response_is_unchanged(live: Live) -> None:
    case = _case()
    # A fresh connection each: a server may close the connection after a 500.
    bare = httpx.get(f"{live.base}/bare/boom", headers={"X-Test-Case": "bare"}, timeout=10)
    answer = httpx.get(f"{live.base}/boom", headers={"X-Test-Case": case}, timeout=10)
    assert answer.status_code == bare.status_code == 500
    assert answer.content == bare.content
    assert answer.headers.get("content-type") == bare.headers.get("content-type")

    (rec,) = live.records(case, 1)
    assert rec.method == "GET" and rec.path == "/boom"
    assert rec.response is not None and rec.response.status == 500
    assert rec.response.body == answer.content
    if live.framework == "fastapi":  # the exception reached the middleware and went on up
        assert rec.meta.get("app_error") == "RuntimeError"


def test_streaming_response_passes_through_untouched(live: Live) -> None:
    case = _case()
    expected = b"".join(STREAM_CHUNKS)
    with httpx.Client(base_url=live.base, timeout=10) as client:
        bare = client.get("/bare/stream", headers={"X-Test-Case": "bare"})
        with client.stream("GET", "/stream", headers={"X-Test-Case": case}) as answer:
            received = list(answer.iter_raw())
    assert answer.status_code == bare.status_code == 200
    assert b"".join(received) == bare.content == expected
    for name in ("content-type", "transfer-encoding", "content-length"):
        assert answer.headers.get(name) == bare.headers.get(name), name
    assert answer.headers.get("transfer-encoding") == "chunked"

    (rec,) = live.records(case, 1)
    assert rec.response is not None and rec.response.status == 200
    if live.is_django:  # Django middleware never iterates a streaming response
        assert rec.response.body == b"" and rec.response.truncated
    else:
        assert rec.response.body == expected and not rec.response.truncated


def test_large_upload_reaches_the_app_whole_and_the_record_is_truncated(live: Live) -> None:
    case = _case()
    big = os.urandom(1024) * (5 * 1024)  # 5 MB against a 64 KB capture limit
    want = {"size": len(big), "sha256": hashlib.sha256(big).hexdigest()}
    with httpx.Client(base_url=live.base, timeout=30) as client:
        answer = client.post(
            "/upload",
            content=big,
            headers={"X-Test-Case": case, "Content-Type": "application/octet-stream"},
        )
        # Without Content-Length (chunked request body): the limit is hit while streaming.
        chunked = client.post(
            "/upload",
            content=iter([big[i : i + 256 * 1024] for i in range(0, len(big), 256 * 1024)]),
            headers={"X-Test-Case": case, "Content-Type": "application/octet-stream"},
        )
    assert answer.status_code == 200 and answer.json() == want
    if live.framework == "django-wsgi":
        # gunicorn's WSGI environ has no Content-Length for a chunked body, and Django reads
        # a request without one as empty: the app itself gets nothing, with or without us.
        assert chunked.status_code == 200
    else:
        assert chunked.status_code == 200 and chunked.json() == want

    records = live.records(case, 2)
    for rec in records:
        assert rec.path == "/upload" and rec.body == b""
        assert rec.response is not None and rec.response.status == 200
    (sized,) = [r for r in records if header(r.headers, "content-length") is not None]
    (streamed,) = [r for r in records if r is not sized]
    assert sized.truncated and sized.body_size == len(big)
    assert json.loads(sized.response.body) == want  # type: ignore[union-attr]
    if live.framework == "django-wsgi":  # Django never read it: the record says so
        assert streamed.body_size == 0 and streamed.truncated
        assert streamed.meta["request_body_skipped"] == "not-read"
    else:
        assert streamed.truncated and streamed.body_size == len(big)


def test_body_the_app_never_read_is_recorded_as_missing_with_its_size(live: Live) -> None:
    # An auth check that answers 401 before reading the body: the record must not pass
    # the request off as an empty POST.
    case = _case()
    body = b'{"amount": 30, "to": "acct-9"}'
    headers = {"X-Test-Case": case, "Content-Type": "application/json"}
    with httpx.Client(base_url=live.base, timeout=10) as client:
        answer = client.post("/deny", content=body, headers=headers)
        bare = client.post("/bare/deny", content=body, headers=headers)
    assert answer.status_code == bare.status_code == 401
    (rec,) = live.records(case, 1)
    assert (rec.body, rec.body_size, rec.truncated) == (b"", len(body), True)
    assert rec.meta["request_body_skipped"] == "not-read"
    assert rec.response is not None and rec.response.status == 401


def test_client_gone_mid_body_is_recorded_as_missing_with_its_size(live: Live) -> None:
    if live.framework == "django-asgi":
        pytest.skip("Django's ASGI handler reads the whole body before any middleware runs")
    case = _case()
    host, port = live.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /upload HTTP/1.1\r\nHost: %s\r\nX-Test-Case: %s\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n"
            % (host.encode(), case.encode())
            + b"x" * 100
        )
        time.sleep(0.2)  # let the app start reading before the client goes away
    (rec,) = live.records(case, 1)
    assert (rec.body, rec.body_size, rec.truncated) == (b"", 1000, True)
    assert rec.meta["request_body_skipped"] == "client-disconnected"


@pytest.fixture
def kafka_down_app(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The FastAPI app with its bootstrap at a port where nothing listens."""
    port, closed = free_port(), free_port()
    log = tmp_path / "server.log"
    env = capture_env(f"127.0.0.1:{closed}", "captured-nowhere", SHADOWTAP_CAPTURE_SOURCE="down")
    env["SHADOWTAP_CAPTURE_EXCLUDE_PATHS"] = '["/ready", "/bare/*"]'
    proc = start_server(_server("fastapi", port), port, env, log)
    try:
        yield f"http://127.0.0.1:{port}", log
    finally:
        stop_server(proc)


def _drive_with_kafka_down(base: str) -> None:
    """A few seconds of ordinary traffic; every answer must equal the bare app's."""
    with httpx.Client(base_url=base, timeout=10) as client:
        for _ in range(15):
            for method, route, body in (("POST", "/echo?a=1", BODY), ("GET", "/stream", b"")):
                got = client.request(method, route, content=body)
                bare = client.request(method, f"/bare{route}", content=body)
                assert (got.status_code, got.content) == (bare.status_code, bare.content)
            time.sleep(0.2)  # pacing, not a measurement: let librdkafka retry meanwhile
        assert client.get("/boom").status_code == 500


def test_kafka_down_changes_nothing_for_the_app(kafka_down_app: tuple[str, Path]) -> None:
    base, _log = kafka_down_app
    _drive_with_kafka_down(base)


def test_kafka_down_is_logged_at_most_once_per_interval(
    kafka_down_app: tuple[str, Path],
) -> None:
    base, log = kafka_down_app
    _drive_with_kafka_down(base)
    refused = [line for line in log.read_text().splitlines() if "Connection refused" in line]
    assert len(refused) <= 2, f"{len(refused)} lines:\n" + "\n".join(refused[:5])
