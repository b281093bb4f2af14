"""The ``shadowtap`` command.

    shadowtap kafka start|stop|status     a local Apache Kafka for the demo and development
    shadowtap kafka fetch                 only fetch its jars (CI, offline preparation)
    shadowtap topics create|describe      the topics of DESIGN.md, from configuration
    shadowtap collect                     HTTP sink for nginx/Envoy/Istio mirrors → captured
    shadowtap process                     the Faust processor: captured → mirror
    shadowtap replay --target URL --group NAME   a replayer worker: mirror → target
    shadowtap dlq stats|list|show|redrive  work the dead-letter topic (shadowtap.deadletters)
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
    from shadowtap.kafka_check import wait_for_broker

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
    from shadowtap.kafka import create_topics, describe_topics, topic_specs

    out = console()
    settings = checked_settings(args)
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


def _demo(args: argparse.Namespace) -> int:
    from shadowtap.demo import run_demo

    return run_demo(
        requests=args.requests, report_dir=Path(args.report_dir), keep_kafka=args.keep_kafka
    )


def _collect(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from shadowtap.errors import KafkaError, KafkaSecurityError
    from shadowtap.kafka_check import wait_for_broker
    from shadowtap.producers.collector import serve

    logging.basicConfig(level=args.loglevel.upper(), format="%(asctime)s %(name)s %(message)s")
    settings = load_settings(args)
    try:
        wait_for_broker(settings.kafka)
    except KafkaSecurityError:
        raise
    except KafkaError as exc:  # capture never waits on Kafka: it drops and counts meanwhile
        logging.getLogger("shadowtap.collect").warning("%s; collecting anyway", exc)
    asyncio.run(serve(settings, args.host, args.port, args.metrics_port or 0))
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
    from shadowtap.kafka_check import wait_for_broker
    from shadowtap.replayers.rewrite import parse_target

    # A typo in the target is said before Kafka is asked anything.
    parse_target(args.target or settings.replayer.target)
    wait_for_broker(settings.kafka)
    return run_replayer(settings, target=args.target, group=args.group)


def _dlq(args: argparse.Namespace) -> int:
    from shadowtap import deadletters as dl

    settings = load_settings(args)
    topic = settings.topics.dlq
    since = dl.parse_since(args.since) if getattr(args, "since", None) else None
    selection = dl.Selection(
        reasons=frozenset(getattr(args, "reason", None) or ()),
        stage=getattr(args, "stage", None) or "",
        group=getattr(args, "group", None) or "",
        since_ms=since,
    )
    table = None if args.json else _stdout_console()
    if args.action == "redrive":
        return _redrive(settings, selection, args, table)
    now = time.time_ns() // 1_000_000
    with _busy(f"reading {topic}…"):
        marks = dl.markers(settings)
        if args.action == "show":
            found = dl.find(settings, args.id)
        elif args.action == "stats":
            rows = dl.stats(dl.letters(settings, since), marks, now)
        else:
            newest = dl.newest(dl.letters(settings, since), selection, args.limit)
    if args.action == "show":
        shown = [
            dl.describe(x, marks.get(x.coordinates), show_sensitive=args.show_sensitive)
            for x in found
        ]
        if table is None:
            _print_json({"records": shown})
        else:
            _show_table(table, shown, args.show_sensitive)
        if not found:
            console().print(f"no DLQ record {args.id!r} in {topic}")
        return 0 if found else 1
    if args.action == "stats":
        if table is None:
            counts = [r.to_json() for r in rows]
            _print_json({"topic": topic, "records": sum(r.count for r in rows), "counts": counts})
        else:
            _stats_table(table, topic, rows, now)
        return 0
    lines = [dl.summary(x, marks, now) for x in newest]
    if table is None:
        _print_json({"topic": topic, "records": lines})
    else:
        _list_table(table, topic, lines)
    return 0


def _busy(doing: str) -> Any:
    """A spinner on stderr while a command reads (nothing without rich or a terminal)."""
    out = console()
    if hasattr(out, "status"):
        return out.status(doing)
    import contextlib

    return contextlib.nullcontext()


def _redrive(settings: Settings, selection: Any, args: argparse.Namespace, table: Any) -> int:
    from shadowtap.redrive import Redrive

    doing = "redriving" if args.execute else "reading"
    with _busy(f"{doing} {settings.topics.dlq}…") as status:
        report = Redrive(
            settings,
            selection,
            execute=args.execute,
            batch=args.batch,
            on_sent=None if status is None else lambda n: status.update(f"redriving… {n:,} sent"),
        ).run()
    if table is None:
        _print_json(report.to_json())
        return 0
    from rich.table import Table

    total = sum(report.to_send.values())
    verb = "sent" if report.executed else "to send"
    t = Table(title=f"redrive from {settings.topics.dlq}: {report.matched:,} records match")
    for column in ("stage", "reason", "to", verb):
        t.add_column(column, justify="right" if column == verb else "left")
    for (stage, reason, to), n in sorted(report.to_send.items()):
        t.add_row(stage, reason, to, f"{n:,}")
    table.print(t)
    if report.already:
        found = f" ({report.arrived:,} found arrived after a stopped run)" if report.arrived else ""
        table.print(f"already redriven, not sent again: {report.already:,}{found}")
    for (stage, reason, why), n in sorted(report.not_redrivable.items()):
        table.print(f"[yellow]not redrivable[/yellow] {n:,} × {stage or '?'}/{reason}: {why}")
    for warning in report.warnings:
        table.print(f"[yellow]warning:[/yellow] {warning}")
    if report.executed:
        table.print(f"[green]sent {report.sent:,} records[/green]")
    else:
        table.print(
            f"[bold]preview only: nothing was sent.[/bold] Run again with --execute to send "
            f"{total:,} records."
        )
    return 0


def _stdout_console() -> Any:
    """Tables go to stdout (rich); without rich, the command prints JSON instead."""
    try:
        from rich.console import Console
    except ImportError:
        return None
    return Console(highlight=False)


def _print_json(data: Any) -> None:
    import orjson

    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def _stats_table(out: Any, topic: str, rows: list[Any], now: int) -> None:
    from rich.table import Table

    from shadowtap.deadletters import AGE_BUCKETS, human_age

    t = Table(title=f"{topic}: {sum(r.count for r in rows):,} records")
    for column in ("stage", "reason", "group", "records"):
        t.add_column(column, justify="right" if column == "records" else "left")
    for bucket, _ in AGE_BUCKETS:
        t.add_column(bucket, justify="right")
    for column in ("oldest", "newest", "redriven"):
        t.add_column(column, justify="right")
    for r in rows:
        t.add_row(
            r.stage or "?",
            r.reason or "?",
            r.group,
            f"{r.count:,}",
            *(f"{r.ages[b]:,}" if r.ages[b] else "" for b, _ in AGE_BUCKETS),
            human_age((now - r.oldest_ms) // 1000),
            human_age((now - r.newest_ms) // 1000),
            f"{r.redriven:,}" if r.redriven else "",
        )
    out.print(t)


def _list_table(out: Any, topic: str, lines: list[dict[str, Any]]) -> None:
    from rich.table import Table

    from shadowtap.deadletters import human_age

    t = Table(title=f"{topic}: the {len(lines)} newest records (show one: shadowtap dlq show REF)")
    for column in ("ref", "age", "stage", "reason", "group / target", "source", "record id"):
        t.add_column(column, overflow="fold")
    t.add_column("redriven")
    for line in lines:
        where = f"{line['group']} / {line['target']}" if line["group"] else ""
        t.add_row(
            line["ref"],
            human_age(line["age_s"]),
            line["stage"] or "?",
            line["reason"] or "?",
            where,
            line["source"],
            line["record_id"],
            line["redriven"],
        )
    out.print(t)


def _show_table(out: Any, shown: list[dict[str, Any]], sensitive: bool) -> None:
    from rich.table import Table

    from shadowtap.deadletters import human_age

    if sensitive and any(s["stage"] != "replayer" for s in shown):
        console().print("[red]showing unscrubbed production data[/red]")
    for s in shown:
        t = Table(title=f"DLQ record {s['ref']} ({s['dlq']})", show_header=False)
        t.add_column("field", style="bold")
        t.add_column("value", overflow="fold")
        src = s["source"]
        rows = [
            ("written", f"{s['written']} ({human_age(s['age_s'])} ago)"),
            ("stage", s["stage"]),
            ("reason", s["reason"]),
            ("error", s["error"] if s["error"] is not None else "[dim]hidden[/dim]"),
            ("source", f"{src['topic']} partition {src['partition']} offset {src['offset']}"),
        ]
        if "group" in s:
            rows += [("target", s["target"]), ("group", s["group"]), ("attempts", s["attempts"])]
        rows += [("key", s["key"]), ("record id", s["record_id"])]
        marker = s["redriven"]
        if marker is not None:
            where = (
                f"{marker['to']} partition {marker['partition']} offset {marker['offset']}"
                if marker["state"] == "done"
                else f"{marker['to']} (in doubt: a redrive stopped while sending it)"
            )
            rows.append(("redriven", where))
        for name, value in s["record"].items():
            text = value if isinstance(value, str) else _compact(value)
            rows.append((f"record.{name}", text))
        for name, value in rows:
            t.add_row(name, str(value), end_section=name == "record id")
        out.print(t)
        if s.get("hidden"):
            out.print(
                "[dim]hidden: "
                + ", ".join(s["hidden"])
                + " — a processor-stage record is unscrubbed production data; "
                "--show-sensitive shows them[/dim]"
            )


def _compact(value: Any) -> str:
    import orjson

    return orjson.dumps(value).decode()


def _add_dlq(sub: Any, common: argparse.ArgumentParser) -> None:
    dlq = sub.add_parser("dlq", help="work the dead-letter topic: stats, list, show, redrive")
    actions = dlq.add_subparsers(dest="action", required=True, metavar="ACTION")
    dlq_common = argparse.ArgumentParser(add_help=False, parents=[common])
    dlq_common.add_argument("--json", action="store_true", help="print JSON instead of tables")
    since_help = "only records written since: an age (30m, 2h, 7d) or an ISO 8601 time"

    stats = actions.add_parser(
        "stats", parents=[dlq_common], help="counts by stage, reason, group and age"
    )
    stats.add_argument("--since", help=since_help)

    listing = actions.add_parser("list", parents=[dlq_common], help="the newest records")
    listing.add_argument("--since", help=since_help)
    listing.add_argument("--reason", action="append", help="only this reason (repeatable)")
    listing.add_argument("--stage", choices=["processor", "replayer"], help="only this stage")
    listing.add_argument("--group", help="only this replayer group")
    listing.add_argument("--limit", type=int, default=50, help="how many (default 50)")

    show = actions.add_parser(
        "show", parents=[dlq_common], help="why one record failed and where it came from"
    )
    show.add_argument("id", help="PARTITION:OFFSET in the DLQ (as list prints), or a record id")
    show.add_argument(
        "--show-sensitive",
        action="store_true",
        help="also print a processor-stage record's unscrubbed path, headers, bodies and error",
    )

    redrive = actions.add_parser(
        "redrive",
        parents=[dlq_common],
        help="send records back where they failed (preview unless --execute)",
    )
    redrive.add_argument(
        "--reason", action="append", required=True, help="records of this reason (repeatable)"
    )
    redrive.add_argument("--since", help=since_help)
    redrive.add_argument("--stage", choices=["processor", "replayer"], help="only this stage")
    redrive.add_argument("--group", help="only records that failed in this replayer group")
    redrive.add_argument(
        "--execute", action="store_true", help="send them (without it: only a preview)"
    )
    redrive.add_argument("--batch", type=int, default=500, help="records per batch (500)")
    dlq.set_defaults(handler=_dlq)


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
    collect.add_argument("--metrics-port", type=int, help="Prometheus /metrics port (default off)")
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

    _add_dlq(sub, common)

    topics = sub.add_parser("topics", parents=[common], help="create or describe the topics")
    topics.add_argument("action", choices=["create", "describe"])
    topics.set_defaults(handler=_topics)
    return parser


def _escape(text: str) -> str:
    """Brackets in a message (``[kafka]``, ``shadowtap[collector]``) are text, not markup."""
    try:
        from rich.markup import escape
    except ImportError:
        return text
    return escape(text)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ShadowtapError as exc:
        console().print(f"[red]error:[/red] {_escape(str(exc))}")
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
