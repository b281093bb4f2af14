"""A local single-node Apache Kafka (KRaft) for the demo and the tests.

The broker is resolved in this order (``resolve_broker``):

1. ``SHADOWTAP_BOOTSTRAP``: an existing cluster, used as it is;
2. a Docker engine that answers: the official ``apache/kafka`` image through testcontainers;
3. Apache Kafka assembled from Maven Central (``org.apache.kafka:kafka_2.13`` and its runtime
   dependencies, fetched once with Maven into the cache directory: shadowtap.devkafka_jars)
   and run with the machine's Java: ``StorageTool format``, then
   ``kafka.Kafka server.properties``.

The local broker (3) can also listen with SASL_SSL and with SSL requiring a client
certificate (mTLS), beside its plaintext listener: ``LocalKafka.start(secure=...)`` with a
``shadowtap.devkafka_secure.SecureListeners`` holding a keystore and CA the caller made (the
tests make theirs with ``cryptography``). Its SCRAM users are created when the storage is
formatted (``StorageTool format --add-scram``: the broker assembled from Maven has no
``kafka-configs.sh``).

``SHADOWTAP_DEVKAFKA=local`` skips Docker. ``shadowtap kafka start|stop|status`` drives (3)
as a background process that outlives the command; its state lives in
``<cache>/run/<name>/broker.json`` and its log in ``<cache>/run/<name>/kafka.log``. The cache
is ``SHADOWTAP_CACHE_DIR``, else ``$XDG_CACHE_HOME/shadowtap``, else ``~/.cache/shadowtap``.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shadowtap.config import KafkaSettings
from shadowtap.devkafka_jars import KAFKA_VERSION, Progress, cache_dir, ensure_jars
from shadowtap.devkafka_secure import SecureListeners
from shadowtap.errors import BrokerError, DevKafkaError
from shadowtap.kafka_check import wait_for_broker

IMAGE = f"apache/kafka:{KAFKA_VERSION}"
_JVM_OPTS = ["-Xms256m", "-Xmx768m", "-XX:+UseG1GC", "-Djava.awt.headless=true"]

# One broker configuration for both the local process and the Docker image.
BROKER_PROPERTIES = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "controller.listener.names": "CONTROLLER",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "num.partitions": "1",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "10",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
    "auto.create.topics.enable": "true",
    "log.retention.check.interval.ms": "60000",
}

# Brokers started by this process, kept so that stop() can reap them (no zombie, no warning).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def new_cluster_id() -> str:
    """A KRaft cluster id: a random UUID in URL-safe base64, never starting with '-'.

    One in 64 would, and the storage tool's argument parser then reads it as an option
    (Kafka's own Uuid.randomUuid() skips those for the same reason).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass(frozen=True, slots=True)
class Broker:
    """A broker shadowtap can talk to, and where it came from.

    ``sasl_ssl_bootstrap`` and ``mtls_bootstrap`` are set when a local broker was started
    with SecureListeners.
    """

    bootstrap: str
    kind: str  # "external" | "docker" | "local"
    pid: int | None = None
    log: str | None = None
    version: str = KAFKA_VERSION
    sasl_ssl_bootstrap: str | None = None
    mtls_bootstrap: str | None = None

    def describe(self) -> str:
        where = {
            "external": "existing cluster",
            "docker": IMAGE,
            "local": f"Apache Kafka {self.version} (local JVM)",
        }
        extra = f", pid {self.pid}, log {self.log}" if self.pid else ""
        return f"{self.bootstrap} ({where[self.kind]}{extra})"


def free_port(preferred: int | None = None) -> int:
    """``preferred`` if it is free on 127.0.0.1, else any free port."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket() as sock:
            # As the broker binds: a port in TIME_WAIT after a restart is free for it.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise DevKafkaError("no free TCP port on 127.0.0.1")


class LocalKafka:
    """One named local broker process: start (or find running), status, stop."""

    def __init__(self, name: str = "default", *, preferred_port: int | None = 9092) -> None:
        self.name = name
        self.home = cache_dir() / "run" / name
        self.preferred_port = preferred_port

    @property
    def state_file(self) -> Path:
        return self.home / "broker.json"

    @property
    def log_file(self) -> Path:
        return self.home / "kafka.log"

    def status(self) -> Broker | None:
        """The running broker of this name, or None (a stale state file is removed)."""
        try:
            state = json.loads(self.state_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        broker = Broker(**state)
        if broker.pid and _alive(broker.pid):
            with contextlib.suppress(BrokerError):
                wait_for_broker(KafkaSettings(bootstrap=broker.bootstrap), timeout=5)
                return broker
            return broker  # alive but not answering yet: still ours, do not start another
        self.state_file.unlink(missing_ok=True)
        return None

    def start(
        self,
        *,
        fresh: bool = False,
        timeout: float = 90.0,
        progress: Progress = lambda _m: None,
        secure: SecureListeners | None = None,
    ) -> tuple[Broker, bool]:
        """Start the broker unless it runs; return it and whether this call started it.

        With ``secure`` a broker this call starts also has the SASL_SSL and mTLS listeners
        (one that was running already is returned as it is).
        """
        running = self.status()
        if running is not None:
            return running, False
        libs = ensure_jars(progress)
        java = shutil.which("java")
        assert java is not None  # ensure_jars checked
        data = self.home / "data"
        if fresh and data.exists():
            shutil.rmtree(data)
        self.home.mkdir(parents=True, exist_ok=True)
        port = free_port(self.preferred_port)
        controller = free_port()
        listeners = {"PLAINTEXT": port}
        if secure is not None:
            listeners.update({"SASL_SSL": free_port(), "MTLS": free_port()})
        served = ",".join(f"{name}://127.0.0.1:{p}" for name, p in listeners.items())
        protocols = ",".join(f"{name}:{_PROTOCOLS.get(name, name)}" for name in listeners)
        props = self.home / "server.properties"
        props.write_text(
            _render(
                {
                    **BROKER_PROPERTIES,
                    "listener.security.protocol.map": f"{protocols},CONTROLLER:PLAINTEXT",
                    "inter.broker.listener.name": "PLAINTEXT",
                    "listeners": f"{served},CONTROLLER://127.0.0.1:{controller}",
                    "advertised.listeners": served,
                    "controller.quorum.voters": f"1@127.0.0.1:{controller}",
                    "log.dirs": str(data),
                    **(secure.properties() if secure is not None else {}),
                }
            )
        )
        classpath = f"{libs}/*"
        if not (data / "meta.properties").exists():
            progress("formatting storage")
            cluster_id = new_cluster_id()
            users = secure.format_arguments() if secure is not None else []
            fmt = subprocess.run(
                [java, "-cp", classpath, "kafka.tools.StorageTool", "format",
                 "-t", cluster_id, "-c", str(props), *users],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if fmt.returncode != 0:
                raise DevKafkaError(f"kafka-storage format failed: {fmt.stderr.strip()[-800:]}")
        progress(f"starting Apache Kafka {KAFKA_VERSION} on 127.0.0.1:{port}")
        log = self.log_file.open("ab")
        proc = subprocess.Popen(
            [java, *_JVM_OPTS, "-cp", classpath, "kafka.Kafka", str(props)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        log.close()
        _CHILDREN[proc.pid] = proc
        broker = Broker(
            f"127.0.0.1:{port}",
            "local",
            proc.pid,
            str(self.log_file),
            sasl_ssl_bootstrap=_bootstrap(listeners.get("SASL_SSL")),
            mtls_bootstrap=_bootstrap(listeners.get("MTLS")),
        )
        self.state_file.write_text(json.dumps(asdict(broker)))
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                _CHILDREN.pop(proc.pid, None)
                self.state_file.unlink(missing_ok=True)
                raise DevKafkaError(
                    f"Kafka exited with code {proc.returncode} during start-up; "
                    f"see {self.log_file}:\n{_tail(self.log_file)}"
                )
            try:
                wait_for_broker(KafkaSettings(bootstrap=broker.bootstrap), timeout=2)
                return broker, True
            except BrokerError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise DevKafkaError(
                        f"Kafka did not answer within {timeout:.0f}s; see {self.log_file}"
                    ) from None

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker cleanly (SIGTERM, then SIGKILL); return whether one was running."""
        try:
            state = json.loads(self.state_file.read_text())
        except (FileNotFoundError, ValueError):
            return False
        pid = state.get("pid")
        self.state_file.unlink(missing_ok=True)
        if not pid or not _alive(pid):
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        child = _CHILDREN.pop(pid, None)
        if child is not None:
            child.wait(timeout)
        return True

    def kill(self) -> bool:
        """SIGKILL the broker, as a crash would (fault tests); ``start()`` brings it back on
        the same data. Return whether one was running."""
        try:
            pid = json.loads(self.state_file.read_text()).get("pid")
        except (FileNotFoundError, ValueError):
            return False
        self.state_file.unlink(missing_ok=True)
        if not pid or not _alive(pid):
            return False
        os.kill(pid, signal.SIGKILL)
        child = _CHILDREN.pop(pid, None)
        if child is not None:
            child.wait(30)
        return True


@contextlib.contextmanager
def resolve_broker(
    name: str = "default",
    *,
    ephemeral: bool = False,
    keep_running: bool = False,
    progress: Progress = lambda _m: None,
    kafka: KafkaSettings | None = None,
    secure: SecureListeners | None = None,
) -> Iterator[Broker]:
    """Yield a running broker (existing cluster → Docker → local JVM), cleaning up after.

    A local broker this call started is stopped afterwards unless ``keep_running``;
    ``ephemeral`` starts it on empty storage and deletes that storage afterwards. ``kafka``
    says how to reach an existing cluster (its security settings; the bootstrap is
    SHADOWTAP_BOOTSTRAP's). ``secure`` gives a local broker its secured listeners.
    """
    bootstrap = os.environ.get("SHADOWTAP_BOOTSTRAP")
    if bootstrap:
        external = KafkaSettings() if kafka is None else kafka
        wait_for_broker(dataclasses.replace(external, bootstrap=bootstrap), timeout=30)
        yield Broker(bootstrap, "external")
        return
    if os.environ.get("SHADOWTAP_DEVKAFKA", "") != "local" and docker_available():
        with _docker_broker(progress) as broker:
            yield broker
        return
    local = LocalKafka(name, preferred_port=None if name != "default" else 9092)
    broker, started = local.start(fresh=ephemeral, progress=progress, secure=secure)
    try:
        yield broker
    finally:
        if started and not keep_running:
            local.stop()
            if ephemeral:
                shutil.rmtree(local.home, ignore_errors=True)


def docker_available(timeout: float = 1.0) -> bool:
    """True when a Docker engine answers ``GET /_ping`` (not merely when the client exists)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
        elif host.startswith("tcp://"):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.settimeout(timeout)
        else:
            return False
        with sock:
            if host.startswith("unix://"):
                sock.connect(host[len("unix://") :])
            else:
                hostname, _, port = host[len("tcp://") :].partition(":")
                sock.connect((hostname, int(port or 2375)))
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            status_line = sock.recv(64)
        return status_line.startswith(b"HTTP/1.") and b" 200 " in status_line
    except OSError:
        return False


@contextlib.contextmanager
def _docker_broker(progress: Progress) -> Iterator[Broker]:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    port = free_port()
    env = {
        **BROKER_PROPERTIES,
        "listeners": "PLAINTEXT://0.0.0.0:9092,CONTROLLER://127.0.0.1:9093",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.quorum.voters": "1@127.0.0.1:9093",
    }
    container = DockerContainer(IMAGE).with_bind_ports(9092, port)
    for key, value in env.items():
        container = container.with_env("KAFKA_" + key.upper().replace(".", "_"), value)
    progress(f"starting {IMAGE} in Docker")
    with container:
        wait_for_logs(container, "Kafka Server started", timeout=120)
        bootstrap = f"127.0.0.1:{port}"
        wait_for_broker(KafkaSettings(bootstrap=bootstrap), timeout=30)
        yield Broker(bootstrap, "docker")


# Listener names whose security protocol is not their own name.
_PROTOCOLS = {"MTLS": "SSL"}


def _bootstrap(port: int | None) -> str | None:
    return None if port is None else f"127.0.0.1:{port}"


def _render(props: dict[str, Any]) -> str:
    return "".join(f"{key}={value}\n" for key, value in props.items())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child (ours, not yet reaped) is not a running broker.
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
