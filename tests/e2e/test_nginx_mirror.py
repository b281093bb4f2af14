"""A real nginx ``mirror`` feeds ``shadowtap collect``, which publishes to real Kafka.

nginx (Debian's nginx-light) runs in the foreground with a config written into a temporary
directory, the same shape as deploy/nginx/shadowtap-mirror.conf: ``location /`` proxies to a
small upstream app and mirrors every request, body included, to an internal location that
forwards it to the collector with the original Host, the client address and the shared
secret. Envoy/Istio-style copies (Host suffixed with ``-shadow``) are sent straight to the
collector. The captured topic has one partition, so "nothing was recorded before this later
request" is a fact, not a timing guess.
"""

from __future__ import annotations

import shutil
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from shadowtap.config import KafkaSettings, Settings
from shadowtap.devkafka import free_port
from shadowtap.envelope import Envelope, decode
from shadowtap.kafka import create_topics, make_consumer
from tests.e2e.apps.servers import capture_env, start_server, stop_server

NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
SECRET = "e2e-collector-secret"
LIMIT = 65536

pytestmark = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (Debian: apt-get install nginx-light)"
)

NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 128; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    client_max_body_size 10m;

    upstream app {{ server 127.0.0.1:{upstream}; keepalive 8; }}
    upstream shadowtap_collector {{ server 127.0.0.1:{collector}; keepalive 8; }}

    server {{
        listen 127.0.0.1:{front};

        location / {{
            mirror /_shadowtap;
            mirror_request_body on;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_pass http://app;
        }}

        location = /_shadowtap {{
            internal;
            proxy_pass http://shadowtap_collector$request_uri;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Shadowtap-Secret {secret};
            proxy_connect_timeout 200ms;
            proxy_read_timeout 1s;
        }}
    }}
}}
"""


@dataclass
class Stack:
    nginx: str
    collector: str
    metrics: str
    consumer: object
    seen: dict[str, list[Envelope]] = field(default_factory=dict)

    def records(self, case: str, want: int, timeout: float = 30) -> list[Envelope]:
        deadline = time.monotonic() + timeout
        while len(self.seen.get(case, ())) < want and time.monotonic() < deadline:
            msg = self.consumer.poll(0.5)  # type: ignore[attr-defined]
            if msg is None or msg.error():
                continue
            env = decode(msg.value())
            case_of = next((v for k, v in env.headers if k.lower() == "x-test-case"), "")
            self.seen.setdefault(case_of, []).append(env)
        got = self.seen.get(case, [])
        assert len(got) == want, f"{len(got)} records for {case}, expected {want}"
        return got


@pytest.fixture(scope="module")
def stack(
    kafka_settings: KafkaSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("nginx")
    topic = f"captured-nginx-{uuid.uuid4().hex[:8]}"
    settings = Settings.load(
        env={},
        overrides={
            "kafka": {"bootstrap": kafka_settings.bootstrap, "client_id": "shadowtap-tests"},
            "topics": {"captured": topic, "partitions": 1},
        },
    )
    create_topics(settings)
    upstream, collector, front, metrics = free_port(), free_port(), free_port(), free_port()
    env = capture_env(
        "127.0.0.1:1",  # overridden by --bootstrap below: the flag must win
        topic,
        SHADOWTAP_CAPTURE_COLLECTOR_SECRET=SECRET,
        SHADOWTAP_CAPTURE_MAX_REQUEST_BODY=str(LIMIT),
        SHADOWTAP_CAPTURE_EXCLUDE_PATHS='["/ready"]',
        SHADOWTAP_CAPTURE_SOURCE="edge",
    )
    conf = tmp / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            tmp=tmp, upstream=upstream, collector=collector, front=front, secret=SECRET
        )
    )
    procs = []
    consumer = make_consumer(settings.kafka, f"e2e-{topic}")
    try:
        procs.append(
            start_server(
                [sys.executable, "-m", "tests.e2e.apps.upstream", str(upstream)],
                upstream, env, tmp / "upstream.log",
            )
        )  # fmt: skip
        collect = [sys.executable, "-m", "shadowtap.cli", "collect", "--port", str(collector)]
        collect += ["--bootstrap", kafka_settings.bootstrap, "--loglevel", "warning"]
        collect += ["--metrics-port", str(metrics)]
        procs.append(start_server(collect, collector, env, tmp / "collector.log"))
        nginx = [str(NGINX), "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")]
        procs.append(start_server(nginx, front, env, tmp / "nginx.log"))
        consumer.subscribe([topic])
        yield Stack(
            f"http://127.0.0.1:{front}",
            f"http://127.0.0.1:{collector}",
            f"http://127.0.0.1:{metrics}/metrics",
            consumer,
        )
    finally:
        consumer.close()
        for proc in reversed(procs):
            stop_server(proc)


def test_nginx_mirror_records_what_the_client_sent(stack: Stack) -> None:
    case = uuid.uuid4().hex
    body = '{"sku": 7, "note": "Zoë ☃"}'.encode()
    big = bytes(range(256)) * 1024  # 256 KB: nginx buffers it to disk, capture truncates
    with httpx.Client(base_url=stack.nginx, timeout=10) as client:
        posted = client.post(
            "/api/orders?x=1&x=2&q=%ZZ",
            content=body,
            headers={
                "Host": "shop.example",
                "Content-Type": "application/json",
                "X-Test-Case": case,
                "Authorization": "Bearer production-secret",
            },
        )
        fetched = client.get("/api/items/caf%C3%A9", headers={"X-Test-Case": case})
        uploaded = client.put("/api/blob", content=big, headers={"X-Test-Case": case})
    # The client gets the upstream's answer, untouched by the mirror.
    assert posted.text == f"upstream:POST /api/orders?x=1&x=2&q=%ZZ {len(body)}"
    assert fetched.text == "upstream:GET /api/items/caf%C3%A9 0"
    assert uploaded.text == f"upstream:PUT /api/blob {len(big)}"

    records = {r.path: r for r in stack.records(case, 3)}
    order = records["/api/orders"]
    assert (order.method, order.query, order.host, order.client, order.scheme) == (
        "POST",
        "x=1&x=2&q=%ZZ",
        "shop.example",
        "127.0.0.1",
        "http",
    )
    assert order.body == body and order.body_size == len(body) and not order.truncated
    assert order.source == "edge" and order.meta["capture"] == "collector"
    assert order.response is None  # a mirror copy carries no production response
    names = {k.lower(): v for k, v in order.headers}
    assert names["authorization"] == "[redacted]"
    assert names["content-type"] == "application/json"
    assert "x-shadowtap-secret" not in names

    item = records["/api/items/caf%C3%A9"]
    assert (item.method, item.query, item.body, item.body_size) == ("GET", "", b"", 0)
    # nginx's $host is the Host header without its port (lowercased); $http_host keeps it.
    assert item.host == "127.0.0.1"

    blob = records["/api/blob"]
    assert blob.method == "PUT" and blob.truncated and blob.body == b""
    assert blob.body_size == len(big)


@pytest.mark.parametrize(
    ("sent", "recorded"),
    [
        ("api.example.com-shadow", "api.example.com"),
        ("api.example.com-shadow:8443", "api.example.com:8443"),
    ],
)
def test_envoy_istio_shadow_host_is_undone(stack: Stack, sent: str, recorded: str) -> None:
    case = uuid.uuid4().hex
    answer = httpx.post(
        f"{stack.collector}/v1/quote?ccy=EUR",
        content=b'{"amount": 10}',
        headers={
            "Host": sent,
            "X-Shadowtap-Secret": SECRET,
            "X-Forwarded-For": "10.1.2.3, 10.0.0.1",
            "X-Test-Case": case,
        },
        timeout=10,
    )
    assert answer.status_code == 204 and answer.content == b""
    (rec,) = stack.records(case, 1)
    assert (rec.method, rec.path, rec.query, rec.body) == (
        "POST",
        "/v1/quote",
        "ccy=EUR",
        b'{"amount": 10}',
    )
    assert rec.host == recorded and rec.client == "10.1.2.3"
    assert [v for k, v in rec.headers if k.lower() == "host"] == [recorded]


def test_request_without_the_secret_is_refused_and_not_recorded(stack: Stack) -> None:
    refused = uuid.uuid4().hex
    later = uuid.uuid4().hex
    with httpx.Client(base_url=stack.collector, timeout=10) as client:
        missing = client.post("/api/x", content=b"a", headers={"X-Test-Case": refused})
        wrong = client.post(
            "/api/x",
            content=b"b",
            headers={"X-Test-Case": refused, "X-Shadowtap-Secret": SECRET + "x"},
        )
        accepted = client.post(
            "/api/x", content=b"c", headers={"X-Test-Case": later, "X-Shadowtap-Secret": SECRET}
        )
    assert missing.status_code == wrong.status_code == 403
    assert accepted.status_code == 204
    # One partition, one producer: had the refused requests been queued, they would be
    # read before the accepted one that followed them.
    stack.records(later, 1)
    assert refused not in stack.seen


def test_smuggling_shaped_request_is_refused_counted_and_not_recorded(stack: Stack) -> None:
    refused, later = uuid.uuid4().hex, uuid.uuid4().hex
    port = int(stack.collector.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/x HTTP/1.1\r\nHost: a\r\nX-Shadowtap-Secret: %s\r\n"
            b"X-Test-Case: %s\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabc"
            % (SECRET.encode(), refused.encode())
        )
        sock.shutdown(socket.SHUT_WR)
        answer = b"".join(iter(lambda: sock.recv(4096), b""))
    assert answer.startswith(b"HTTP/1.1 400 Bad Request")
    accepted = httpx.post(
        f"{stack.collector}/api/x",
        content=b"c",
        headers={"X-Test-Case": later, "X-Shadowtap-Secret": SECRET},
        timeout=10,
    )
    assert accepted.status_code == 204
    stack.records(later, 1)  # one partition: a recorded refusal would have come first
    assert refused not in stack.seen
    text = httpx.get(stack.metrics, timeout=10).text
    assert (
        'shadowtap_capture_dropped_total{reason="rejected-conflicting-content-length",'
        'source="edge"} 1.0' in text
    ), text
