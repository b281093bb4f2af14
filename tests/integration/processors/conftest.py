"""A processor worker as a subprocess (``shadowtap process``), and helpers around it.

Every worker a test starts is stopped at teardown (SIGTERM, then SIGKILL), so no test leaves
a process behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer

from shadowtap.config import Settings
from shadowtap.envelope import Envelope, encode, kafka_headers
from shadowtap.kafka import create_topics, make_consumer, make_producer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Worker:
    """One ``shadowtap process`` subprocess with its log file and metrics port."""

    def __init__(self, settings: Settings, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log
        self._fh = log.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shadowtap.cli",
                "process",
                "--bootstrap",
                settings.kafka.bootstrap,
                "--web-port",
                str(self.port),
                "--loglevel",
                "warning",
            ],
            env=env,
            cwd=log.parent,  # a test can see what the worker leaves in its working directory
            stdout=self._fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def metrics(self) -> dict[str, float]:
        """Prometheus samples as ``{"name{labels}": value}``."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def metrics_when(self, name: str, at_least: float, limit_s: float = 30) -> dict[str, float]:
        """Metrics once ``name`` has reached ``at_least`` (records may still be in flight)."""
        deadline = time.monotonic() + limit_s
        while True:
            try:
                metrics = self.metrics()
            except OSError:  # still starting: /metrics is not served yet
                metrics = {}
            if metrics.get(name, 0) >= at_least or time.monotonic() > deadline:
                return metrics
            time.sleep(0.2)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.proc.wait(10)
        self._fh.close()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.fixture
def processor_env(settings: Settings, unique_name: Callable[[str], str]) -> dict[str, str]:
    """Environment naming this test's topics and a group of its own."""
    return worker_env(settings, unique_name("processor"))


def worker_env(settings: Settings, group: str) -> dict[str, str]:
    """Environment for a worker of ``group`` on the topics of ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWTAP_")}
    t = settings.topics
    env.update(
        {
            "SHADOWTAP_TOPICS_CAPTURED": t.captured,
            "SHADOWTAP_TOPICS_MIRROR": t.mirror,
            "SHADOWTAP_TOPICS_RESULTS": t.results,
            "SHADOWTAP_TOPICS_DLQ": t.dlq,
            "SHADOWTAP_TOPICS_PARTITIONS": str(t.partitions),
            "SHADOWTAP_PROCESSOR_GROUP": group,
            "SHADOWTAP_PROCESSOR_SCRUB_KEY": "integration-test-key",
            "SHADOWTAP_PROCESSOR_SESSION_TIMEOUT_S": "6",
        }
    )
    return env


@pytest.fixture
def start_worker(
    settings: Settings, processor_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., Worker]]:
    workers: list[Worker] = []

    def start(**processor: Any) -> Worker:
        env = dict(processor_env)
        for key, value in processor.items():
            text = value if isinstance(value, str) else orjson.dumps(value).decode()
            env[f"SHADOWTAP_PROCESSOR_{key.upper()}"] = text
        worker = Worker(settings, env, tmp_path / f"worker-{len(workers)}.log")
        workers.append(worker)
        return worker

    create_topics(settings)
    yield start
    for worker in workers:
        worker.stop()


def produce(settings: Settings, records: list[Envelope | bytes], key: bytes | None = None) -> None:
    producer = make_producer(settings.kafka)
    for record in records:
        if isinstance(record, Envelope):
            producer.produce(
                settings.topics.captured,
                encode(record),
                key=key or record.id.encode(),
                headers=kafka_headers(record),
            )
        else:
            producer.produce(settings.topics.captured, record, key=key)
        producer.poll(0)
    assert producer.flush(30) == 0


class Reader:
    """Reads output topics from the beginning, keeping every message seen."""

    def __init__(self, settings: Settings, topics: list[str], group: str) -> None:
        self.consumer: Consumer = make_consumer(settings.kafka, group)
        self.consumer.subscribe(topics)
        self.messages: list[Any] = []
        # envelope ids per topic, kept as messages arrive (DLQ records have none)
        self.ids: dict[str, set[str]] = {t: set() for t in topics}
        self.counts: dict[str, int] = dict.fromkeys(topics, 0)

    def _poll(self) -> None:
        for msg in self.consumer.consume(500, 0.2):
            if msg.error():
                continue
            self.messages.append(msg)
            self.counts[msg.topic()] += 1
            with contextlib.suppress(orjson.JSONDecodeError, KeyError, TypeError):
                self.ids[msg.topic()].add(orjson.loads(msg.value())["id"])

    def until(
        self,
        done: Callable[[list[Any]], bool],
        worker: Worker,
        limit_s: float = 90,
        explain: Callable[[], str] = lambda: "",
    ) -> None:
        """Poll until ``done(messages)``; fail with the worker's log after ``limit_s``."""
        deadline = time.monotonic() + limit_s
        while not done(self.messages):
            if time.monotonic() > deadline:
                pytest.fail(
                    f"output incomplete ({self.counts}) {explain()}; worker log:\n"
                    + worker.tail()[-1500:]
                )
            if worker.proc.poll() is not None and worker.proc.returncode not in (None, -9):
                pytest.fail(f"worker exited with {worker.proc.returncode}:\n{worker.tail()}")
            self._poll()

    def drain(self, seconds: float) -> None:
        """Keep reading for a while, to catch records that should not come."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self._poll()

    def close(self) -> None:
        self.consumer.close()


@pytest.fixture
def reader(
    settings: Settings, unique_name: Callable[[str], str]
) -> Iterator[Callable[[list[str]], Reader]]:
    readers: list[Reader] = []

    def make(topics: list[str]) -> Reader:
        r = Reader(settings, topics, unique_name("reader"))
        readers.append(r)
        return r

    yield make
    for r in readers:
        r.close()
