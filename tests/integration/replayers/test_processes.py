"""``shadowtap replay`` worker processes: SIGKILL and restart, scaling 1 → 3 → 1, bad URL."""

from __future__ import annotations

import collections
import dataclasses
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable

from shadowtap.config import Settings
from shadowtap.envelope import Envelope, encode
from shadowtap.kafka import create_topics, make_producer, retry_topic_spec
from tests.integration.replayers.conftest import (
    ProcessWorker,
    Reader,
    TargetServer,
    committed,
    envelopes,
    free_port,
    produce,
    with_replayer,
)


def _wait(cond: Callable[[], bool], limit_s: float, why: str, *workers: ProcessWorker) -> None:
    deadline = time.monotonic() + limit_s
    while not cond():
        if time.monotonic() > deadline:
            logs = "\n---\n".join(w.tail() for w in workers)
            raise AssertionError(f"timed out: {why}\n{logs}")
        time.sleep(0.05)


def _delivered(port: int) -> float:
    """Deliveries a worker counted, from its /metrics (0 while it starts)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            lines = resp.read().decode().splitlines()
    except OSError:  # not serving yet
        return 0.0
    return sum(
        float(line.rpartition(" ")[2])
        for line in lines
        if line.startswith("shadowtap_replayer_delivered_total{")
    )


def test_sigkill_mid_batch_then_restart_loses_nothing(
    rsettings: Settings,
    target: TargetServer,
    process_worker: Callable[..., ProcessWorker],
) -> None:
    s = with_replayer(rsettings, target=target.url)
    target.mode = "slow:0.05"
    records = envelopes(300)
    produce(s, list(records))
    first = process_worker(s, "--max-in-flight", "8")
    _wait(lambda: len(target.seen) >= 100, 60, "first worker delivering", first)
    first.kill(signal.SIGKILL)
    first.proc.wait(10)
    killed_at = len(target.seen)
    target.mode = "ok"
    second = process_worker(s, "--max-in-flight", "8")
    want = {e.id for e in records}
    _wait(lambda: want <= set(target.ids()), 90, "restart delivers the rest", second)
    counts = collections.Counter(target.ids())
    duplicates = {i for i, n in counts.items() if n > 1}
    # Only what was in flight or not yet committed at the kill is sent twice: at most the
    # window (8 in flight + 64 buffered), well below what the first worker had delivered.
    assert len(duplicates) <= 72 < killed_at
    # A repeated request carries the same Idempotency-Key as the first one.
    for seen in target.seen:
        assert seen.headers["Idempotency-Key"] == seen.headers["X-Shadowtap-Id"]
    assert second.stop() == 0


def test_sigterm_drains_in_flight_requests_and_commits_them(
    rsettings: Settings,
    target: TargetServer,
    process_worker: Callable[..., ProcessWorker],
    reader: Callable[[str], Reader],
) -> None:
    s = with_replayer(rsettings, target=target.url)
    target.mode = "slow:0.4"
    records = envelopes(16)
    produce(s, list(records))
    worker = process_worker(s, "--max-in-flight", "4")
    _wait(lambda: len(target.seen) >= 4, 60, "requests in flight", worker)
    worker.kill(signal.SIGTERM)
    assert worker.proc.wait(30) == 0, worker.tail()
    out = reader(s.topics.results)
    out.until(lambda r: len(r.messages) >= len(target.seen))
    # Nothing that reached the target was abandoned, and everything answered is committed.
    assert {r.id for r in out.results()} == set(target.ids())
    assert {r.status for r in out.results()} == {200}
    assert sum(max(0, o) for o in committed(s, s.replayer.group).values()) == len(out.messages)


def test_scaling_one_to_three_and_back_during_traffic_loses_nothing(
    rsettings: Settings,
    target: TargetServer,
    process_worker: Callable[..., ProcessWorker],
) -> None:
    s = with_replayer(rsettings, target=target.url)
    produced: list[Envelope] = []
    stop = threading.Event()

    def traffic() -> None:
        n = 0
        while not stop.is_set():
            batch = [
                Envelope(method="POST", path=f"/s/{(n + i) % 20}", body=b"%d" % (n + i))
                for i in range(25)
            ]
            produce(s, list(batch), key=lambda i, n=n: b"session-%d" % ((n + i) % 20))
            produced.extend(batch)
            n += 25
            time.sleep(0.05)

    producer = threading.Thread(target=traffic)
    producer.start()
    try:
        one = process_worker(s)
        _wait(lambda: len(target.seen) >= 100, 60, "one worker", one)
        more = [process_worker(s), process_worker(s)]
        mark = len(target.seen)
        _wait(lambda: len(target.seen) >= mark + 300, 60, "three workers", one, *more)
        time.sleep(3)  # let the group settle with three members
        for w in more:
            assert w.stop() == 0, w.tail()
        mark = len(target.seen)
        _wait(lambda: len(target.seen) >= mark + 300, 60, "back to one", one)
    finally:
        stop.set()
        producer.join()
    want = {e.id for e in produced}
    _wait(lambda: want <= set(target.ids()), 60, "every record delivered", one)
    # Per session, the first delivery of each record follows the production order.
    first_seen: dict[str, list[int]] = collections.defaultdict(list)
    done: set[str] = set()
    for seen in target.seen:
        rid = seen.headers["X-Shadowtap-Id"]
        if rid not in done:
            done.add(rid)
            first_seen[seen.path].append(int(seen.body))
    for path, bodies in first_seen.items():
        assert bodies == sorted(bodies), path
    assert one.stop() == 0


def test_a_worker_joining_a_backlog_sends_again_at_most_what_was_in_flight(
    rsettings: Settings,
    target: TargetServer,
    process_worker: Callable[..., ProcessWorker],
) -> None:
    # The two workers on one group: the second joins while the first has a full
    # window (8 x max_in_flight records read, max_in_flight of them with the target) of the
    # partition it is about to give up. Only that partition's records in flight may arrive
    # twice, and those that finished behind one still in flight (a commit is one offset).
    in_flight = 8
    s = with_replayer(rsettings, target=target.url)
    target.mode = "slow:0.01"  # at most 800/s: the backlog lasts while the second starts
    records = envelopes(3000)
    producer = make_producer(s.kafka)
    for env in records:  # all in partition 0, which the assignor moves first
        producer.produce(s.topics.mirror, encode(env), key=env.id.encode(), partition=0)
    assert producer.flush(30) == 0
    first = process_worker(s, "--max-in-flight", str(in_flight))
    _wait(lambda: len(target.seen) >= 300, 60, "the first worker delivering", first)
    port = free_port()
    second = process_worker(s, "--max-in-flight", str(in_flight), "--metrics-port", str(port))
    want = {e.id for e in records}
    _wait(lambda: want <= set(target.ids()), 90, "every record delivered", first, second)
    time.sleep(1)
    # Only partition 0 of the mirror has records to deliver.
    took = _delivered(port)
    assert first.stop() == 0 and second.stop() == 0
    assert took > 0, "partition 0 stayed with the first worker:\n" + second.tail()
    twice = len(target.seen) - len(want)
    print(
        f"\nreplay, a worker joining a backlog ({in_flight} in flight, {8 * in_flight} read "
        f"ahead): {twice} of {len(records)} sent twice; the joiner delivered {took:.0f}"
    )
    # In flight, or finished behind one still in flight; before: the whole window (~70).
    assert twice <= 2 * in_flight, first.tail() + "\n---\n" + second.tail()


def test_two_workers_each_own_mirror_partitions_whatever_the_retry_topic_size(
    rsettings: Settings,
    target: TargetServer,
    process_worker: Callable[..., ProcessWorker],
) -> None:
    # CI: each worker read the mirror (3 partitions) and its group's retry topic (6) in one
    # consumer; the assignor balances the partition count over both, so the joiner took
    # "[0, 2, 1, 0]" (the three mirror partitions and retry 0) and the first worker kept
    # only empty retry partitions. Records trickle into every mirror partition throughout.
    s = with_replayer(rsettings, target=target.url)
    retry = dataclasses.replace(retry_topic_spec(s.topics, s.replayer.group), partitions=6)
    create_topics(s, specs=[retry])
    stop = threading.Event()

    def trickle() -> None:
        producer = make_producer(s.kafka)
        n = 0
        while not stop.is_set():
            for partition in range(s.topics.partitions):
                env = Envelope(method="POST", path=f"/t/{n}", body=b"%d" % n)
                producer.produce(s.topics.mirror, encode(env), partition=partition)
                n += 1
            producer.poll(0)
            time.sleep(0.02)
        producer.flush(10)

    producer = threading.Thread(target=trickle)
    producer.start()
    try:
        ports = free_port(), free_port()
        first = process_worker(s, "--metrics-port", str(ports[0]))
        _wait(lambda: len(target.seen) >= 50, 60, "the first worker delivering", first)
        second = process_worker(s, "--metrics-port", str(ports[1]))
        # Once the joiner delivers, it was given its partitions; with the cooperative
        # assignor the first worker gave its share up before that.
        _wait(lambda: _delivered(ports[1]) > 0, 60, "the joiner delivering", first, second)
        mark = _delivered(ports[0])
        _wait(
            lambda: _delivered(ports[0]) >= mark + 50,
            30,
            "the first worker kept a mirror partition (it delivered nothing after the join)",
            first,
            second,
        )
    finally:
        stop.set()
        producer.join()
    print("\n" + "\n".join(_assignments(w) for w in (first, second)))
    assert first.stop() == 0 and second.stop() == 0


def _assignments(worker: ProcessWorker) -> str:
    """The worker's assignment log lines."""
    lines = worker.log.read_text(errors="replace").splitlines()
    return "\n".join(line for line in lines if "assigned" in line or "revoked" in line)


def test_a_target_url_typo_fails_at_start_with_a_clear_error() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "shadowtap.cli",
            "replay",
            "--bootstrap",
            "127.0.0.1:1",
            "--target",
            "htps://staging.internal",
            "--group",
            "staging",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    message = " ".join(proc.stderr.split())  # rich wraps long lines
    assert proc.returncode == 2, proc.stderr
    assert "replay target 'htps://staging.internal' must start with http:// or https://" in message
