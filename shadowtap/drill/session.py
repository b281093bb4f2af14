"""One ``shadowtap drill`` from start to report: plan, preflight, delivery, report, history.

Usage::

    shadowtap drill --target https://dr.internal --from 2026-12-01T14:00Z --to 2026-12-01T15:00Z \
        --name tuesday-peak [--speed max|1x|2x] [--rate 500/s] [--idle-gap 60] [--skew 30] \
        [--method GET] [--path '/api/*'] [--route shadowtap.mirror] [--source shop] \
        [--goal 'success>=99.5%' --goal 'p99<=1.5x'] [--report DIR] [--dry-run] [--partial] \
        [--resume] [--results] [--health /healthz] [--allow-production-target]

Without ``--resume`` a name starts over (its checkpoints are dropped: refused while a
process of that drill runs); with it, the window and filters are the run's own (read back
from ``topics.drills``) and delivery continues from the drill's committed positions. Start
more processes with the same name and ``--resume`` to share the partitions. Ctrl-C (or
SIGTERM) pauses: what is in flight finishes, positions are committed, the report says
``paused``. A drill writes no per-delivery results to ``topics.results`` unless
``--results``: its report is its own, and a record is then finished as soon as the target
answered, so a crash repeats what was in flight and what finished in the last 20 ms.
Exit status: 0 when every goal passed (or none was given), 1 when one failed or
a preflight check refused the target, 3 when paused, 2 on an error (the CLI's).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import KafkaException
from rich.console import Console
from rich.table import Table

from shadowtap.clock import now_ms
from shadowtap.config import Settings
from shadowtap.diff.goals import exit_code
from shadowtap.drill import history
from shadowtap.drill.gaps import gap_warp
from shadowtap.drill.goals import evaluate, steady_goal
from shadowtap.drill.output import write_reports
from shadowtap.drill.plan import Plan, make_plan
from shadowtap.drill.progress import Progress
from shadowtap.drill.report import DrillBook
from shadowtap.drill.run import DrillRun, forget_checkpoints
from shadowtap.drill.window import Selection, Window, iso
from shadowtap.errors import BrokerError, ConfigError
from shadowtap.goals import Goal
from shadowtap.preflight import start_allowed
from shadowtap.replayers.pacing import parse_speed

PAUSED = 3


@dataclass(frozen=True, slots=True)
class DrillOptions:
    name: str
    window: Window | None = None  # None with resume: the run's own
    selection: Selection = field(default_factory=Selection)
    resume: bool = False
    partial: bool = False
    dry_run: bool = False
    allow_production: bool = False
    goals: tuple[Goal, ...] = ()
    idle_gap_s: float = 0.0
    steady_s: float = 60.0
    report_dir: Path | None = None
    probe: bool = True
    health: str = "/"  # the path the reachability check requests


def run_drill(
    settings: Settings,
    options: DrillOptions,
    console: Console,
    *,
    client_factory: Callable[[], httpx.AsyncClient] | None = None,
) -> int:
    """Plan, check, deliver and report one drill; return its exit status."""
    history.ensure_topic(settings)
    record: dict[str, Any]
    if options.resume:
        record = _resumed(settings, options.name)
        window = Window(
            record["window"]["from_ms"], record["window"]["to_ms"], record["window"]["skew_ms"]
        )
        selection = Selection.from_json(record["filters"])
    else:
        if options.window is None:
            raise ConfigError("--from is required (or --resume to continue a drill)")
        window, selection = options.window, options.selection
        record = {"name": options.name, "started": iso(now_ms())}
    retention = settings.topics.mirror_retention_hours * 3_600_000
    plan = make_plan(
        settings.kafka,
        settings.topics.mirror,
        window,
        selection,
        partial=options.partial,
        retention_ms=retention,
    )
    speed = parse_speed(settings.replayer.speed)
    target = settings.replayer.target
    _show_plan(console, plan, settings, speed, options.idle_gap_s)
    if plan.partial:
        console.print(f"[yellow]partial window[/yellow]: {plan.partial}")
    if not start_allowed(
        settings,
        target,
        console,
        allow_production=options.allow_production,
        records=list(plan.hosts.values()),
    ):
        return 1
    if options.probe:
        _probe(settings, target, console, options.health)
    if options.dry_run:
        console.print("dry run: nothing sent")
        return 0
    if not options.resume:
        try:
            forget_checkpoints(settings, options.name)
        except KafkaException as exc:
            raise BrokerError(
                f"drill {options.name!r} could not start over ({exc}): if it is running, "
                "join it with --resume"
            ) from exc
    record.update(
        state="running",
        target=target,
        speed=settings.replayer.speed,
        window=window.to_json(),
        filters=selection.to_json(),
        records=plan.records,
    )
    history.save(settings, record)
    book = DrillBook(plan, speed)
    drill = DrillRun(
        settings,
        plan,
        options.name,
        client_factory() if client_factory else None,
        idle_gap_s=options.idle_gap_s,
        resume=options.resume,
    )
    drill.engine.observe = book.add
    _deliver(drill, book, console, options.name)
    figures = book.figures(options.steady_s, steady_goal(options.goals))
    results = evaluate(options.goals, figures, book.latencies())
    state = "done" if drill.finished else "paused"
    record.update(state=state, figures=figures, goals=[goal_json(r) for r in results])
    history.save(settings, record)
    earlier = history.of_name(history.load(settings.kafka, settings.topics.drills), options.name)
    paths = write_reports(options.report_dir, record, book, results, earlier)
    _show_end(console, record, results, paths)
    if state == "paused":
        console.print(f"paused: continue with `shadowtap drill --name {options.name} --resume`")
        return PAUSED
    return exit_code(results)


def goal_json(result: Any) -> dict[str, Any]:
    return {
        "goal": result.goal,
        "endpoint": result.endpoint,
        "passed": result.passed,
        "value": result.value,
        "limit": result.limit,
        "detail": result.detail,
    }


def _resumed(settings: Settings, name: str) -> dict[str, Any]:
    found = history.latest(history.load(settings.kafka, settings.topics.drills), name)
    if found is None or "window" not in found:
        raise ConfigError(f"no drill named {name!r} to resume: start it with --from/--to")
    return found


def _deliver(drill: DrillRun, book: DrillBook, console: Console, name: str) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, drill.stop)
        try:
            async with Progress(book, drill.engine, console, name):
                await drill.run()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)

    try:
        asyncio.run(main())
    except KafkaException as exc:
        raise BrokerError(f"drill: {exc}") from exc


def estimate_s(plan: Plan, speed: float | None, idle_gap_s: float, max_in_flight: int) -> float:
    """Paced: the recorded span (idle gaps capped) over the speed. Max: the window's
    requests at production's median latency, ``max_in_flight`` at a time."""
    if not plan.times:
        return 0.0
    if speed is not None:
        warp = gap_warp(plan.times, round(idle_gap_s * 1000))
        first, last = plan.times[0], plan.times[-1]
        span = (warp(last) - warp(first)) if warp else last - first
        return span / 1000 / speed
    overall = next((r for r in plan.latency.summarize() if r.endpoint == "*"), None)
    p50 = overall.sides["production"].p50 if overall and "production" in overall.sides else 0
    return plan.records * (p50 or 1.0) / 1000 / max(1, max_in_flight)


def _show_plan(
    console: Console, plan: Plan, settings: Settings, speed: float | None, idle_gap_s: float
) -> None:
    w = plan.window
    table = Table(title=f"drill window {iso(w.from_ms)} → {iso(w.to_ms)}", show_header=False)
    table.add_row("records", f"{plan.records:,} (exact; {plan.read:,} read with the skew)")
    table.add_row("bytes", f"{plan.bytes:,}")
    table.add_row("write requests", f"{plan.writes:,}")
    in_flight = settings.replayer.max_in_flight
    est = estimate_s(plan, speed, idle_gap_s, in_flight)
    table.add_row(
        "estimated duration",
        f"{est:,.1f} s at {settings.replayer.speed}"
        if speed is not None
        else f"at least {est:,.1f} s at max (production's latency, {in_flight} in flight)",
    )
    top = ", ".join(f"{name} {n:,}" for name, n in plan.endpoints.most_common(8))
    table.add_row("endpoints", top or "-")
    table.add_row("target", settings.replayer.target)
    console.print(table)


def _probe(settings: Settings, target: str, console: Console, health: str) -> None:
    from shadowtap.drill.reach import reachability
    from shadowtap.preflight import show

    show(reachability(settings, target, health=health), console)


def _show_end(
    console: Console, record: dict[str, Any], results: list[Any], paths: list[Path]
) -> None:
    f = record["figures"]
    rate = f["success_rate"]
    console.print(
        f"drill {record['name']} {record['state']}: {f['sent']:,} sent of "
        f"{f['window_records']:,}, success "
        + (f"{rate:.2%}" if rate is not None else "-")
        + f", {f['wall_s']:.1f} s"
    )
    for r in results:
        mark = "[green]pass[/green]" if r.passed else "[red]fail[/red]"
        value = "nothing measured" if r.value is None else f"{r.value:.4g}"
        console.print(f"  {mark} {r.goal} {r.endpoint} ({value}; {r.detail})")
    for path in paths:
        console.print(f"  report: {path}")
