"""What capture costs production: the same app bare and with shadowtap, in one run.

    python bench/capture_overhead.py [--seconds 8] [--connections 16]

A FastAPI app (1 KB JSON POST → JSON reply) under one uvicorn worker pinned to core 0, and a
Flask app under one gunicorn sync worker, are driven by wrk pinned to core 1 over loopback.
Cases: bare; with the capture middleware publishing to a real local broker; with Kafka down
(nothing listens at the bootstrap address); and, for FastAPI, with OpenTelemetry's ASGI
middleware and SDK (in-memory exporter), the overhead users already accept. Prints req/s,
p50 latency and the ratio against bare for each case, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
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


def _server(kind: str, case: str, port: int, bootstrap: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWTAP_")}
    env.update(
        SHADOWTAP_BOOTSTRAP=bootstrap,
        SHADOWTAP_TOPICS_CAPTURED="bench.capture",
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


def _wrk(port: int, seconds: int, connections: int, script: Path) -> tuple[float, float]:
    out = subprocess.run(
        [*_pin(1), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
         "-s", str(script), f"http://127.0.0.1:{port}/api/orders"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    assert p50 is not None
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p50.group(2)]
    return rate, float(p50.group(1)) * scale


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    from shadowtap.devkafka import free_port, resolve_broker

    results: list[dict[str, object]] = []
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
        plans = [("fastapi", c) for c in ("bare", "shadowtap", "kafka-down", "otel")]
        plans += [("flask", c) for c in ("bare", "shadowtap", "kafka-down")]
        for kind, case in plans:
            port = free_port()
            proc = _server(
                kind,
                case,
                port,
                down if case == "kafka-down" else broker.bootstrap,
                Path(tmp, f"{kind}-{case}.log"),
            )
            try:
                _wrk(port, 2, args.connections, script)  # warm-up
                rate, p50 = _wrk(port, args.seconds, args.connections, script)
            finally:
                proc.terminate()
                proc.wait(20)
            bare = next((r for r in results if r["app"] == kind and r["case"] == "bare"), None)
            row: dict[str, object] = {
                "app": kind,
                "case": case,
                "req_s": round(rate),
                "p50_ms": round(p50, 3),
            }
            if bare is not None:
                row["ratio"] = round(rate / float(bare["req_s"]), 3)  # type: ignore[arg-type]
                row["added_p50_us"] = round((p50 - float(bare["p50_ms"])) * 1000)  # type: ignore[arg-type]
            results.append(row)
            print(
                f"{kind:8} {case:11} {rate:9.0f} req/s  p50 {p50:7.3f} ms"
                + (
                    f"  ratio {row['ratio']:.3f}  added p50 {row['added_p50_us']} µs"
                    if bare
                    else ""
                )
            )
    print(json.dumps({"bench": "capture_overhead", "results": results}))


if __name__ == "__main__":
    main()
