"""The ``shadowtap`` command.

    shadowtap kafka start|stop|status     a local Apache Kafka for the demo and development
    shadowtap kafka fetch                 only fetch its jars (CI, offline preparation)
    shadowtap topics create|describe      the topics of DESIGN.md, from configuration
    shadowtap collect                     HTTP sink for nginx/Envoy/Istio mirrors → captured
    shadowtap process                     the Faust processor: captured → mirror
    shadowtap replay --target URL --group NAME   a replayer worker: mirror → target
    shadowtap demo                        the whole pipeline on demo apps, with a report

Every command takes ``--config FILE`` (TOML, see shadowtap.config) and ``--bootstrap``.
Without either, a local broker started by ``shadowtap kafka start`` is found by itself.
Each command's handler imports what it needs, so ``shadowtap --help`` stays fast and the
capture-only install can still run the commands that need nothing more.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from shadowtap import __version__
from shadowtap.config import KafkaSettings, Settings
from shadowtap.errors import ShadowtapError

Handler = Callable[[argparse.Namespace], int]


def console() -> Any:
    """A rich console on stderr, or a plain stand-in when rich is not installed."""
    try:
        from rich.console import Console
    except ImportError:  # capture-only install: plain output is enough

        class _Plain:
            def print(self, *objects: object, **_: object) -> None:
                print(*objects, file=sys.stderr)

        return _Plain()
    return Console(stderr=True, highlight=False)


def load_settings(args: argparse.Namespace) -> Settings:
    """Settings from --config/env, with --bootstrap or a running local broker filled in."""
    overrides: dict[str, Any] = {}
    if getattr(args, "bootstrap", None):
        overrides["kafka"] = {"bootstrap": args.bootstrap}
    settings = Settings.load(getattr(args, "config", None), overrides=overrides)
    if not overrides and settings.kafka.bootstrap == KafkaSettings().bootstrap:
        from shadowtap.devkafka import LocalKafka

        local = LocalKafka().status()
        if local is not None and local.bootstrap != settings.kafka.bootstrap:
            settings = Settings.load(
                getattr(args, "config", None), overrides={"kafka": {"bootstrap": local.bootstrap}}
            )
    return settings


def checked_settings(
    args: argparse.Namespace, clients: tuple[str, ...] = ("librdkafka",)
) -> Settings:
    """``load_settings``, then the start-up check (shadowtap.kafka.wait_for_broker): a
    cluster that refuses our password or certificates stops the command in seconds, saying
    which, instead of a client retrying forever."""
    from shadowtap.kafka import wait_for_broker

    settings = load_settings(args)
    wait_for_broker(settings.kafka, clients=clients)
    return settings


def _kafka(args: argparse.Namespace) -> int:
    from shadowtap.devkafka import LocalKafka, docker_available, ensure_jars

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


def _topics(args: argparse.Namespace) -> int:
    from shadowtap.kafka import create_topics, describe_topics

    out = console()
    settings = checked_settings(args)
    if args.action == "create":
        for name, state in create_topics(settings).items():
            colour = "green" if state == "created" else "dim"
            out.print(f"[{colour}]{state:8}[/{colour}] {name}")
        return 0
    missing = 0
    for spec, info in zip(
        (
            settings.topics.captured,
            settings.topics.mirror,
            settings.topics.results,
            settings.topics.dlq,
        ),
        describe_topics(settings),
        strict=True,
    ):
        if info is None:
            missing += 1
            out.print(f"[red]missing [/red] {spec}")
        else:
            hours = f"{info.retention_ms / 3_600_000:g}h" if info.retention_ms is not None else "?"
            out.print(
                f"{info.name}: partitions={info.partitions} replication={info.replication_factor} "
                f"retention={hours}"
            )
    return 1 if missing else 0


def _demo(args: argparse.Namespace) -> int:
    from shadowtap.demo import run_demo

    return run_demo(
        requests=args.requests, report_dir=Path(args.report_dir), keep_kafka=args.keep_kafka
    )


def _collect(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from shadowtap.errors import KafkaError, KafkaSecurityError
    from shadowtap.kafka import wait_for_broker
    from shadowtap.producers.collector import serve

    logging.basicConfig(level=args.loglevel.upper(), format="%(asctime)s %(name)s %(message)s")
    settings = load_settings(args)
    try:
        wait_for_broker(settings.kafka)
    except KafkaSecurityError:
        raise
    except KafkaError as exc:  # capture never waits on Kafka: it drops and counts meanwhile
        logging.getLogger("shadowtap.collect").warning("%s; collecting anyway", exc)
    asyncio.run(serve(settings, args.host, args.port))
    return 0


def _process(args: argparse.Namespace) -> int:
    from shadowtap.processors.app import run_worker

    settings = checked_settings(args, ("librdkafka", "aiokafka"))  # Faust reads via aiokafka
    return run_worker(settings, web_port=args.web_port, loglevel=args.loglevel)


def _replay(args: argparse.Namespace) -> int:
    import logging

    from shadowtap.replayers.worker import run_replayer

    logging.basicConfig(level=args.loglevel.upper(), format="%(asctime)s %(name)s %(message)s")
    settings = load_settings(args)
    replayer: dict[str, Any] = {}
    for key in ("speed", "max_in_flight", "metrics_port"):
        value = getattr(args, key)
        if value is not None:
            replayer[key] = value
    if args.rate_per_s is not None:
        from shadowtap.replayers.pacing import parse_rate

        replayer["rate_per_s"] = parse_rate(args.rate_per_s) or 0.0
    if replayer:
        from dataclasses import replace

        settings = replace(settings, replayer=replace(settings.replayer, **replayer))
    from shadowtap.kafka import wait_for_broker
    from shadowtap.replayers.rewrite import parse_target

    # A typo in the target is said before Kafka is asked anything.
    parse_target(args.target or settings.replayer.target)
    wait_for_broker(settings.kafka)
    return run_replayer(settings, target=args.target, group=args.group)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="TOML settings file (default: $SHADOWTAP_CONFIG)")
    common.add_argument("--bootstrap", help="Kafka bootstrap servers (default: settings)")

    parser = argparse.ArgumentParser(prog="shadowtap", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"shadowtap {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    kafka = sub.add_parser("kafka", help="run a local Apache Kafka for demo and development")
    kafka.add_argument("action", choices=["start", "stop", "status", "fetch"])
    kafka.add_argument("--name", default="default", help="instance name (default: default)")
    kafka.set_defaults(handler=_kafka)

    demo = sub.add_parser("demo", help="run the whole pipeline locally on demo apps and report")
    demo.add_argument("--requests", type=int, default=200, help="requests to send (default 200)")
    demo.add_argument("--report-dir", default=".", help="where the JSON and HTML reports go")
    demo.add_argument("--keep-kafka", action="store_true", help="leave a broker it started running")
    demo.set_defaults(handler=_demo)

    collect = sub.add_parser(
        "collect", parents=[common], help="HTTP sink for nginx/Envoy/Istio mirrored requests"
    )
    collect.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    collect.add_argument("--port", type=int, default=8787, help="listen port (default 8787)")
    collect.add_argument("--loglevel", default="info", help="log level (default: info)")
    collect.set_defaults(handler=_collect)

    process = sub.add_parser(
        "process", parents=[common], help="run the Faust processor: captured → mirror"
    )
    process.add_argument(
        "--web-port", type=int, help="Prometheus /metrics port (default: processor.web_port)"
    )
    process.add_argument("--loglevel", default="info", help="worker log level (default: info)")
    process.set_defaults(handler=_process)

    replay = sub.add_parser(
        "replay", parents=[common], help="deliver mirrored traffic to a target (one worker)"
    )
    replay.add_argument("--target", help="target base URL (default: replayer.target)")
    replay.add_argument("--group", help="consumer group, one per target (default: replayer.group)")
    replay.add_argument("--speed", help="max (default), or 1x, 2x, 0.5x: keep recorded pacing")
    replay.add_argument("--rate", dest="rate_per_s", help="ceiling, e.g. 500/s (default: none)")
    replay.add_argument("--max-in-flight", type=int, help="requests in flight (default 64)")
    replay.add_argument("--metrics-port", type=int, help="Prometheus /metrics port (default off)")
    replay.add_argument("--loglevel", default="info", help="log level (default: info)")
    replay.set_defaults(handler=_replay)

    topics = sub.add_parser("topics", parents=[common], help="create or describe the topics")
    topics.add_argument("action", choices=["create", "describe"])
    topics.set_defaults(handler=_topics)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ShadowtapError as exc:
        console().print(f"[red]error:[/red] {exc}")
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
