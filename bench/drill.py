"""Drill throughput, progress cost and 1x pacing, against the replayer in the same run.

    python bench/drill.py [--records 30000] [--paced 5000] [--mean-gap-ms 2]

One broker (SHADOWTAP_BOOTSTRAP, else a local one), nginx answering 204 on loopback
(bench/replay.py's, with its stub_status counter), records stamped with their capture time
as the processor stamps them. Prints:

1. max speed: ``shadowtap drill --speed max`` against one ``shadowtap replay`` worker over
   the same records, both as deliveries/s between 10 % and 90 % of the records by nginx's
   counter (bench/replay.py's way). Goal: drill ≥ replayer;
2. progress display: the same drill with the rich display drawn (TTY_COMPATIBLE=1) and
   without; cost = 1 − with / without. Goal: < 2 %;
3. 1x: a drill of ``--paced`` Poisson arrivals (mean gap ``--mean-gap-ms``) to an nginx that
   logs ``$msec`` and X-Shadowtap-Id (bench/pacing.py's); inter-arrival error
   |arrival gap − recorded gap| in recorded order, p50/p99. Goal: p99 ≤ 10 ms.

Each drill runs as its own process (``python -m shadowtap.cli drill``), as a user runs it.
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

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pacing import NGINX_CONF as LOGGING_NGINX  # type: ignore[import-not-found]
from pacing import pct  # type: ignore[import-not-found]
from replay import (  # type: ignore[import-not-found]
    free_port,
    requests_served,
    run_workers,
    start_nginx,
)

from shadowtap.config import Settings
from shadowtap.devkafka import resolve_broker
from shadowtap.drill.window import iso
from shadowtap.envelope import Envelope, encode
from shadowtap.kafka import create_topics, make_producer


def topics(bootstrap: str) -> Settings:
    suffix = uuid.uuid4().hex[:8]
    settings = Settings.load(
        env={},
        overrides={
            "kafka": {"bootstrap": bootstrap},
            "topics": {
                name: f"drill-bench-{name}-{suffix}"
                for name in ("mirror", "results", "dlq", "captured", "drills")
            }
            | {"partitions": 6},
        },
    )
    create_topics(settings)
    return settings


def fill(settings: Settings, times: list[int]) -> dict[str, int]:
    """One GET per capture time, stamped with it; ``{id: ts}``."""
    producer = make_producer(settings.kafka, {"linger.ms": 50, "batch.num.messages": 10000})
    written = {}
    for ts in times:
        env = Envelope(method="GET", path=f"/api/items/{ts % 1000}", host="shop.example", ts=ts)
        written[env.id] = ts
        while True:
            try:
                producer.produce(
                    settings.topics.mirror, encode(env), key=env.id.encode(), timestamp=ts
                )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    producer.flush(60)
    return written


def drill(
    settings: Settings,
    target: str,
    window: tuple[int, int],
    speed: str,
    workdir: Path,
    *,
    tty: bool,
    counter: int | None = None,
) -> dict[str, object]:
    """One ``shadowtap drill`` process; its report's figures (with ``counter``, nginx's
    stub_status port, also ``rate_10_90``: deliveries/s between 10 % and 90 % of the
    window, measured as bench/replay.py measures the replayer)."""
    name = f"bench-{uuid.uuid4().hex[:6]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWTAP_")}
    env |= {
        "SHADOWTAP_TOPICS_MIRROR": settings.topics.mirror,
        "SHADOWTAP_TOPICS_RESULTS": settings.topics.results,
        "SHADOWTAP_TOPICS_DLQ": settings.topics.dlq,
        "SHADOWTAP_TOPICS_DRILLS": settings.topics.drills,
        "TTY_COMPATIBLE": "1" if tty else "0",
    }
    report = workdir / name
    with (workdir / f"{name}.log").open("wb") as log:
        base = requests_served(counter) if counter else 0
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shadowtap.cli",
                "drill",
                "--bootstrap",
                settings.kafka.bootstrap,
                "--target",
                target,
                "--name",
                name,
                "--from",
                iso(window[0]),
                "--to",
                iso(window[1]),
                "--skew",
                "1",
                "--speed",
                speed,
                "--no-probe",
                "--report",
                str(report),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        marks: list[tuple[float, int]] = []
        while proc.poll() is None:
            if counter:
                marks.append((time.monotonic(), requests_served(counter) - base))
            time.sleep(0.1)
    if proc.returncode != 0:
        raise RuntimeError(f"drill failed ({proc.returncode}); see {workdir / name}.log")
    figures: dict[str, object] = orjson.loads((report / "drill.json").read_bytes())["figures"]
    total = int(figures["sent"])  # type: ignore[call-overload]
    lo = next(((t, n) for t, n in marks if n >= total * 0.1), None)
    hi = next(((t, n) for t, n in marks if n >= total * 0.9), None)
    if lo is not None and hi is not None and hi[0] > lo[0]:
        figures["rate_10_90"] = (hi[1] - lo[1]) / (hi[0] - lo[0])
    return figures


def max_speed(bootstrap: str, records: int, workdir: Path) -> None:
    settings = topics(bootstrap)
    t0 = int(time.time() * 1000) - 3_600_000
    fill(settings, [t0 + i for i in range(records)])  # a record a millisecond
    nginx, port = start_nginx(workdir)
    target = f"http://127.0.0.1:{port}"
    window = (t0, t0 + records)
    try:
        replayer, _ = run_workers(settings, port, 1, records, in_flight=64, logdir=workdir)
        rates = {}
        for tty in (False, True, False, True):
            f = drill(settings, target, window, "max", workdir, tty=tty, counter=port)
            assert f["sent"] == records, f
            rate = f.get("rate_10_90") or f["throughput_per_s"]
            rates.setdefault(tty, []).append(float(rate))  # type: ignore[arg-type]
    finally:
        nginx.send_signal(signal.SIGQUIT)
        nginx.wait(10)
    plain, drawn = max(rates[False]), max(rates[True])
    print(
        f"max speed, {records} records, 64 in flight (10 %–90 % of each): drill "
        f"{plain:,.0f} deliveries/s, "
        f"replayer {replayer:,.0f}/s in the same run = {plain / replayer:.2f}x (goal ≥ 1)",
        flush=True,
    )
    print(
        f"progress display: {drawn:,.0f}/s drawn vs {plain:,.0f}/s not drawn (best of 2 each) "
        f"= cost {max(0.0, 1 - drawn / plain):.1%} (goal < 2 %)",
        flush=True,
    )


def paced(bootstrap: str, records: int, mean_gap_ms: float, workdir: Path) -> None:
    settings = topics(bootstrap)
    rng = random.Random(42)
    t0 = int(time.time() * 1000) - 3_600_000
    ts = float(t0)
    times = []
    for _ in range(records):
        ts += rng.expovariate(1 / mean_gap_ms)
        times.append(int(ts))
    written = fill(settings, times)
    port = free_port()
    conf = workdir / "nginx-paced.conf"
    conf.write_text(LOGGING_NGINX.format(dir=workdir, port=port, tag="drill"))
    log = workdir / "access-drill.log"
    nginx = subprocess.Popen(
        ["/usr/sbin/nginx", "-c", str(conf), "-p", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(0.3)
    try:
        f = drill(
            settings, f"http://127.0.0.1:{port}", (t0, times[-1] + 1), "1x", workdir, tty=False
        )
    finally:
        nginx.send_signal(signal.SIGQUIT)
        nginx.wait(10)
    arrivals: dict[str, float] = {}
    for line in log.read_text().splitlines():
        msec, _, rid = line.partition(" ")
        arrivals.setdefault(rid, float(msec))
    order = sorted(written, key=lambda rid: (written[rid], rid))
    errors = [
        abs((arrivals[b] - arrivals[a]) - (written[b] - written[a]) / 1000) * 1000
        for a, b in itertools.pairwise(order)
    ]
    print(
        f"1x: {len(arrivals)} of {records} requests, inter-arrival error p50 "
        f"{pct(errors, 50):.2f} ms, p99 {pct(errors, 99):.2f} ms (goal ≤ 10 ms), max "
        f"{max(errors):.1f} ms; achieved speed {f['achieved_speed']}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=30_000)
    parser.add_argument("--paced", type=int, default=5_000)
    parser.add_argument("--mean-gap-ms", type=float, default=2.0)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="shadowtap-drill-bench-"))
    try:
        with resolve_broker(f"bench-drill-{os.getpid()}", ephemeral=True) as broker:
            max_speed(broker.bootstrap, args.records, workdir)
            paced(broker.bootstrap, args.paced, args.mean_gap_ms, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
