"""Pacing accuracy: ``--speed 1x`` and ``--speed 2x`` over recorded traffic, end to end.

    python bench/pacing.py [--records 10000] [--mean-gap-ms 2]

Fills a mirror topic (6 partitions) with ``--records`` requests whose recorded ``ts`` follow
Poisson arrivals (mean gap ``--mean-gap-ms``: a 20 s span for 10,000), replays them with one
``shadowtap replay`` worker to nginx (204), and reads the arrival time of every request from
nginx's access log (``$msec`` and ``X-Shadowtap-Id``). Reports, per speed:

- inter-arrival error: |(arrival gap) − (recorded gap / speed)| between consecutive
  requests in recorded order, p50/p99/max (goal at 1x: p99 ≤ 10 ms);
- span ratio: (last arrival − first arrival) / recorded span (goal at 2x: 0.50 ± 0.05).

nginx's ``$msec`` has millisecond resolution, which bounds the error measurable below 1 ms.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from replay import free_port  # type: ignore[import-not-found]

from shadowtap.config import Settings
from shadowtap.devkafka import resolve_broker
from shadowtap.envelope import Envelope, encode
from shadowtap.kafka import create_topics, make_producer

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    log_format pace '$msec $http_x_shadowtap_id';
    access_log {dir}/access-{tag}.log pace;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 204; }}
    }}
}}
"""


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def measure(settings: Settings, speed: str, records: dict[str, int], workdir: Path) -> None:
    port = free_port()
    tag = speed.replace(".", "_")
    conf = workdir / f"nginx-{tag}.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, port=port, tag=tag))
    log = workdir / f"access-{tag}.log"
    nginx = subprocess.Popen(
        ["/usr/sbin/nginx", "-c", str(conf), "-p", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWTAP_")}
    env.update(
        {
            "SHADOWTAP_TOPICS_MIRROR": settings.topics.mirror,
            "SHADOWTAP_TOPICS_RESULTS": settings.topics.results,
            "SHADOWTAP_TOPICS_DLQ": settings.topics.dlq,
        }
    )
    time.sleep(0.3)
    worker = subprocess.Popen(
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
            f"pace-{uuid.uuid4().hex[:8]}",
            "--speed",
            speed,
            "--loglevel",
            "warning",
        ],
        env=env,
        stdout=(workdir / f"worker-{tag}.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if log.exists() and log.read_bytes().count(b"\n") >= len(records):
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"replay at {speed} did not finish; see {workdir}")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
        nginx.send_signal(signal.SIGQUIT)
        nginx.wait(10)
    arrivals: dict[str, float] = {}
    for line in log.read_text().splitlines():
        msec, _, rid = line.partition(" ")
        arrivals.setdefault(rid, float(msec))
    factor = float(speed.rstrip("x"))
    order = sorted(records, key=lambda rid: (records[rid], rid))
    errors = []
    for prev, cur in itertools.pairwise(order):
        want = (records[cur] - records[prev]) / 1000 / factor
        got = arrivals[cur] - arrivals[prev]
        errors.append(abs(got - want) * 1000)
    span = (records[order[-1]] - records[order[0]]) / 1000
    got_span = max(arrivals.values()) - min(arrivals.values())
    print(
        f"{speed}: {len(arrivals)} requests, inter-arrival error p50 {pct(errors, 50):.2f} ms, "
        f"p99 {pct(errors, 99):.2f} ms, max {max(errors):.1f} ms, "
        f"{sum(e > 10 for e in errors)} gaps off by > 10 ms; "
        f"span {got_span:.2f}s of recorded {span:.2f}s = {got_span / span:.3f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--mean-gap-ms", type=float, default=2.0)
    parser.add_argument("--speeds", default="1x,2x")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="shadowtap-pacing-"))
    try:
        with resolve_broker(f"bench-pacing-{os.getpid()}", ephemeral=True) as broker:
            rng = random.Random(42)
            for speed in args.speeds.split(","):
                suffix = uuid.uuid4().hex[:8]
                settings = Settings.load(
                    env={},
                    overrides={
                        "kafka": {"bootstrap": broker.bootstrap},
                        "topics": {
                            "mirror": f"pace-mirror-{suffix}",
                            "results": f"pace-results-{suffix}",
                            "dlq": f"pace-dlq-{suffix}",
                            "captured": f"pace-captured-{suffix}",
                            "partitions": 6,
                        },
                    },
                )
                create_topics(settings)
                ts = 1_700_000_000_000.0
                records: dict[str, int] = {}
                producer = make_producer(settings.kafka)
                for _ in range(args.records):
                    ts += rng.expovariate(1 / args.mean_gap_ms)
                    env = Envelope(method="GET", path="/p", host="shop.example", ts=int(ts))
                    records[env.id] = env.ts
                    producer.produce(settings.topics.mirror, encode(env), key=env.id.encode())
                    producer.poll(0)
                producer.flush(60)
                measure(settings, speed, records, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
