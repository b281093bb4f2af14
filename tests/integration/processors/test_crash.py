"""At-least-once through ``kill -9`` mid-stream and through rebalances; dedup memory survives,
and scrubber processes do not outlive their worker."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from shadowtap.config import Settings
from shadowtap.envelope import Envelope, decode
from tests.integration.processors.conftest import Reader, Worker, produce


def _env(i: int, path: str = "/orders") -> Envelope:
    return Envelope(method="POST", path=f"{path}/{i}", body=f'{{"n": {i}}}'.encode())


def test_kill_9_mid_stream_then_restart_loses_nothing(
    settings: Settings,
    start_worker: Callable[..., Worker],
    reader: Callable[[list[str]], Reader],
    tmp_path: Path,
) -> None:
    mirror, dlq = settings.topics.mirror, settings.topics.dlq
    originals = [_env(i) for i in range(3000)]
    probes = [_env(i, "/healthz") for i in range(100)]
    malformed = [b"garbage %d" % i for i in range(20)]
    produce(settings, [*originals[:1500], *probes, *malformed, *originals[1500:]])
    out = reader([mirror, dlq])

    # Scrubbing in a process of its own, which must not outlive the worker.
    first = start_worker(dedup_window_s=600, batch_size=200, scrub_processes=1)
    out.until(lambda _: out.counts[mirror] >= 600, first)
    scrubbers = _descendants(first.proc.pid)
    assert scrubbers, "no scrubber process"
    os.kill(first.proc.pid, signal.SIGKILL)  # mid-stream: no flush, no commit, no goodbye
    first.proc.wait(10)
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in scrubbers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in scrubbers if _alive(pid)], "orphaned scrubber processes"

    # Duplicates (same content, new ids) of records the first worker already handled.
    handled = out.ids[mirror]
    duplicates = [_env(int(e.path.rsplit("/", 1)[1])) for e in originals if e.id in handled][:200]
    fresh = [_env(i) for i in range(5000, 5300)]
    produce(settings, [*duplicates, *fresh])

    second = start_worker(dedup_window_s=600, batch_size=200, scrub_processes=1)
    want = {e.id for e in originals} | {e.id for e in fresh}

    def explain() -> str:
        missing = want - out.ids[mirror]
        paths = sorted(e.path for e in [*originals, *fresh] if e.id in missing)
        metrics = {k: v for k, v in second.metrics().items() if "_total" in k}
        return f"missing {len(missing)}: {paths[:20]}; metrics {metrics}"

    out.until(
        lambda _: want <= out.ids[mirror] and out.counts[dlq] >= len(malformed),
        second,
        explain=explain,
    )
    out.drain(3)

    # Every kept input is out (some twice: at-least-once); no probe and no duplicate slipped
    # through, although the first worker's dedup memory came back from the changelog.
    assert out.ids[mirror] == want
    assert not out.ids[mirror] & {e.id for e in duplicates}
    assert {m.value() for m in out.messages if m.topic() == dlq} == set(malformed)
    redelivered = out.counts[mirror] - len(want)
    assert redelivered >= 0
    metrics = second.metrics_when(
        'shadowtap_processor_dropped_total{reason="duplicate"}', len(duplicates)
    )
    assert metrics['shadowtap_processor_dropped_total{reason="duplicate"}'] == len(duplicates)
    assert all(
        decode(m.value()).meta["filter"] == "pass" for m in out.messages[:50] if m.topic() == mirror
    )
    # the memory store keeps nothing on disk, and Faust's data directory is not left behind
    assert not list(tmp_path.glob("*-data")), "the worker wrote into its working directory"


def _descendants(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            out += [int(child), *_descendants(int(child))]
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; init reaps it


class Trickle(threading.Thread):
    """Keeps producing fresh records until stopped, so every rebalance happens mid-stream."""

    def __init__(self, settings: Settings, per_second: int) -> None:
        super().__init__(daemon=True)
        self.settings, self.per_tick = settings, max(1, per_second // 10)
        self.records: list[Envelope] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.1):
            batch = [_env(len(self.records) + i, "/trickle") for i in range(self.per_tick)]
            produce(self.settings, list(batch))
            self.records.extend(batch)

    def stop(self) -> list[Envelope]:
        self.halt.set()
        self.join(30)
        return self.records


def test_workers_joining_and_leaving_mid_stream_lose_nothing(
    settings: Settings, start_worker: Callable[..., Worker], reader: Callable[[list[str]], Reader]
) -> None:
    # Each join and leave is a rebalance: partitions move, Faust seeks back to committed
    # offsets, and its fetcher may skip records (shadowtap.processors.holes reads them back).
    # Records keep arriving throughout, so no worker runs out of work before a rebalance.
    mirror = settings.topics.mirror
    backlog = [_env(i) for i in range(3000)]
    produce(settings, backlog)
    trickle = Trickle(settings, per_second=150)
    trickle.start()
    out = reader([mirror])
    first = start_worker(batch_size=200)
    try:
        out.until(lambda _: out.counts[mirror] >= 300, first)
        for stop in (signal.SIGTERM, signal.SIGKILL):  # 2 → 1 gracefully, then abruptly
            joined = start_worker(batch_size=200)  # 1 → 2 workers
            took = joined.metrics_when("shadowtap_processor_records_in_total", 100, limit_s=90)
            assert took.get("shadowtap_processor_records_in_total", 0) >= 1, "no partition moved"
            joined.kill(stop)
            out.drain(2)
    finally:
        records = [*backlog, *trickle.stop()]
    want = {e.id for e in records}

    def explain() -> str:
        missing = want - out.ids[mirror]
        return f"missing {len(missing)}: {sorted(e.path for e in records if e.id in missing)[:20]}"

    out.until(lambda _: want <= out.ids[mirror], first, limit_s=120, explain=explain)
    assert out.ids[mirror] == want


def test_a_worker_joining_mid_stream_processes_nothing_twice(
    settings: Settings, start_worker: Callable[..., Worker], reader: Callable[[list[str]], Reader]
) -> None:
    # aiokafka rebalances eagerly: the join revokes every partition of the first worker, and
    # each starts again at the group's committed offset. The first worker finishes and
    # commits its batches in flight before the group moves on, so nothing comes out twice
    # but what the rebalance's wait gave up on. A backlog keeps its batches full: it is
    # topped up until the joiner has taken records, however long its start takes (on a
    # loaded machine the first worker once finished a fixed backlog before the join).
    mirror = settings.topics.mirror
    produced = [_env(i) for i in range(8000)]
    produce(settings, produced)
    out = reader([mirror])
    first = start_worker(batch_size=200)
    out.until(lambda _: out.counts[mirror] >= 200, first)
    joined = start_worker(batch_size=200)
    took = _Joiner(joined)

    def joined_with_a_backlog(_: object) -> bool:
        if len(produced) - out.counts[mirror] < 4000:
            more = [_env(len(produced) + i) for i in range(2000)]
            produce(settings, list(more))
            produced.extend(more)
        return took.records() >= 200

    out.until(joined_with_a_backlog, joined, limit_s=120)
    want = {e.id for e in produced}
    out.until(lambda _: want <= out.ids[mirror], first, limit_s=120)
    out.drain(2)
    twice = out.counts[mirror] - len(want)
    print(
        f"\nprocess, a worker joining a backlog (batches of 200, {len(produced)} records): "
        f"{twice} written twice; the joiner took {took.records():.0f}"
    )
    assert twice <= 200  # one batch; before: the batches in flight and 0.5 s of commits


class _Joiner:
    """A worker's records taken so far, asked at most twice a second (0 while it starts)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self._taken = 0.0
        self._asked = 0.0

    def records(self) -> float:
        if time.monotonic() - self._asked >= 0.5:
            self._asked = time.monotonic()
            with contextlib.suppress(OSError):
                metrics = self.worker.metrics()
                self._taken = metrics.get("shadowtap_processor_records_in_total", 0)
        return self._taken
