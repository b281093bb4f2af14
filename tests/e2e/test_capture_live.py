"""Real FastAPI, Flask and Django apps under real servers, and a real nginx `mirror`, feed
the captured topic; the records match what was sent, byte for byte where HTTP allows."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shadowtap.config import Settings
from shadowtap.devkafka import free_port
from shadowtap.envelope import Envelope, decode
from shadowtap.kafka import create_topics, make_consumer

ROOT = Path(__file__).resolve().parents[2]
BODY = '{"name": "Zoë", "bytes": "\\u0000\\u00ff", "n": 1}'.encode() + b"\x00\xfe"


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWTAP_")}
    env.update(
        SHADOWTAP_BOOTSTRAP=settings.kafka.bootstrap,
        SHADOWTAP_TOPICS_CAPTURED=settings.topics.captured,
        SHADOWTAP_CAPTURE_SOURCE="e2e",
        SHADOWTAP_CAPTURE_MAX_REQUEST_BODY="65536",
        SHADOWTAP_CAPTURE_FLUSH_TIMEOUT_S="5",
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


@pytest.fixture
def serve(settings: Settings, tmp_path: Path) -> Iterator[object]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(cmd: list[str], port: int, env: dict[str, str], name: str) -> str:
        log = (tmp_path / f"{name}.log").open("wb")
        with log:
            procs.append(
                subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert procs[-1].poll() is None, (tmp_path / f"{name}.log").read_text()
            try:
                httpx.get(base + "/ready", timeout=1)
                return base
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"{name} did not start: {(tmp_path / f'{name}.log').read_text()}")

    yield start
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _records(settings: Settings, want: int, timeout: float = 30) -> list[Envelope]:
    consumer = make_consumer(settings.kafka, f"e2e-{os.getpid()}-{time.monotonic_ns()}")
    consumer.subscribe([settings.topics.captured])
    out: list[Envelope] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < want and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                env = decode(msg.value())
                if env.path != "/ready":
                    out.append(env)
    finally:
        consumer.close()
    return out


def _server_command(framework: str, port: int) -> list[str]:
    if framework == "fastapi":
        return [sys.executable, "-m", "uvicorn", "tests.e2e.liveapps:fastapi_app",
                "--port", str(port), "--log-level", "warning"]  # fmt: skip
    return [sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}",
            f"tests.e2e.liveapps:{framework}_app"]  # fmt: skip


@pytest.mark.parametrize("framework", ["fastapi", "flask", "django"])
def test_framework_requests_arrive_in_kafka_as_sent(
    serve: object, settings: Settings, framework: str
) -> None:
    create_topics(settings)
    port = free_port()
    base = serve(
        _server_command(framework, port), port, _env(settings, LIVEAPP=framework), framework
    )  # type: ignore[operator]
    headers = [
        ("Content-Type", "application/octet-stream"),
        ("X-Dup", "1"),
        ("X-Dup", "2"),
        ("X-Name", "Zoë".encode("latin-1")),
        ("Authorization", "Bearer production-secret"),
    ]
    with httpx.Client(base_url=base, timeout=10) as client:
        echo = client.post("/echo?a=1&a=2&q=%ZZ&e=%C3%A9", content=BODY, headers=headers)
        assert echo.status_code == 200 and echo.content == b"echo:" + BODY
        stream = client.get("/stream")
        assert stream.content == b"".join(b"chunk-%d\n" % i for i in range(5))
        big = b"B" * (5 * 1024 * 1024)
        uploaded = client.post(
            "/echo", content=big, headers={"Content-Type": "application/octet-stream"}
        )
        assert uploaded.content == b"echo:" + big
        assert client.get("/boom").status_code == 500  # last: servers may close the connection
    by_path: dict[str, list[Envelope]] = {}
    for env in _records(settings, 4):
        by_path.setdefault(env.path, []).append(env)

    posted = next(e for e in by_path["/echo"] if not e.truncated)
    assert posted.method == "POST" and posted.source == "e2e"
    assert posted.query == "a=1&a=2&q=%ZZ&e=%C3%A9"
    assert posted.body == BODY and posted.body_size == len(BODY)
    values = {k.lower(): v for k, v in posted.headers}
    assert values["authorization"] == "[redacted]"
    assert values["x-name"] == "Zoë"
    if framework == "fastapi":  # ASGI keeps every header line; WSGI servers join duplicates
        assert [v for k, v in posted.headers if k == "x-dup"] == ["1", "2"]
    else:
        assert values["x-dup"].replace(" ", "") == "1,2"
    assert posted.response is not None
    assert posted.response.status == 200 and posted.response.body == b"echo:" + BODY

    (truncated,) = [e for e in by_path["/echo"] if e.truncated]
    assert truncated.body == b"" and truncated.body_size == len(big)

    (streamed,) = by_path["/stream"]
    assert streamed.response is not None and streamed.response.status == 200
    if framework != "django":  # Django hands middleware a streaming response unread
        assert streamed.response.body == b"".join(b"chunk-%d\n" % i for i in range(5))

    (boom,) = by_path["/boom"]
    assert boom.response is not None and boom.response.status == 500


NGINX_CONF = """
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{upstream};
        location / {{ return 200 "upstream ok"; }}
    }}
    server {{
        listen 127.0.0.1:{front};
        location / {{
            mirror /_shadowtap;
            mirror_request_body on;
            proxy_pass http://127.0.0.1:{upstream};
        }}
        location = /_shadowtap {{
            internal;
            proxy_pass http://127.0.0.1:{collector}$request_uri;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Shadowtap-Secret s3cret;
        }}
    }}
}}
"""


@pytest.mark.skipif(
    shutil.which("nginx") is None, reason="nginx is not installed (apt-get install nginx-light)"
)
def test_nginx_mirror_feeds_the_collector(
    serve: object, settings: Settings, tmp_path: Path
) -> None:
    create_topics(settings)
    collector, upstream, front = free_port(), free_port(), free_port()
    env = _env(settings, SHADOWTAP_CAPTURE_COLLECTOR_SECRET="s3cret")
    cmd = [
        sys.executable,
        "-m",
        "shadowtap.cli",
        "collect",
        "--port",
        str(collector),
        "--loglevel",
        "warning",
    ]
    collector_url = serve(cmd, collector, env, "collector")  # type: ignore[operator]
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(tmp=tmp_path, upstream=upstream, front=front, collector=collector)
    )
    nginx = serve(
        ["nginx", "-c", str(conf), "-e", str(tmp_path / "error.log")],
        front,
        os.environ.copy(),
        "nginx",
    )  # type: ignore[operator]

    with httpx.Client(timeout=10) as client:
        answer = client.post(
            f"{nginx}/api/orders?x=1&x=2",
            content=b'{"sku": 7}',
            headers={"Host": "shop.example", "Content-Type": "application/json"},
        )
        assert answer.text == "upstream ok"
        # An Envoy/Istio-style copy straight to the collector, host suffixed with -shadow.
        shadow = client.get(
            f"{collector_url}/api/items",
            headers={"Host": "api.example.com-shadow", "X-Shadowtap-Secret": "s3cret"},
        )
        assert shadow.status_code == 204
        refused = client.get(f"{collector_url}/api/secretless", headers={"Host": "x"})
        assert refused.status_code == 403

    records = {e.path: e for e in _records(settings, 2)}
    mirrored = records["/api/orders"]
    assert (mirrored.method, mirrored.query, mirrored.host, mirrored.client) == (
        "POST",
        "x=1&x=2",
        "shop.example",
        "127.0.0.1",
    )
    assert mirrored.body == b'{"sku": 7}'
    assert mirrored.meta["capture"] == "collector"
    assert all(k.lower() != "x-shadowtap-secret" for k, _ in mirrored.headers)
    assert records["/api/items"].host == "api.example.com"
    assert "/api/secretless" not in records
