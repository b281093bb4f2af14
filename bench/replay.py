"""Replay throughput: deliveries/s from a pre-filled topic to nginx answering 204.

    python bench/replay.py [--records 60000] [--in-flight 64] [--workers 1,2] [--answer json]

Starts nginx (Debian's /usr/sbin/nginx, temp config, foreground, one worker process) on a
loopback port, measures its ceiling with ``wrk`` for reference, fills a mirror topic, then
runs 1 and 2 ``shadowtap replay`` worker processes (each with its own consumer group on the
same topic) and reads nginx's request counter (stub_status) every 100 ms. The rate is taken
between 10 % and 90 % of the records, so group join and the tail are not counted.

``--answer json``: nginx answers a 1 KB JSON body and every record carries a production
response, so each result holds two bodies and the replayer scrubs the target's (issue 11).
Run it with PYTHONPATH at an older tree for the before/after cost of that.

Broker: SHADOWTAP_BOOTSTRAP, else a local one started for the run (shadowtap.devkafka).
Goal (issue 5): ≥ 3,000 deliveries/s per worker, 2 workers ≥ 1.7 × one. Also printed:
deliveries per CPU-second of the workers (librdkafka threads included), which shows whether
2 workers scale when the machine has the cores for them (nginx and the broker run here too).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import orjson

from shadowtap.config import Settings
from shadowtap.devkafka import resolve_broker
from shadowtap.envelope import Envelope, Response, encode
from shadowtap.kafka import create_topics, make_producer

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location = /nginx_status {{ stub_status; }}
        location / {{ {answer} }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# ``--answer json``: what a profile endpoint answers (1 KB, an e-mail and a phone in it), so
# the results carry a body the replayer scrubs before it stores it, and a production response.
JSON_ANSWER = orjson.dumps(
    {
        "id": 1234,
        "email": "jane.doe@shopmail.com",
        "phone": "+1 415-555-0100",
        "name": "Jane Doe",
        "created": "2024-11-23T22:13:20Z",
        "items": [
            {"sku": f"SKU-{i:04d}", "title": "Walnut desk organiser", "price": 19.5 + i, "qty": 1}
            for i in range(10)
        ],
    }
)


def start_nginx(workdir: Path, answer: str = "204") -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    conf = workdir / "nginx.conf"
    directive = "return 204;"
    if answer == "json":
        directive = f"default_type application/json; return 200 '{JSON_ANSWER.decode()}';"
    conf.write_text(NGINX_CONF.format(dir=workdir, port=port, answer=directive))
    proc = subprocess.Popen(
        ["/usr/sbin/nginx", "-c", str(conf), "-p", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            requests_served(port)
            return proc, port
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def requests_served(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/nginx_status", timeout=2) as resp:
        text = resp.read().decode()
    # "server accepts handled requests\n 1 1 5" — the third number, minus our own probes.
    numbers = re.findall(r"\d+", text.splitlines()[2])
    return int(numbers[2])


def run_wrk(port: int, seconds: int = 5) -> float:
    out = subprocess.run(
        ["/usr/bin/wrk", "-t1", "-c64", f"-d{seconds}s", f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(match.group(1)) if match else 0.0


def fill(settings: Settings, records: int, answer: str = "204") -> None:
    producer = make_producer(settings.kafka, {"linger.ms": 50, "batch.num.messages": 10000})
    production = None
    if answer == "json":
        headers = [("content-type", "application/json")]
        production = Response(200, headers, JSON_ANSWER, 2.5, len(JSON_ANSWER))
    for i in range(records):
        env = Envelope(
            method="GET",
            path=f"/api/items/{i % 1000}",
            query="page=1",
            host="shop.example",
            headers=[("accept", "application/json"), ("user-agent", "bench")],
            response=production,
        )
        while True:
            try:
                producer.produce(settings.topics.mirror, encode(env), key=env.id.encode())
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    producer.flush(60)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of processes and their threads (librdkafka's included)."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def run_workers(
    settings: Settings, port: int, workers: int, records: int, *, in_flight: int, logdir: Path
) -> tuple[float, float]:
    """Deliveries/s of ``workers`` processes, and deliveries per CPU-second they used."""
    group = f"bench-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWTAP_")}
    env.update(
        {
            "SHADOWTAP_TOPICS_MIRROR": settings.topics.mirror,
            "SHADOWTAP_TOPICS_RESULTS": settings.topics.results,
            "SHADOWTAP_TOPICS_DLQ": settings.topics.dlq,
        }
    )
    base = requests_served(port)
    procs = []
    for n in range(workers):
        log = (logdir / f"{group}-{n}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "shadowtap.cli",
                    "replay",
                    "--bootstrap",
                    settings.kafka.bootstrap,
                    "--target",
                    f"http://127.0.0.1:{port}",
                    "--group",
                    group,
                    "--max-in-flight",
                    str(in_flight),
                    "--loglevel",
                    "warning",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    lo, hi = int(records * 0.1), int(records * 0.9)
    t_lo = t_hi = None
    n_lo = n_hi = 0
    cpu_lo = cpu_hi = 0.0
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            done = requests_served(port) - base
            now = time.monotonic()
            if t_lo is None and done >= lo:
                t_lo, n_lo = now, done
                cpu_lo = cpu_seconds([p.pid for p in procs])
            if done >= hi:
                t_hi, n_hi = now, done
                cpu_hi = cpu_seconds([p.pid for p in procs])
                break
            time.sleep(0.1)
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    if t_lo is None or t_hi is None:
        raise RuntimeError(f"workers did not finish; logs in {logdir}")
    return (n_hi - n_lo) / (t_hi - t_lo), (n_hi - n_lo) / (cpu_hi - cpu_lo)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument(
        "--answer",
        choices=("204", "json"),
        default="204",
        help="what nginx answers: 204, or a 1 KB JSON body (results then carry bodies)",
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="shadowtap-bench-"))
    nginx, port = start_nginx(workdir, args.answer)
    try:
        with resolve_broker(f"bench-{os.getpid()}", ephemeral=True) as broker:
            suffix = uuid.uuid4().hex[:8]
            settings = Settings.load(
                env={},
                overrides={
                    "kafka": {"bootstrap": broker.bootstrap},
                    "topics": {
                        "mirror": f"bench-mirror-{suffix}",
                        "results": f"bench-results-{suffix}",
                        "dlq": f"bench-dlq-{suffix}",
                        "captured": f"bench-captured-{suffix}",
                        "partitions": 6,
                    },
                },
            )
            create_topics(settings)
            print(f"filling {args.records} records …", flush=True)
            fill(settings, args.records, args.answer)
            wrk = run_wrk(port)
            print(f"wrk -c64 against the same nginx: {wrk:,.0f} req/s", flush=True)
            rates: dict[int, float] = {}
            per_cpu: dict[int, float] = {}
            for n in (int(x) for x in args.workers.split(",")):
                rates[n], per_cpu[n] = run_workers(
                    settings, port, n, args.records, in_flight=args.in_flight, logdir=workdir
                )
                print(
                    f"{n} worker(s), {args.in_flight} in flight: {rates[n]:,.0f} deliveries/s "
                    f"({rates[n] / n:,.0f} per worker; {per_cpu[n]:,.0f} per CPU-second)",
                    flush=True,
                )
            if 1 in rates and 2 in rates:
                print(
                    f"scaling 2 workers / 1 worker: {rates[2] / rates[1]:.2f}x wall-clock, "
                    f"{per_cpu[2] / per_cpu[1]:.2f}x deliveries per CPU-second"
                )
            print(f"cores: {os.cpu_count()}")
    finally:
        nginx.send_signal(signal.SIGQUIT)
        try:
            nginx.wait(10)
        except subprocess.TimeoutExpired:
            nginx.kill()
            nginx.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
