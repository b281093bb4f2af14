"""End-to-end throughput of one processor worker, all stages on, real broker.

    python bench/process.py [--records 50000]

Produces ``--records`` captured envelopes (~1 KB JSON bodies from tests/pii_corpus.py with an
e-mail, phone, card and IP each; 2 % health checks, 2 % duplicates) to fresh topics, starts
``shadowtap process`` as a subprocess, and reads the mirror topic until every expected record
is there. The rate is output records over the span of their Kafka timestamps (first to last
output), so worker start-up is not counted; the wall time from start to done is printed too.
The baseline is the same stages on the same records called directly in this process (no
Kafka, no Faust): the ratio says what the worker's plumbing costs. Also printed: records per
CPU-second of the worker and its scrubber processes (``--set scrub_processes=N``), from
/proc between the first and the last output, which does not depend on how many cores the
worker got.
Uses SHADOWTAP_BOOTSTRAP if set, else a local broker (shadowtap.devkafka).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shadowtap.config import Settings
from shadowtap.devkafka import resolve_broker
from shadowtap.envelope import Envelope, encode, kafka_headers
from shadowtap.kafka import create_topics, make_consumer, make_producer
from shadowtap.processors.pipeline import Pipeline
from tests.pii_corpus import typical_body


def _records(n: int) -> tuple[list[Envelope], int]:
    out: list[Envelope] = []
    expected = 0
    for i in range(n):
        if i % 50 == 7:
            out.append(Envelope(method="GET", path="/healthz"))
        elif i % 50 == 9 and out:
            out.append(Envelope(method="POST", path=out[-2].path, body=out[-2].body))
        else:
            body, _ = typical_body(i)
            headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
            out.append(Envelope(method="POST", path=f"/api/orders/{i}", headers=headers, body=body))
            expected += 1
    return out, expected


def _pipeline_alone(settings: Settings, values: list[bytes]) -> float:
    """Output records/s of the same stages on the same records, called directly: the baseline."""
    pipeline = Pipeline(settings)
    out = 0
    started = time.perf_counter()
    for value in values:
        out += pipeline.process(value).kind == "out"
    return out / (time.perf_counter() - started)


def _cpu_s(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) of ``pid`` alone and of it with every process under it."""
    tick = os.sysconf("SC_CLK_TCK")
    own = total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        own = total = (int(fields[11]) + int(fields[12])) / tick
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += _cpu_s(int(child))[1]
    except (FileNotFoundError, ProcessLookupError):
        pass
    return own, total


def _read(
    consumer: Any, expected: int, worker: subprocess.Popen[bytes], log: str
) -> tuple[int, float, tuple[float, float]]:
    """Read the mirror until ``expected`` records: (records, seconds from the first output's
    timestamp to the last's, CPU seconds from the first output on of the worker's process
    and of it with its scrubbers)."""
    seen = 0
    first_ts = last_ts = 0
    cpu_from = (0.0, 0.0)
    deadline = time.monotonic() + 600
    while seen < expected and time.monotonic() < deadline:
        if worker.poll() is not None:
            sys.exit(f"the worker exited with {worker.returncode}: see {log}")
        for msg in consumer.consume(1000, 0.5):
            if msg.error():
                continue
            if not seen:
                cpu_from = _cpu_s(worker.pid)
            seen += 1
            ts = msg.timestamp()[1]
            first_ts = ts if not first_ts else min(first_ts, ts)
            last_ts = max(last_ts, ts)
    cpu_to = _cpu_s(worker.pid)
    cpu = (cpu_to[0] - cpu_from[0], cpu_to[1] - cpu_from[1])
    return seen, max(last_ts - first_ts, 1) / 1000, cpu


def run(bootstrap: str, n: int, extra: dict[str, str]) -> None:
    u = uuid.uuid4().hex[:8]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWTAP_")}
    env.update(
        {
            "SHADOWTAP_TOPICS_CAPTURED": f"bench-captured-{u}",
            "SHADOWTAP_TOPICS_MIRROR": f"bench-mirror-{u}",
            "SHADOWTAP_TOPICS_RESULTS": f"bench-results-{u}",
            "SHADOWTAP_TOPICS_DLQ": f"bench-dlq-{u}",
            "SHADOWTAP_PROCESSOR_GROUP": f"bench-{u}",
            "SHADOWTAP_PROCESSOR_SCRUB_KEY": "bench-key",
        }
    )
    env.update({f"SHADOWTAP_PROCESSOR_{k.upper()}": v for k, v in extra.items()})
    settings = Settings.load(env=env, overrides={"kafka": {"bootstrap": bootstrap}})
    create_topics(settings)
    records, expected = _records(n)
    values = [encode(e) for e in records]
    producer = make_producer(settings.kafka)
    for e, value in zip(records, values, strict=True):
        producer.produce(
            settings.topics.captured, value, key=e.id.encode(), headers=kafka_headers(e)
        )
        producer.poll(0)
    producer.flush(60)
    print(f"produced {len(records)} records ({expected} should reach the mirror)")
    alone = _pipeline_alone(settings, values)
    print(f"pipeline alone (no Kafka, no Faust, this process): {alone:,.0f} records/s")

    consumer = make_consumer(settings.kafka, f"bench-reader-{u}")
    consumer.subscribe([settings.topics.mirror])
    log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (kept for the worker's lifetime)
        prefix="shadowtap-bench-", suffix=".log", delete=False
    )
    started = time.monotonic()
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shadowtap.cli",
            "process",
            "--bootstrap",
            bootstrap,
            "--web-port",
            "0",
            "--loglevel",
            "warning",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        seen, span, cpu = _read(consumer, expected, worker, log.name)
        wall = time.monotonic() - started
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
        consumer.close()
    print(
        f"process: {seen}/{expected} records out, {seen / span:,.0f} records/s "
        f"(first to last output {span:.1f}s; {wall:.1f}s wall including start-up); "
        f"worker log {log.name}"
    )
    rate = seen / span
    print(f"worker / pipeline alone: {rate / alone:.2f}x (the rest is Faust and Kafka)")
    own, total = cpu
    per_cpu = (seen - 1) / total if total > 0 else 0.0
    ceiling = (seen - 1) / own if own > 0 else 0.0
    print(
        f"worker CPU: {total:.1f}s, {per_cpu:,.0f} records per CPU-second; its own process "
        f"{own:.1f}s of it, enough for {ceiling:,.0f} records/s given scrubbers to keep up"
    )
    figures: dict[str, float] = {"records_out": seen, "expected": expected}
    figures["records_per_s"] = round(rate)
    figures["records_per_cpu_s"] = round(per_cpu)
    figures["worker_process_ceiling_per_s"] = round(ceiling)
    figures |= {"pipeline_alone_per_s": round(alone), "ratio": round(rate / alone, 3)}
    print(json.dumps(figures))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument(
        "--set", action="append", default=[], help="processor setting, e.g. dedup_enabled=false"
    )
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.set)
    with resolve_broker(f"bench-{os.getpid()}", ephemeral=True) as broker:
        run(broker.bootstrap, args.records, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
