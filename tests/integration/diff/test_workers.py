"""``shadowtap diff serve``: the Faust agent paired across workers, resumed after a restart.

Real broker, real worker processes. Results of three targets are written keyed by record id
(as the replayers write them); two workers share the partitions. Half the candidate's
results come only after both workers stopped: the records waiting for them are in the
``pairs`` table's changelog, and a third worker, started afresh, completes them. The report
merges every worker's published state: each record compared exactly once, the planted
regression named, the noise not.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from confluent_kafka import KafkaException

from shadowtap import results
from shadowtap.config import Settings
from shadowtap.diff import states
from shadowtap.diff.rules import Rules
from shadowtap.diff.summary import Summary
from shadowtap.kafka import create_topics, make_admin, make_producer

pytestmark = pytest.mark.kafka

RECORDS = 300
TARGETS = ("v1-a", "v1-b", "v2")
JSON = [("content-type", "application/json")]


def _result(i: int, target: str) -> bytes:
    body = {"id": i, "request_id": f"{target}-{i}-{time.monotonic_ns()}", "n": 1}
    if target == "v2" and i % 2:
        body["n"] = "1"  # planted: a type change on every other record
    raw = orjson.dumps(body)
    return results.encode(
        results.Result(
            id=f"r{i:05d}",
            target=target,
            method="GET",
            path=f"/items/{i}",
            status=200,
            headers=JSON,
            body=raw,
            body_size=len(raw),
            duration_ms=2.0,
            captured=1_700_000_000_000 + i,
        )
    )


def _produce(settings: Settings, values: list[tuple[int, str]]) -> None:
    producer = make_producer(settings.kafka)
    for i, target in values:
        producer.produce(settings.topics.results, _result(i, target), key=f"r{i:05d}".encode())
        producer.poll(0)
    assert producer.flush(30) == 0


class _Worker:
    def __init__(self, settings: Settings, run: str, log: Path) -> None:
        t = settings.topics
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWTAP_")}
        env.update(
            SHADOWTAP_TOPICS_RESULTS=t.results,
            SHADOWTAP_TOPICS_DIFFS=t.diffs,
            SHADOWTAP_TOPICS_DIFF_STATES=t.diff_states,
            SHADOWTAP_TOPICS_PARTITIONS=str(t.partitions),
        )
        self.log = log
        self._fh = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shadowtap.cli", "diff", "serve", "--run", run,
             "--bootstrap", settings.kafka.bootstrap, "--baseline", "v1-a",
             "--secondary", "v1-b", "--candidate", "v2", "--publish-s", "1"],
            env=env, cwd=log.parent, stdout=self._fh, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._fh.close()


@pytest.fixture
def start(settings: Settings, tmp_path: Path) -> Iterator[Callable[[str], _Worker]]:
    workers: list[_Worker] = []

    def make(run: str) -> _Worker:
        workers.append(_Worker(settings, run, tmp_path / f"worker-{len(workers)}.log"))
        return workers[-1]

    create_topics(settings)
    yield make
    for worker in workers:
        worker.stop()


def _both_assigned(settings: Settings, group: str, logs: Path, limit_s: float = 60) -> None:
    """Wait until the group's two workers each own results partitions (so both pair)."""
    admin = make_admin(settings.kafka)
    deadline = time.monotonic() + limit_s
    owned: list[int] = []
    while time.monotonic() < deadline:
        try:
            found = admin.describe_consumer_groups([group])[group].result(10)
        except (KafkaException, TimeoutError):  # the group is not there yet
            found = None
        if found is not None and str(found.state).endswith("STABLE"):
            owned = [
                sum(tp.topic == settings.topics.results for tp in m.assignment.topic_partitions)
                for m in found.members
            ]
            if len(owned) == 2 and all(owned):
                return
        time.sleep(0.5)
    tails = "\n".join(p.read_text()[-1500:] for p in sorted(logs.glob("worker-*.log")))
    pytest.fail(f"the two workers did not both get partitions ({owned}):\n{tails}")


def _summary_when(
    settings: Settings, run: str, done: Callable[[list[dict[str, object]], Summary], bool],
    logs: Path, limit_s: float = 90,
) -> tuple[list[dict[str, object]], Summary]:  # fmt: skip
    deadline = time.monotonic() + limit_s
    summary = None
    while True:
        found = states.load(settings.kafka, settings.topics.diff_states, run)
        if found:
            summary = states.merged_summary(found, Rules())
            if done(found, summary):
                return found, summary
        if time.monotonic() > deadline:
            tails = "\n".join(p.read_text()[-1500:] for p in sorted(logs.glob("worker-*.log")))
            totals = summary.totals if summary else None
            waits = [(f["worker"], f["waiting"], f["read"], f["state"]["records"]) for f in found]
            pytest.fail(f"the workers did not get there ({waits}, {totals}):\n{tails}")
        time.sleep(0.5)


def test_two_workers_share_the_pairing_and_a_third_resumes_it(
    settings: Settings, start: Callable[[str], _Worker], tmp_path: Path
) -> None:
    run = f"it-{tmp_path.name[-8:]}"
    half = RECORDS // 2
    first = [start(run), start(run)]
    _both_assigned(settings, f"shadowtap-diff-{run}", tmp_path)
    _produce(settings, [(i, t) for i in range(RECORDS) for t in ("v1-a", "v1-b")])
    _produce(settings, [(i, "v2") for i in range(half)])

    def both_compared_half(found: list[dict[str, object]], s: Summary) -> bool:
        return (
            s.totals.compared == half
            and s.totals.waiting == RECORDS - half
            and all(orjson.loads(orjson.dumps(f["state"]))["records"] for f in found)
            and len(found) == 2
        )

    _summary_when(settings, run, both_compared_half, tmp_path)
    for worker in first:
        worker.stop()  # the records still waiting for v2 are in the table's changelog
    # With no worker running, the report still says what waits (as the workers left it).
    _summary_when(settings, run, lambda f, s: s.totals.waiting == RECORDS - half, tmp_path, 5)

    start(run)
    _produce(settings, [(i, "v2") for i in range(half, RECORDS)])
    _produce(settings, [(0, "v2")])  # a redelivery of a record compared before the restart
    found, summary = _summary_when(
        settings,
        run,
        lambda f, s: s.totals.records >= RECORDS and s.totals.waiting == 0,
        tmp_path,
    )
    time.sleep(2)  # a second publication: nothing is counted twice
    found, summary = _summary_when(settings, run, lambda f, s: True, tmp_path)
    totals = summary.totals
    assert (totals.records, totals.compared, totals.unpaired) == (RECORDS, RECORDS, 0)
    assert len(found) == 3 and totals.redeliveries.get("v2", 0) >= 1  # r0, and any rebalance's
    regression = summary.view("regression")
    assert regression is not None
    verdicts = {f.field: f.verdict for e in regression.endpoints for f in e.fields}
    assert verdicts["$.n"] == "regression"
    assert verdicts["$.request_id"] != "regression"  # differs between the baselines too
