"""``shadowtap drill``: replay a window of retained traffic to a DR site, with a report;
``shadowtap drill list`` and ``shadowtap drill show NAME``: earlier runs (shadowtap.drill)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from shadowtap.cli.settings import add_delivery_flags, command_settings, delivery_flags


def add_drill(sub: Any, common: argparse.ArgumentParser) -> None:
    drill = sub.add_parser(
        "drill",
        parents=[common],
        help="replay a time window of the mirror topic to a DR target, with a report",
    )
    drill.add_argument(
        "action", nargs="?", default="run", choices=["run", "list", "show"], help="(default run)"
    )
    drill.add_argument("subject", nargs="?", help="show: the drill name")
    drill.add_argument("--name", default="drill", help="the drill's name (checkpoints, history)")
    drill.add_argument("--target", help="target base URL (default: replayer.target)")
    drill.add_argument("--from", dest="start", help="ISO-8601, -2h, now: window start (capture)")
    drill.add_argument("--to", dest="end", default="now", help="window end, exclusive (now)")
    drill.add_argument("--skew", type=float, default=30.0, help="out-of-order capture s (30)")
    drill.add_argument("--method", action="append", default=[], help="only these methods")
    drill.add_argument("--path", action="append", default=[], help="only paths matching (glob)")
    drill.add_argument("--route", action="append", default=[], help="only records routed here")
    drill.add_argument("--source", action="append", default=[], help="only these services")
    add_delivery_flags(drill)
    drill.add_argument("--idle-gap", type=float, default=0.0, help="cap idle gaps at N s (off)")
    drill.add_argument("--goal", action="append", default=[], help="e.g. 'success>=99.5%%'")
    drill.add_argument("--steady", type=float, default=60.0, help="steady-state stretch s (60)")
    drill.add_argument("--report", help="report directory (default drill-report-NAME)")
    drill.add_argument("--dry-run", action="store_true", help="plan and check only: send nothing")
    drill.add_argument("--partial", action="store_true", help="accept a window retention cut")
    drill.add_argument("--resume", action="store_true", help="continue (or join) drill NAME")
    drill.add_argument("--no-probe", action="store_true", help="skip the reachability check")
    drill.add_argument("--health", default="/", help="path the reachability check asks (/)")
    drill.add_argument(
        "--results",
        action="store_true",
        help="also write each delivery's result to topics.results (a crash then repeats up "
        "to twice max-in-flight: a record is finished once its result is acknowledged)",
    )
    drill.add_argument(
        "--allow-production-target",
        action="store_true",
        help="drill even against a production host: every request reaches production twice",
    )
    drill.add_argument("--json", action="store_true", help="list/show: print JSON")
    drill.add_argument("--loglevel", default="warning", help="log level (default: warning)")
    drill.set_defaults(handler=drill_command)


def drill_command(args: argparse.Namespace) -> int:
    import logging

    from shadowtap.cli.console import console
    from shadowtap.kafka_check import wait_for_broker
    from shadowtap.replayers.rewrite import parse_target

    logging.basicConfig(level=args.loglevel.upper(), format="%(asctime)s %(name)s %(message)s")
    flags = {
        **delivery_flags(args),
        # The report is the drill's; without results a record is finished once answered.
        "results": args.results,
    }
    settings = command_settings(args, replayer=flags)
    if args.action != "run":
        wait_for_broker(settings.kafka)
        return _history(settings, args, console())
    parse_target(settings.replayer.target)  # a typo in the target is said before Kafka is asked
    options = _options(args)
    wait_for_broker(settings.kafka)
    from shadowtap.drill.session import run_drill

    return run_drill(settings, options, console())


def _options(args: argparse.Namespace) -> Any:
    from shadowtap.drill.goals import parse
    from shadowtap.drill.session import DrillOptions
    from shadowtap.drill.window import Selection, Window
    from shadowtap.errors import ConfigError

    try:
        goals = tuple(parse(text) for text in args.goal)
    except ValueError as exc:
        raise ConfigError(f"--goal: {exc}") from None
    window = None
    if not args.resume:
        if not args.start:
            raise ConfigError("--from is required: the window's start (ISO-8601, -2h, now)")
        window = Window.parse(args.start, args.end, args.skew)
    return DrillOptions(
        name=args.name,
        window=window,
        selection=Selection(
            tuple(args.method), tuple(args.path), tuple(args.route), tuple(args.source)
        ),
        resume=args.resume,
        partial=args.partial,
        dry_run=args.dry_run,
        allow_production=args.allow_production_target,
        goals=goals,
        idle_gap_s=args.idle_gap,
        steady_s=args.steady,
        report_dir=Path(args.report) if args.report else None,
        probe=not args.no_probe,
        health=args.health,
    )


def _history(settings: Any, args: argparse.Namespace, out: Any) -> int:
    import orjson
    from rich.table import Table

    from shadowtap.drill import history
    from shadowtap.errors import ConfigError

    runs = history.load(settings.kafka, settings.topics.drills)
    if args.action == "show":
        if not args.subject:
            raise ConfigError("drill show NAME: which drill?")
        runs = history.of_name(runs, args.subject)
        if not runs:
            raise ConfigError(f"no drill named {args.subject!r} on {settings.topics.drills}")
    if args.json:
        print(orjson.dumps(runs, option=orjson.OPT_INDENT_2).decode())
        return 0
    table = Table(title=f"drills on {settings.topics.drills}")
    for column in ("name", "started", "state", "target", "window", "sent", "success", "p99/prod"):
        table.add_column(column)
    for r in runs:
        f = r.get("figures") or {}
        w = r.get("window") or {}
        success = f.get("success_rate")
        p99 = (f.get("latency_ratio") or {}).get("p99")
        table.add_row(
            r.get("name", ""),
            r.get("started", ""),
            r.get("state", ""),
            r.get("target", ""),
            f"{w.get('from', '')} → {w.get('to', '')}",
            f"{f.get('sent', 0):,} of {f.get('window_records', r.get('records', 0)):,}",
            "-" if success is None else f"{success:.2%}",
            "-" if p99 is None else f"{p99:.2f}x",
        )
    out.print(table)
    return 0
