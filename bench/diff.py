"""Diff throughput on one core, and memory under a flood of unique field names.

    python bench/diff.py [--pairs 20000] [--flood-names 1000000] [--consumer-records 10000]
                         [--agent-workers 2]

Pairs: ~1 KB JSON order documents as two versions of a service answer them: every pair
differs in noise (a UUID, two timestamps, a trace id, a float within tolerance, a shuffled
unordered array) and one in ten also in a real way. ``compare`` runs the whole comparison of
two sides as a run makes it (status, headers, decoding both bodies, the structural walk,
five noise rules, value classes). Goal: >= 10,000 pairs/s (<= 100 µs a pair).

Baseline, same pairs, same process: decoding both bodies with orjson and comparing the
dicts with ``==``, the least any JSON comparison must do (it says only *whether* they
differ, with no rules). Peer: DeepDiff, the usual Python structural diff (fewer pairs: it
is slow). Also: what evaluating the five rule paths against both documents with a JSONPath
library (python-jsonpath) would add per pair, the approach this code avoids by compiling
rules to regular expressions over difference paths.

Consumer (``--consumer-records``, 0 to skip): the ``shadowtap diff run`` consumer end to
end. Results of three targets (two baselines, a candidate; each with production's response)
for that many records are written to a results topic (SHADOWTAP_BOOTSTRAP, else a local
broker started for the run), then read back, decoded, paired and compared three-way by
``DiffConsumer.run``; records/s from its first batch to its last result. Baseline: the same
result values handed to ``DiffConsumer.offer`` in the same process, without Kafka.

Agent (``--agent-workers``, 0 to skip): ``shadowtap diff serve``, the Faust agent, over the
same results topic, with 1 and then N worker processes (a run of their own each, on every
core: the one-core pin is for the comparisons above). Records/s from the first result the
workers counted to the last (their ``shadowtap_diff_results_total``, polled), beside the
consumer's: the agent also keeps every waiting result in its table's changelog.

Flood: a two-way DiffRun fed records whose bodies carry only new, never repeated member
names (random keys, as in diffy#59) until ``--flood-names`` distinct names went through;
RSS after a warm-up and after each quarter of the flood must stay flat. Ends with a JSON
line of figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shadowtap.diff.compare import Differ
from shadowtap.diff.model import Record, Request, Side
from shadowtap.diff.rules import parse_rules
from shadowtap.diff.run import DiffRun, Roles
from shadowtap.diff.tally import Limits

RULES = parse_rules(
    {
        "version": 1,
        "noise": [
            {"path": "$..price", "comparator": "numeric", "tolerance": 0.01},
            {"path": "$.tags", "comparator": "unordered"},
            {"path": "$.meta.trace_id"},
            {"path": "$..updated_at", "comparator": "timestamp", "seconds": 60},
            {"header": "x-request-id"},
        ],
    }
)
PATHS = [r.path for r in RULES.noise if r.path]
JSON = ("content-type", "application/json")


def _order(i: int, rng: random.Random, real: bool) -> dict[str, Any]:
    tags = ["gift", "express", "fragile", "eu"]
    rng.shuffle(tags)
    doc: dict[str, Any] = {
        "id": str(uuid.UUID(int=rng.getrandbits(128))),
        "number": 100_000 + i,
        "status": "paid",
        "created_at": f"2024-05-01T10:{rng.randint(10, 59)}:{rng.randint(10, 59)}Z",
        "updated_at": f"2024-05-01T11:00:{rng.randint(10, 59)}Z",
        "customer": {
            "id": 5000 + i % 97,
            "name": "Ann Example",
            "email": "ann@example.com",
            "address": {
                "street": "1 Main St",
                "city": "Springfield",
                "zip": "12345",
                "country": "US",
            },
        },
        "items": [
            {
                "sku": f"SKU-{k}",
                "name": f"Item {k}",
                "qty": k + 1,
                "price": 9.99 + k + rng.random() / 1e4,
            }
            for k in range(4)
        ],
        "tags": tags,
        "total": 49.96,
        "currency": "USD",
        "paid": True,
        "shipping": {"method": "ground", "carrier": "UPS", "eta_days": 3, "cost": 4.99},
        "payment": {"method": "card", "brand": "visa", "last4": "4242", "captured": True},
        "notes": "Leave the parcel at the back door; ring twice. Gift wrap, no invoice inside.",
        "meta": {"trace_id": f"{rng.getrandbits(64):016x}", "region": "us-east-1", "version": 7},
    }
    if real:
        doc["items"][2]["qty"] = 9
        doc["paid"] = 1
    return doc


def _pairs(n: int) -> list[tuple[Side, Side]]:
    rng = random.Random(42)
    out = []
    for i in range(n):
        a = orjson.dumps(_order(i, rng, False))
        b = orjson.dumps(_order(i, rng, i % 10 == 0))
        headers_a = (
            JSON,
            ("x-request-id", uuid.uuid4().hex),
            ("date", "Wed, 01 May 2024 10:00:00 GMT"),
        )
        headers_b = (
            JSON,
            ("x-request-id", uuid.uuid4().hex),
            ("date", "Wed, 01 May 2024 10:00:01 GMT"),
        )
        out.append((Side(200, headers_a, a), Side(200, headers_b, b)))
    return out


def _rate(n: int, fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _flood(names: int) -> tuple[list[float], int]:
    run = DiffRun(RULES, Roles("a", "b"), Limits(), drift=False)
    per_record = 10
    same = Side(200, (JSON,), b'{"data": {}, "ok": true}')
    counter = 0

    def feed(records: int) -> None:
        nonlocal counter
        for _ in range(records):
            keys = {f"k{counter + j}x": j for j in range(per_record)}
            counter += per_record
            body = Side(200, (JSON,), orjson.dumps({"data": keys, "ok": True}))
            run.add(Record(Request(str(counter), "GET", "/flood"), {"a": body, "b": same}))

    feed(20_000 // per_record)
    rss = [_rss_mb()]  # after a warm-up, then after each quarter of the flood
    for _ in range(4):
        feed(names // per_record // 4)
        rss.append(_rss_mb())
    (endpoint,) = run.summary().views[0].endpoints
    return rss, endpoint.fields_capped


def _results(records: int) -> list[bytes]:
    """Result values of three targets for ``records`` records, interleaved as they arrive."""
    from shadowtap import results
    from shadowtap.envelope import Response

    rng = random.Random(7)
    out = []
    for i in range(records):
        rid = str(uuid.UUID(int=rng.getrandbits(128)))
        production = orjson.dumps(_order(i, rng, False))
        prod = Response(200, [JSON], production, 2.0, len(production))
        for target, real in (("v1-a", False), ("v1-b", False), ("v2", i % 10 == 0)):
            body = orjson.dumps(_order(i, rng, real))
            result = results.Result(
                id=rid, target=target, method="GET", path=f"/orders/{i % 500}",
                status=200, headers=[JSON], body=body, body_size=len(body),
                duration_ms=3.0, captured=1_700_000_000_000 + i, production=prod,
            )  # fmt: skip
            out.append(results.encode(result))
    return out


def _agent_rate(settings: Any, total: int, workers: int) -> float:
    """Records/s of ``workers`` diff serve processes over ``total`` results already written."""
    import signal
    import subprocess
    import urllib.request

    from shadowtap.devkafka import free_port

    run = f"bench-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWTAP_")}
    env |= {
        "SHADOWTAP_TOPICS_RESULTS": settings.topics.results,
        "SHADOWTAP_TOPICS_DIFFS": settings.topics.diffs,
        "SHADOWTAP_TOPICS_DIFF_STATES": settings.topics.diff_states,
    }
    if hasattr(os, "sched_setaffinity"):  # the workers inherit it: every core, not one
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    ports = [free_port() for _ in range(workers)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shadowtap.cli",
                "diff",
                "serve",
                "--run",
                run,
                "--bootstrap",
                settings.kafka.bootstrap,
                "--baseline",
                "v1-a",
                "--secondary",
                "v1-b",
                "--candidate",
                "v2",
                "--metrics-port",
                str(port),
                "--publish-s",
                "5",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for port in ports
    ]

    def counted() -> int:
        n = 0
        for port in ports:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    text = r.read().decode()
            except OSError:
                continue
            for line in text.splitlines():
                if line.startswith("shadowtap_diff_results_total{"):
                    n += int(float(line.rpartition(" ")[2]))
        return n

    try:
        first = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            n = counted()
            now = time.perf_counter()
            if n and first is None:
                first = (now, n)
            if n >= total:
                break
            time.sleep(0.1)
        assert first is not None and n >= total, f"the agent counted {n} of {total} results"
        return (n - first[1]) / 3 / (now - first[0])
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(60)


def _consumer_rates(records: int, agent_workers: int) -> tuple[float, float, dict[int, float]]:
    """Records/s of the diff consumer reading Kafka, of its step without Kafka, and of the
    Faust agent with 1 and ``agent_workers`` processes."""
    from shadowtap.config import Settings
    from shadowtap.devkafka import resolve_broker
    from shadowtap.diff.consumer import DiffConsumer
    from shadowtap.kafka import create_topics, make_producer

    values = _results(records)
    roles = Roles("v1-a", "v2", secondary="v1-b")

    def consumer(settings: Settings) -> DiffConsumer:
        return DiffConsumer(settings, DiffRun(RULES, roles), roles.names, grace_ms=60_000)

    direct = consumer(Settings())
    start = time.perf_counter()
    for value in values:
        direct.offer(value)
    direct.finish()
    offline = records / (time.perf_counter() - start)
    with resolve_broker(f"bench-diff-{os.getpid()}", ephemeral=True) as broker:
        suffix = uuid.uuid4().hex[:8]
        topics = {
            "results": f"bench-results-{suffix}",
            "diffs": f"bench-diffs-{suffix}",
            "diff_states": f"bench-diff-states-{suffix}",
        }
        settings = Settings.load(
            env={},
            overrides={
                "kafka": {"bootstrap": broker.bootstrap},
                "topics": {**topics, "partitions": 3},
            },
        )
        create_topics(settings)
        producer = make_producer(settings.kafka, {"linger.ms": 50})
        for value in values:
            key = orjson.loads(value)["id"].encode()
            while True:
                try:
                    producer.produce(settings.topics.results, value, key=key)
                    break
                except BufferError:
                    producer.poll(0.1)
        producer.flush(60)
        reader = consumer(settings)
        marks: list[tuple[float, int]] = []

        def progress(n: int) -> None:
            marks.append((time.perf_counter(), n))

        reader.run(idle_s=2.0, write_diffs=True, progress=progress)
        (t0, n0), (t1, n1) = marks[0], marks[-1]
        assert n1 == len(values), f"read {n1} of {len(values)} results"
        counts = sorted({1, agent_workers}) if agent_workers else []
        agent = {n: _agent_rate(settings, len(values), n) for n in counts}
    return (n1 - n0) / 3 / (t1 - t0), offline, agent


def _consumer(records: int, agent_workers: int) -> dict[str, int]:
    kafka_rate, offline_rate, agent = _consumer_rates(records, agent_workers)
    print(f"diff consumer, three-way, {records:,} records x 3 results:")
    print(f"  from Kafka          {kafka_rate:10,.0f} records/s  (read, decode, pair, compare)")
    print(
        f"  same step, no Kafka {offline_rate:10,.0f} records/s  "
        f"Kafka shell at {kafka_rate / offline_rate:.2f}x"
    )
    for workers, rate in agent.items():
        print(
            f"  diff serve x{workers}        {rate:10,.0f} records/s  "
            f"(Faust agent, table changelog; {rate / kafka_rate:.2f}x the consumer)"
        )
    return {
        "consumer_records_per_s": round(kafka_rate),
        "consumer_offline_records_per_s": round(offline_rate),
        **{f"agent_x{n}_records_per_s": round(rate) for n, rate in agent.items()},
    }


def _line(name: str, rate: float, note: str) -> None:
    print(f"  {name:<20}{rate:10,.0f} pairs/s {1e6 / rate:8.1f} µs/pair  {note}")


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--peer-pairs", type=int, default=500)
    parser.add_argument("--flood-names", type=int, default=1_000_000)
    parser.add_argument("--consumer-records", type=int, default=10_000)
    parser.add_argument("--agent-workers", type=int, default=2)
    return parser.parse_args()


def main() -> None:
    args = _args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    # The flood first, before the pairs below take memory of their own.
    rss, capped = _flood(args.flood_names)
    pairs = _pairs(args.pairs)
    size = sum(len(a.body) + len(b.body) for a, b in pairs) / (2 * len(pairs))
    differ = Differ(RULES)
    real = sum(bool(differ.compare(a, b, "GET /orders/{id}", "v2").real) for a, b in pairs)

    def ours() -> None:
        for a, b in pairs:
            differ.compare(a, b, "GET /orders/{id}", "v2")

    def baseline() -> None:
        for a, b in pairs:
            _ = orjson.loads(a.body) == orjson.loads(b.body)

    ours_rate = max(_rate(len(pairs), ours) for _ in range(3))
    base_rate = max(_rate(len(pairs), baseline) for _ in range(3))
    figures: dict[str, Any] = {
        "pairs": len(pairs),
        "mean_body_bytes": round(size),
        "pairs_with_real_differences": real,
        "compare_per_s": round(ours_rate),
        "compare_us_per_pair": round(1e6 / ours_rate, 1),
        "baseline_decode_eq_per_s": round(base_rate),
        "ratio_vs_baseline": round(ours_rate / base_rate, 3),
    }
    print(f"1 KB JSON pairs ({size:.0f} B a body, {real} of {len(pairs)} with real differences)")
    _line("shadowtap compare", ours_rate, "(goal >= 10,000/s)")
    _line("baseline decode+==", base_rate, f"shadowtap at {ours_rate / base_rate:.2f}x")
    peer = pairs[: args.peer_pairs]
    try:
        from deepdiff import DeepDiff

        def deepdiff() -> None:
            for a, b in peer:
                DeepDiff(orjson.loads(a.body), orjson.loads(b.body))

        peer_rate = _rate(len(peer), deepdiff)
        figures["peer_deepdiff_per_s"] = round(peer_rate)
        _line("peer DeepDiff", peer_rate, f"shadowtap at {ours_rate / peer_rate:.0f}x")
    except ImportError:
        print("  peer DeepDiff       not installed (pip install deepdiff)")
    try:
        from jsonpath import JSONPathEnvironment

        env = JSONPathEnvironment(strict=True)
        compiled = [env.compile(p) for p in PATHS]

        def library() -> None:
            for a, b in peer:
                for doc in (orjson.loads(a.body), orjson.loads(b.body)):
                    for path in compiled:
                        path.findall(doc)

        lib_rate = _rate(len(peer), library)
        figures["jsonpath_library_rules_us_per_pair"] = round(1e6 / lib_rate, 1)
        print(
            f"  rules evaluated by python-jsonpath on both documents: +{1e6 / lib_rate:.0f} µs/pair"
        )
    except ImportError:
        print("  python-jsonpath not installed: rule evaluation by a library not measured")
    figures |= _consumer(args.consumer_records, args.agent_workers) if args.consumer_records else {}
    figures |= {"flood_names": args.flood_names, "rss_mb": [round(r, 1) for r in rss]}
    steps = " -> ".join(f"{r:.1f}" for r in rss)
    print(f"flood of {args.flood_names:,} unique field names: RSS MB after warm-up, each quarter")
    print(f"  {steps} ({rss[-1] - rss[0]:+.1f} MB); {capped:,} differences counted past the cap")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
