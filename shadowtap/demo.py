"""``shadowtap demo``: the whole pipeline on one machine, end to end, in about a minute.

It starts (or finds) a Kafka broker, creates topics for this run, starts the demo shop as
production (v1, behind the capture middleware) and as staging (v2), runs ``shadowtap
process`` and one ``shadowtap replay`` worker, sends realistic traffic with planted PII,
health checks and retried requests, and watches every topic fill up. It ends with a
report (JSON and HTML) that checks what shadowtap promises: nothing sensitive reached the
mirror topic, health checks and duplicates were dropped, every mirrored request was
replayed, and where staging answered differently from production.

    shadowtap demo [--requests 200] [--report-dir .] [--keep-kafka]

On an existing cluster (``SHADOWTAP_BOOTSTRAP``) every stage uses the ``[kafka]`` settings
of ``SHADOWTAP_CONFIG`` and ``SHADOWTAP_KAFKA_*``, security included; a local broker is
plaintext.
"""

from __future__ import annotations

import base64
import contextlib
import html
import os
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from shadowtap.config import KafkaSettings, Settings
from shadowtap.configload import to_env
from shadowtap.devkafka import cache_dir, free_port, resolve_broker
from shadowtap.envelope import Envelope, decode
from shadowtap.errors import EnvelopeError, ShadowtapError
from shadowtap.kafka import create_topics, make_consumer


@dataclass
class Traffic:
    """What the demo sent, so the report can check what came out."""

    sent: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    planted: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)


@dataclass
class Tally:
    """What the demo saw on each topic."""

    captured: dict[str, Envelope] = field(default_factory=dict)
    mirrored: dict[str, Envelope] = field(default_factory=dict)
    mirrored_raw: list[bytes] = field(default_factory=list)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    dlq: int = 0


def run_demo(requests: int = 200, report_dir: Path = Path("."), keep_kafka: bool = False) -> int:
    """Run the demo; return 0 when every check passed."""
    from rich.console import Console

    out = Console(stderr=True, highlight=False)
    run_id = uuid.uuid4().hex[:8]
    run_home = cache_dir() / "run" / f"demo-{run_id}"
    run_home.mkdir(parents=True, exist_ok=True)
    out.print(f"[bold]shadowtap demo[/bold] run {run_id} · logs in {run_home}")
    user_kafka = Settings.load().kafka  # how to reach an existing cluster (security)
    with resolve_broker(
        "default",
        keep_running=keep_kafka,
        progress=lambda m: out.print(f"[cyan]•[/cyan] {m}"),
        kafka=user_kafka,
    ) as broker:
        out.print(f"[green]✓[/green] Kafka {broker.describe()}")
        prefix = f"shadowtap.demo-{run_id}"
        kafka = replace(
            user_kafka if broker.kind == "external" else KafkaSettings(),
            bootstrap=broker.bootstrap,
            client_id="shadowtap-demo",
        )
        settings = Settings.load(
            env={},
            overrides={
                "topics": {
                    "captured": f"{prefix}.captured",
                    "mirror": f"{prefix}.mirror",
                    "results": f"{prefix}.results",
                    "dlq": f"{prefix}.dlq",
                    "partitions": 3,
                },
            },
        )
        settings = replace(settings, kafka=kafka)
        create_topics(settings)
        out.print(f"[green]✓[/green] topics {prefix}.{{captured,mirror,results,dlq}}")
        env = _stage_env(settings, run_id)
        with _services(run_home, out) as services:
            prod_port, staging_port = free_port(), free_port()
            services.start(
                "staging",
                [
                    sys.executable,
                    "-m",
                    "shadowtap.demoapps",
                    "staging",
                    "--port",
                    str(staging_port),
                ],
                env,
            )
            services.start(
                "production",
                [
                    sys.executable,
                    "-m",
                    "shadowtap.demoapps",
                    "production",
                    "--port",
                    str(prod_port),
                ],
                env,
            )
            services.start("processor", [sys.executable, "-m", "shadowtap.cli", "process"], env)
            services.start(
                "replayer",
                [
                    sys.executable,
                    "-m",
                    "shadowtap.cli",
                    "replay",
                    "--target",
                    f"http://127.0.0.1:{staging_port}",
                    "--group",
                    f"demo-{run_id}-staging",
                ],
                env,
            )
            services.wait_http("staging", staging_port)
            services.wait_http("production", prod_port)
            out.print(
                "[green]✓[/green] production (v1 + capture), staging (v2), processor, replayer"
            )
            traffic, tally = _drive(settings, prod_port, requests, services, out)
        report = _report(traffic, tally)
        paths = _write_report(report, report_dir)
        _print_summary(out, report, paths)
        if keep_kafka and broker.kind == "local":
            out.print(
                f"[dim]Kafka keeps running at {broker.bootstrap}: `shadowtap kafka stop`[/dim]"
            )
    return 0 if report["passed"] else 1


def _stage_env(settings: Settings, run_id: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWTAP_")}
    env.update(to_env("kafka", settings.kafka))  # security included
    env["SHADOWTAP_KAFKA_BOOTSTRAP"] = settings.kafka.bootstrap  # even when it is the default
    env.update(
        {
            "SHADOWTAP_TOPICS_CAPTURED": settings.topics.captured,
            "SHADOWTAP_TOPICS_MIRROR": settings.topics.mirror,
            "SHADOWTAP_TOPICS_RESULTS": settings.topics.results,
            "SHADOWTAP_TOPICS_DLQ": settings.topics.dlq,
            "SHADOWTAP_TOPICS_PARTITIONS": str(settings.topics.partitions),
            "SHADOWTAP_CAPTURE_SOURCE": "demo-shop",
            "SHADOWTAP_PROCESSOR_GROUP": f"demo-{run_id}-processor",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


class _Services:
    """Child processes of the demo, each logging to its own file, all stopped at the end."""

    def __init__(self, home: Path, out: Any) -> None:
        self.home, self.out = home, out
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        log = (self.home / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL
        )
        log.close()

    def check(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise ShadowtapError(
                    f"{name} exited with code {proc.returncode}; see {self.home / (name + '.log')}"
                )

    def wait_http(self, name: str, port: int, timeout: float = 30) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                return
            time.sleep(0.2)
        raise ShadowtapError(
            f"{name} did not answer on port {port}; see {self.home / (name + '.log')}"
        )

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def _services(home: Path, out: Any) -> Iterator[_Services]:
    services = _Services(home, out)
    try:
        yield services
    finally:
        services.stop()


def _requests(
    count: int, rng: random.Random
) -> Iterator[tuple[str, str, str, dict[str, str], bytes, list[str]]]:
    """(kind, method, path+query, headers, body, planted values) for a realistic mix."""
    first = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
    for i in range(count):
        roll = rng.random()
        if roll < 0.10:
            yield "health", "GET", "/health", {"User-Agent": "kube-probe/1.29"}, b"", []
        elif roll < 0.40:
            yield "browse", "GET", f"/api/products?page={rng.randint(1, 6)}", {}, b"", []
        elif roll < 0.55:
            name = rng.choice(first)
            password = f"S3cret-{rng.randint(1000, 9999)}!"
            body = f"username={name}&password={password}".encode()
            yield (
                "login",
                "POST",
                "/api/login",
                {"Content-Type": "application/x-www-form-urlencoded"},
                body,
                [password],
            )
        else:
            name = rng.choice(first)
            email = f"{name}.{rng.randint(100, 999)}@example.com"
            phone = f"+1 415 555 {rng.randint(1000, 9999)}"
            card = rng.choice(["4111111111111111", "5500005555555559", "4012888888881881"])
            order = {
                "customer": {"email": email, "phone": phone, "name": name.title()},
                "payment": {"card_number": card, "cvv": f"{rng.randint(100, 999)}"},
                "items": [
                    {"product": rng.randint(0, 59), "qty": rng.randint(1, 4)}
                    for _ in range(rng.randint(1, 3))
                ],
                "note": f"order {i}",
            }
            headers = {
                "Content-Type": "application/json",
                "Authorization": f"Bearer tok_{uuid.uuid4().hex}",
                "Idempotency-Key": f"order-{i}",
            }
            yield (
                "order",
                "POST",
                "/api/orders",
                headers,
                orjson.dumps(order),
                [email, phone, card, headers["Authorization"]],
            )
            if rng.random() < 0.2:  # a client retry: same Idempotency-Key, deduplicated downstream
                yield "retry", "POST", "/api/orders", headers, orjson.dumps(order), []


def _drive(
    settings: Settings, port: int, count: int, services: _Services, out: Any
) -> tuple[Traffic, Tally]:
    import httpx
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    traffic, tally = Traffic(), Tally()
    consumer = make_consumer(
        settings.kafka, f"demo-watch-{uuid.uuid4().hex[:6]}", {"enable.auto.offset.store": True}
    )
    topics = settings.topics
    consumer.subscribe([topics.captured, topics.mirror, topics.results, topics.dlq])
    planned = list(_requests(count, random.Random(7)))
    columns = (
        TextColumn("{task.description:>10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=out) as progress:
            bars = {
                name: progress.add_task(name, total=len(planned))
                for name in ("sent", "captured", "mirrored", "replayed")
            }
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                for kind, method, target, headers, body, planted in planned:
                    response = client.request(method, target, headers=headers, content=body)
                    traffic.sent += 1
                    traffic.by_kind[kind] += 1
                    traffic.planted.extend(planted)
                    traffic.statuses[response.status_code] += 1
                    progress.update(bars["sent"], completed=traffic.sent)
                    _poll(consumer, topics, tally, budget=0.005)
                    _show(progress, bars, tally)
            quiet_since, last = time.monotonic(), (-1, -1, -1)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                services.check()
                _poll(consumer, topics, tally, budget=0.5)
                _show(progress, bars, tally)
                now = (len(tally.captured), len(tally.mirrored), len(tally.results))
                if now != last:
                    quiet_since, last = time.monotonic(), now
                done = now[0] >= traffic.sent and now[1] > 0 and now[2] >= now[1]
                if done and time.monotonic() - quiet_since > 3:
                    break
    finally:
        consumer.close()
    return traffic, tally


def _poll(consumer: Any, topics: Any, tally: Tally, budget: float) -> None:
    end = time.monotonic() + budget
    while True:
        msg = consumer.poll(max(0.0, end - time.monotonic()))
        if msg is None:
            return
        if msg.error():
            continue
        topic, value = msg.topic(), msg.value()
        if topic == topics.dlq:
            tally.dlq += 1
        elif topic == topics.results:
            with contextlib.suppress(orjson.JSONDecodeError):
                result = orjson.loads(value)
                if isinstance(result, dict) and "id" in result:
                    tally.results[str(result["id"])] = result
        else:
            try:
                env = decode(value)
            except EnvelopeError:
                continue
            if topic == topics.captured:
                tally.captured[env.id] = env
            else:
                tally.mirrored[env.id] = env
                tally.mirrored_raw.append(value)
        if time.monotonic() >= end:
            return


def _show(progress: Any, bars: dict[str, Any], tally: Tally) -> None:
    progress.update(bars["captured"], completed=len(tally.captured))
    progress.update(bars["mirrored"], completed=len(tally.mirrored))
    progress.update(bars["replayed"], completed=len(tally.results))


def _leaks(planted: list[str], raw_records: list[bytes]) -> list[str]:
    """Planted values found in mirror records, searched raw and inside base64 bodies."""
    haystacks: list[bytes] = []
    for raw in raw_records:
        haystacks.append(raw)
        record = orjson.loads(raw)
        for body in (record.get("body"), (record.get("response") or {}).get("body")):
            if body:
                haystacks.append(base64.b64decode(body))
    found = []
    for value in set(planted):
        needle = value.encode()
        if any(needle in hay for hay in haystacks):
            found.append(value)
    return sorted(found)


def _report(traffic: Traffic, tally: Tally) -> dict[str, Any]:
    mirrored_kinds = Counter(_kind(env) for env in tally.mirrored.values())
    replayed = [rid for rid in tally.mirrored if rid in tally.results]
    diffs = []
    for rid in replayed:
        env, result = tally.mirrored[rid], tally.results[rid]
        prod_status = env.response.status if env.response else None
        shadow_status = result.get("status")
        if prod_status != shadow_status:
            diffs.append(
                {
                    "id": rid,
                    "request": f"{env.method} {env.target}",
                    "production": prod_status,
                    "staging": shadow_status,
                }
            )
    leaks = _leaks(traffic.planted, tally.mirrored_raw)
    checks = {
        "every request captured": len(tally.captured) >= traffic.sent,
        "no planted PII in the mirror topic": not leaks,
        "health checks filtered": mirrored_kinds["health"] == 0,
        "client retries deduplicated": mirrored_kinds["order"] <= traffic.by_kind["order"],
        "every mirrored request replayed": len(replayed) == len(tally.mirrored)
        and bool(tally.mirrored),
        "nothing in the dead-letter topic": tally.dlq == 0,
    }
    return {
        "passed": all(checks.values()),
        "checks": checks,
        "sent": traffic.sent,
        "sent_by_kind": dict(traffic.by_kind),
        "production_statuses": {str(k): v for k, v in sorted(traffic.statuses.items())},
        "captured": len(tally.captured),
        "mirrored": len(tally.mirrored),
        "mirrored_by_kind": dict(mirrored_kinds),
        "replayed": len(replayed),
        "dead_lettered": tally.dlq,
        "planted_pii_values": len(set(traffic.planted)),
        "leaked_pii_values": leaks,
        "status_differences": diffs[:50],
        "status_difference_count": len(diffs),
        "sample_mirrored_request": _sample(tally),
    }


def _kind(env: Envelope) -> str:
    if env.path == "/health":
        return "health"
    if env.path == "/api/login":
        return "login"
    if env.path == "/api/orders":
        return "order"
    return "browse"


def _sample(tally: Tally) -> dict[str, Any] | None:
    for env in tally.mirrored.values():
        if env.path == "/api/orders" and env.body:
            return {
                "request": f"{env.method} {env.target}",
                "headers": env.headers,
                "body": env.body.decode("utf-8", "replace"),
                "meta": env.meta,
            }
    return None


def _write_report(report: dict[str, Any], report_dir: Path) -> tuple[Path, Path]:
    report_dir.mkdir(parents=True, exist_ok=True)
    json_path = report_dir / "shadowtap-demo-report.json"
    html_path = report_dir / "shadowtap-demo-report.html"
    json_path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    verdict = "all checks passed" if report["passed"] else "checks failed"
    checks = "".join(
        _row(name, f"<span class={'ok' if ok else 'bad'}>{'pass' if ok else 'FAIL'}</span>")
        for name, ok in report["checks"].items()
    )
    counts = "".join(
        _row(k, report[k]) for k in ("sent", "captured", "mirrored", "replayed", "dead_lettered")
    )
    diffs = "".join(
        _row(d["request"], d["production"], d["staging"]) for d in report["status_differences"]
    )
    sample = orjson.dumps(report["sample_mirrored_request"], option=orjson.OPT_INDENT_2).decode()
    html_path.write_text(
        f"""<!doctype html><html><head><meta charset="utf-8">
<title>shadowtap demo report</title><style>{_CSS}</style></head><body>
<h1>shadowtap demo — {verdict}</h1>
<h2>Checks</h2><table>{checks}</table>
<h2>Counts</h2><table>{counts}</table>
<h2>Staging answered differently ({report["status_difference_count"]})</h2>
<table><tr><th>request</th><th>production</th><th>staging</th></tr>{diffs}</table>
<h2>A mirrored order, as staging received it</h2><pre>{html.escape(sample)}</pre>
</body></html>
"""
    )
    return json_path, html_path


_CSS = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#222}
table{border-collapse:collapse;margin:1rem 0}
td,th{border:1px solid #ccc;padding:.3rem .7rem;text-align:left}
.ok{color:#16794c;font-weight:bold}.bad{color:#b3261e;font-weight:bold}
pre{background:#f5f5f5;padding:1rem;overflow:auto}"""


def _row(*cells: object) -> str:
    """One table row; text cells are escaped, pre-built markup (str with a tag) is kept."""
    out = []
    for cell in cells:
        text = str(cell)
        out.append(text if text.startswith("<span") else html.escape(text))
    return "<tr>" + "".join(f"<td>{c}</td>" for c in out) + "</tr>"


def _print_summary(out: Any, report: dict[str, Any], paths: tuple[Path, Path]) -> None:
    for name, ok in report["checks"].items():
        out.print(f"{'[green]✓' if ok else '[red]✗'}[/] {name}")
    out.print(
        f"sent {report['sent']} · captured {report['captured']} · mirrored {report['mirrored']} · "
        f"replayed {report['replayed']} · status differences {report['status_difference_count']}"
    )
    out.print(f"report: {paths[0]} and {paths[1]}")
