"""The demo's traffic: a realistic mix sent to production, and what came out on each topic.

Health checks, product browsing, logins (a password planted in the form) and orders
(e-mail, phone, card number and a bearer token planted), a fifth of orders retried by the
client with the same ``Idempotency-Key``. While sending, and until the topics are quiet,
a watcher reads the captured, mirror, results and DLQ topics so the report can check them.
"""

from __future__ import annotations

import contextlib
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from shadowtap.config import Settings, TopicSettings
from shadowtap.demo.services import Services
from shadowtap.envelope import Envelope, decode
from shadowtap.errors import EnvelopeError
from shadowtap.kafka import make_consumer


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


def planned_requests(
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


def drive(
    settings: Settings, port: int, count: int, services: Services, out: Any
) -> tuple[Traffic, Tally]:
    import httpx
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    traffic, tally = Traffic(), Tally()
    consumer = make_consumer(
        settings.kafka, f"demo-watch-{uuid.uuid4().hex[:6]}", {"enable.auto.offset.store": True}
    )
    topics = settings.topics
    consumer.subscribe([topics.captured, topics.mirror, topics.results, topics.dlq])
    planned = list(planned_requests(count, random.Random(7)))
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


def _poll(consumer: Any, topics: TopicSettings, tally: Tally, budget: float) -> None:
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


def guard_counts(port: int) -> dict[str, int]:
    """What staging's guard counted (``GET /guard/metrics``): requests it verified as
    mirrored, and the e-mails it blocked."""
    import httpx

    text = httpx.get(f"http://127.0.0.1:{port}/guard/metrics", timeout=10).text
    counts = {"verified": 0, "emails_blocked": 0}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name.startswith('shadowtap_guard_marked_requests_total{verdict="valid"'):
            counts["verified"] += int(float(value))
        elif name.startswith('shadowtap_guard_blocked_total{effect="smtp"'):
            counts["emails_blocked"] += int(float(value))
    return counts
