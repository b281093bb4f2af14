"""What capture costs production: the same app bare and with shadowtap, in one run.

    python bench/capture_overhead.py [--seconds 10] [--rounds 5] [--connections 16]

A FastAPI app (1 KB JSON POST → JSON reply) under one uvicorn worker pinned to core 0, and a
Flask app under one gunicorn sync worker, are driven by wrk pinned to core 1 over loopback.
Cases: bare; with the capture middleware publishing to a real local broker; with Kafka down
(nothing listens at the bootstrap address); and, for FastAPI, with OpenTelemetry's ASGI
middleware and SDK (in-memory exporter), the overhead users already accept. All servers run
at once and the cases take turns in ``--rounds`` interleaved rounds (``--seconds`` of load
per case in all), so a shared machine's drift hits every case alike. Prints the median req/s
and p50 latency and the ratio against bare for each case, checks that every request captured
with Kafka up reached the topic, then prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAYLOAD = json.dumps(
    {"customer": "c-1", "items": [{"sku": f"S{i:04d}", "qty": i} for i in range(40)]}
)[:1024]

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[%s]]
"""


def fastapi_app(case: str) -> object:
    from fastapi import FastAPI, Request

    app = FastAPI()

    @app.post("/api/orders")
    async def orders(request: Request) -> dict[str, object]:
        body = await request.json()
        return {"ok": True, "items": len(body["items"])}

    if case == "otel":
        from opentelemetry import trace
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        provider = TracerProvider()
        exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        return OpenTelemetryMiddleware(app)
    if case in ("shadowtap", "kafka-down"):
        from shadowtap.producers.asgi import ShadowtapMiddleware

        return ShadowtapMiddleware(app)
    return app


def flask_app(case: str) -> object:
    from flask import Flask, request

    app = Flask(__name__)

    @app.post("/api/orders")
    def orders() -> dict[str, object]:
        return {"ok": True, "items": len(request.get_json()["items"])}

    if case in ("shadowtap", "kafka-down"):
        from shadowtap.producers.wsgi import ShadowtapWSGIMiddleware

        app.wsgi_app = ShadowtapWSGIMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    return app


def _pin(core: int) -> list[str]:
    return (
        ["taskset", "-c", str(core)]
        if shutil.which("taskset") and (os.cpu_count() or 1) > 1
        else []
    )


def _server(
    kind: str, case: str, port: int, *, bootstrap: str, topic: str, log: Path
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWTAP_")}
    env.update(
        SHADOWTAP_BOOTSTRAP=bootstrap,
        SHADOWTAP_TOPICS_CAPTURED=topic,
        SHADOWTAP_CAPTURE_SOURCE="bench",
        BENCH_CASE=case,
        PYTHONPATH=str(ROOT),
    )
    if kind == "fastapi":
        cmd = [sys.executable, "-m", "uvicorn",
               "--factory", "bench.capture_overhead:_fastapi_factory",
               "--port", str(port), "--log-level", "warning", "--no-access-log"]  # fmt: skip
    else:
        cmd = [sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}",
               "bench.capture_overhead:_flask_factory()"]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*_pin(0), *cmd], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.post(f"http://127.0.0.1:{port}/api/orders", content=PAYLOAD, timeout=1,
                       headers={"Content-Type": "application/json"})  # fmt: skip
            return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{kind}/{case} did not start: {log.read_text()[-2000:]}")


def _fastapi_factory() -> object:
    return fastapi_app(os.environ["BENCH_CASE"])


def _flask_factory() -> object:
    return flask_app(os.environ["BENCH_CASE"])


def _wrk(port: int, seconds: int, connections: int, script: Path) -> tuple[float, float, int]:
    out = subprocess.run(
        [*_pin(1), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
         "-s", str(script), f"http://127.0.0.1:{port}/api/orders"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    assert p50 is not None
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p50.group(2)]
    return rate, float(p50.group(1)) * scale, total


def _published(bootstrap: str, topic: str) -> int:
    """Records in ``topic`` (sum of high watermarks): what the broker acknowledged."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-watermarks"})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            return 0
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in meta.partitions
        )
    finally:
        consumer.close()


def _cpu_ticks(pid: int) -> int:
    """CPU ticks (user + system, every thread) of a process and its descendants so far."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(stat[11]) + int(stat[12])
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                ticks += _cpu_ticks(int(child))
    except (OSError, ValueError, IndexError):
        return 0  # gone, or no /proc: the CPU column then reads 0
    return ticks


def _steal() -> int:
    """Ticks stolen from this VM by its hypervisor so far (0 where /proc/stat has none)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) if len(fields) > 8 else 0
    except OSError:
        return 0


def _report(
    plans: list[tuple[str, str]], runs: dict[tuple[str, str], list[tuple[float, float, float]]]
) -> list[dict[str, object]]:
    """Median req/s and p50 per case; median of per-round ratio and added p50 against bare."""
    results: list[dict[str, object]] = []
    for kind, case in plans:
        rate = statistics.median(r for r, _, _ in runs[kind, case])
        p50 = statistics.median(p for _, p, _ in runs[kind, case])
        cpu = statistics.median(c for _, _, c in runs[kind, case])
        row: dict[str, object] = {
            "app": kind,
            "case": case,
            "req_s": round(rate),
            "p50_ms": round(p50, 3),
            "cpu_us_per_req": round(cpu),
            "rounds_req_s": [round(r) for r, _, _ in runs[kind, case]],
        }
        line = f"{kind:8} {case:11} {rate:6.0f} req/s  p50 {p50:6.2f} ms  cpu {cpu:4.0f} µs/req"
        if case != "bare":
            # Ratios within each round (cases minutes apart drift apart on a shared VM), then
            # the median over rounds.
            bare_runs = runs[kind, "bare"]
            pairs = list(zip(runs[kind, case], bare_runs, strict=True))
            row["ratio"] = round(statistics.median(r / b for (r, _, _), (b, _, _) in pairs), 3)
            row["added_p50_us"] = round(
                statistics.median((p - bp) * 1000 for (_, p, _), (_, bp, _) in pairs)
            )
            # The app's own CPU per request (all its threads, librdkafka's included) does not
            # depend on how fast the load generator is: the steadiest measure of what we add.
            row["added_cpu_us"] = round(
                statistics.median(c - bc for (_, _, c), (_, _, bc) in pairs)
            )
            line += f"  ratio {row['ratio']:.3f}  added p50 {row['added_p50_us']:5} µs"
            line += f"  added cpu {row['added_cpu_us']:4} µs/req"
        results.append(row)
        print(line)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10, help="load per case, over all rounds")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median wins)")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    from shadowtap.devkafka import free_port, resolve_broker

    per_round = max(1, round(args.seconds / args.rounds))
    plans = [("fastapi", c) for c in ("bare", "shadowtap", "kafka-down", "otel")]
    plans += [("flask", c) for c in ("bare", "shadowtap", "kafka-down")]
    with (
        resolve_broker("bench-capture", ephemeral=True) as broker,
        tempfile.TemporaryDirectory() as tmp,
    ):
        if broker.pid and _pin(1):
            # The app alone on core 0: the broker shares core 1 with wrk, as a remote
            # cluster would not compete with the app at all.
            subprocess.run(
                ["taskset", "-a", "-cp", "1", str(broker.pid)], capture_output=True, check=False
            )
        script = Path(tmp, "post.lua")
        script.write_text(LUA % PAYLOAD)
        down = f"127.0.0.1:{free_port()}"
        topic = f"bench.capture.{os.getpid()}"
        # Every server is up for the whole run and the cases take turns, round after round,
        # so drift in the machine's speed (a shared VM) hits every case alike.
        servers: dict[tuple[str, str], tuple[int, subprocess.Popen[bytes]]] = {}
        runs: dict[tuple[str, str], list[tuple[float, float, float]]] = {p: [] for p in plans}
        sent = {"fastapi": 0, "flask": 0}
        try:
            for kind, case in plans:
                port = free_port()
                servers[kind, case] = (
                    port,
                    _server(
                        kind,
                        case,
                        port,
                        bootstrap=down if case == "kafka-down" else broker.bootstrap,
                        topic=topic,
                        log=Path(tmp, f"{kind}-{case}.log"),
                    ),
                )
                warm = _wrk(port, 1, args.connections, script)[2]
                if case == "shadowtap":
                    sent[kind] += 1 + warm  # the readiness probe and the warm-up
            steal = _steal()
            for _ in range(args.rounds):
                for plan in plans:
                    port, proc = servers[plan]
                    ticks = _cpu_ticks(proc.pid)
                    rate, p50, total = _wrk(port, per_round, args.connections, script)
                    ticks = _cpu_ticks(proc.pid) - ticks
                    runs[plan].append((rate, p50, ticks / CLK_TCK / max(total, 1) * 1e6))
                    if plan[1] == "shadowtap":
                        sent[plan[0]] += total
            steal = _steal() - steal
        finally:
            for _port, proc in servers.values():
                proc.terminate()  # shutdown flushes the capture queue (bounded)
            for _port, proc in servers.values():
                proc.wait(20)
        # Requests still in flight when wrk stops are served but not counted by wrk, so the
        # topic may hold up to 2 x connections per round more than "requests".
        published = _published(broker.bootstrap, topic)

    results = _report(plans, runs)
    requests = sent["fastapi"] + sent["flask"]
    print(f"captured with Kafka up: {published} records in Kafka for {requests} requests")
    print(f"CPU steal during the runs: {steal / CLK_TCK:.1f} s")
    print(
        json.dumps(
            {
                "bench": "capture_overhead",
                "seconds_per_round": per_round,
                "rounds": args.rounds,
                "connections": args.connections,
                "published": published,
                "requests": requests,
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
