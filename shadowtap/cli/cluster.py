"""``shadowtap kafka start|stop|status|fetch`` and ``shadowtap topics create|describe``."""

from __future__ import annotations

import argparse
import time

from shadowtap.cli.console import console
from shadowtap.cli.settings import command_settings


def kafka_command(args: argparse.Namespace) -> int:
    from shadowtap.devkafka import LocalKafka, docker_available
    from shadowtap.devkafka_jars import ensure_jars

    out = console()
    if args.action == "fetch":
        path = ensure_jars(progress=lambda msg: out.print(f"[cyan]•[/cyan] {msg}"))
        out.print(f"Apache Kafka jars in {path}")
        return 0
    local = LocalKafka(args.name)
    if args.action == "status":
        broker = local.status()
        out.print(f"running: {broker.describe()}" if broker else f"not running ({args.name})")
        return 0 if broker else 1
    if args.action == "stop":
        stopped = local.stop()
        out.print("stopped" if stopped else f"not running ({args.name})")
        return 0
    if docker_available():
        out.print(
            "[dim]a Docker engine answers; `shadowtap kafka start` runs the local JVM broker[/dim]"
        )
    started_at = time.monotonic()
    broker, started = local.start(progress=lambda msg: out.print(f"[cyan]•[/cyan] {msg}"))
    if started:
        out.print(
            f"[green]started[/green] {broker.describe()} in {time.monotonic() - started_at:.1f}s"
        )
    else:
        out.print(f"[yellow]already running[/yellow] {broker.describe()}")
    print(broker.bootstrap)
    return 0


def topics_command(args: argparse.Namespace) -> int:
    from shadowtap.kafka import create_topics, describe_topics, topic_specs
    from shadowtap.kafka_check import wait_for_broker

    out = console()
    settings = command_settings(args)
    wait_for_broker(settings.kafka)
    if args.action == "create":
        for name, state in create_topics(settings).items():
            colour = "green" if state == "created" else "dim"
            out.print(f"[{colour}]{state:8}[/{colour}] {name}")
        return 0
    missing = 0
    for spec, info in zip(topic_specs(settings.topics), describe_topics(settings), strict=True):
        if info is None:
            missing += 1
            out.print(f"[red]missing [/red] {spec.name}")
        else:
            hours = f"{info.retention_ms / 3_600_000:g}h" if info.retention_ms is not None else "?"
            out.print(
                f"{info.name}: partitions={info.partitions} replication={info.replication_factor} "
                f"retention={hours}"
            )
    return 1 if missing else 0
