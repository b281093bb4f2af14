"""The demo's child processes: the two shop apps and the pipeline's stages, supervised.

Each child logs to its own file in the run's directory; one that exits early stops the
demo with its log's name, and every child is stopped at the end (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from shadowtap.config import Settings
from shadowtap.configload import to_env
from shadowtap.errors import ShadowtapError


def stage_env(settings: Settings, run_id: str) -> dict[str, str]:
    """The environment of every child: this run's Kafka and topics, nothing inherited."""
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


class Services:
    """Child processes of the demo, each logging to its own file, all stopped at the end."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        log = (self.home / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL
        )
        log.close()

    def check(self) -> None:
        """Raise if a child has exited: the demo cannot go on without it."""
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
def supervised(home: Path) -> Iterator[Services]:
    """Services whose children are all stopped when the block ends, however it ends."""
    services = Services(home)
    try:
        yield services
    finally:
        services.stop()
