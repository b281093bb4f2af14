"""``shadowtap dlq stats|list|show|redrive``: tables (or ``--json``) over the dead-letter topic.

What each command reads is shadowtap.deadletters, what it shows shadowtap.dlqviews; what a
redrive does is shadowtap.redrive. Tables go to stdout with rich; without rich the command
prints JSON.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from shadowtap.cli.console import console
from shadowtap.cli.settings import command_settings
from shadowtap.clock import now_ms, parse_since
from shadowtap.config import Settings


def dlq_command(args: argparse.Namespace) -> int:
    from shadowtap import deadletters as dl
    from shadowtap import dlqviews as views

    settings = command_settings(args)
    topic = settings.topics.dlq
    since = parse_since(args.since) if getattr(args, "since", None) else None
    selection = dl.Selection(
        reasons=frozenset(getattr(args, "reason", None) or ()),
        stage=getattr(args, "stage", None) or "",
        group=getattr(args, "group", None) or "",
        since_ms=since,
    )
    table = None if args.json else _stdout_console()
    if args.action == "redrive":
        return _redrive(settings, selection, args, table)
    now = now_ms()
    with _busy(f"reading {topic}…"):
        marks = dl.markers(settings)
        if args.action == "show":
            found = dl.find(settings, args.id)
        elif args.action == "stats":
            rows = views.stats(dl.letters(settings, since), marks, now)
        else:
            newest = dl.newest(dl.letters(settings, since), selection, args.limit)
    if args.action == "show":
        shown = [
            views.describe(x, marks.get(x.coordinates), show_sensitive=args.show_sensitive)
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
    lines = [views.summary(x, marks, now) for x in newest]
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

    from shadowtap.dlqviews import AGE_BUCKETS, human_age

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

    from shadowtap.dlqviews import human_age

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

    from shadowtap.dlqviews import human_age

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
