"""``shadowtap diff``: compare what the targets answered, report it, gate a deployment on it.

::

    shadowtap diff run --baseline v1-a --secondary v1-b --candidate v2 --fail-above 0.5%
    shadowtap diff run --targets staging               # data drift only: production vs staging
    shadowtap diff serve --run v2 --baseline v1-a --secondary v1-b --candidate v2   # N workers
    shadowtap diff report --run v2 --fail-above 0.5%   # what the serve workers found so far
    shadowtap diff report diff-summary.json --goal "GET /users/{id}: p99<=1.5x"
    shadowtap diff noise add "GET /users/{id}" '$..updated_at' --comparator timestamp --seconds 5
    shadowtap diff accept "GET /users/{id}" '$.name' --note "v2 splits the name on purpose"

``run`` reads ``topics.results`` (from ``--since``, else the beginning) until no result came
for ``--idle-s`` seconds (``--follow``: until Ctrl-C or SIGTERM), pairs each record's results
and compares them (shadowtap.diff.consumer), writes sampled mismatches to ``topics.diffs``
and the report to ``--out``: ``diff-summary.json``, ``diff-report.html`` (self-contained)
and ``diff-junit.xml``. ``serve`` is the same diff as a Faust agent that runs until stopped,
in as many processes as wanted (shadowtap.diff.worker); ``report --run NAME`` merges what
its workers published. ``report SUMMARY`` writes the report of a saved summary. Goals
(``--fail-above 0.5%`` is ``mismatch<=0.5%``, ``--goal`` any of shadowtap.diff.goals, and
the rules file's ``goals``) set the exit code: 0 when all pass, 1 when one fails; without
any goal it is 0. The rules file (``--rules``, default ``diff-rules.toml`` when it exists)
is what ``noise add`` and ``accept`` write.
"""

from __future__ import annotations

import argparse
import signal
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from shadowtap.cli.console import console, escape

RULES = "diff-rules.toml"


def add_diff_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    diff = sub.add_parser("diff", help="compare the targets' answers; report; gate on goals")
    actions = diff.add_subparsers(dest="action", required=True, metavar="ACTION")
    rules = argparse.ArgumentParser(add_help=False)
    rules.add_argument("--rules", help=f"the rules file (default: {RULES} when it exists)")
    gate = argparse.ArgumentParser(add_help=False, parents=[rules])
    gate.add_argument("--out", default=".", help="where the report files go (default: .)")
    gate.add_argument("--fail-above", help="fail when more records mismatch, e.g. 0.5%%")
    gate.add_argument(
        "--goal", action="append", default=[], help='a goal, e.g. "p99<=1.5x" (repeatable)'
    )

    sides = argparse.ArgumentParser(add_help=False, parents=[common])
    sides.add_argument("--baseline", help="the target running the current version")
    sides.add_argument("--secondary", help="a second baseline: noise is what the two differ by")
    sides.add_argument("--candidate", help="the target running the new version")
    sides.add_argument("--targets", help="comma-separated targets to compare with production")
    sides.add_argument("--no-drift", action="store_true", help="skip production vs target views")
    sides.add_argument("--grace-s", type=float, default=60.0, help="pairing grace (default 60 s)")
    sides.add_argument("--no-diffs", action="store_true", help="do not write to topics.diffs")
    sides.add_argument("--metrics-port", type=int, default=0, help="Prometheus /metrics port")

    run = actions.add_parser(
        "run",
        parents=[sides, gate],
        help="read results, pair, compare, report",
    )
    run.add_argument("--since", help="results since: an age (30m, 2h) or an ISO 8601 time")
    run.add_argument("--idle-s", type=float, default=10.0, help="stop after so long without one")
    run.add_argument("--follow", action="store_true", help="run until stopped (Ctrl-C, SIGTERM)")
    run.set_defaults(handler=diff_run_command)

    serve = actions.add_parser(
        "serve", parents=[sides, rules], help="the diff as a Faust agent: start one per process"
    )
    serve.add_argument("--run", required=True, help="the run's name: workers of one run share")
    serve.add_argument(
        "--publish-s", type=float, default=5.0, help="how often counters are published (5 s)"
    )
    serve.add_argument("--loglevel", default="warning", help="Faust's log level (warning)")
    serve.set_defaults(handler=diff_serve_command)

    report = actions.add_parser(
        "report", parents=[common, gate], help="report a saved summary, or a serve run's"
    )
    report.add_argument(
        "summary", nargs="?", help="a diff-summary.json written by `shadowtap diff run`"
    )
    report.add_argument("--run", help="instead: merge what `diff serve --run NAME` published")
    report.set_defaults(handler=diff_report_command)

    noise = actions.add_parser("noise", help="add a noise rule to the rules file")
    noise_actions = noise.add_subparsers(dest="noise_action", required=True, metavar="ACTION")
    add = noise_actions.add_parser("add", parents=[rules], help="ENDPOINT PATH: treat as noise")
    add.add_argument("endpoint", help='"GET /users/{id}", "/users/{id}" or "" for every one')
    add.add_argument("path", help="a JSONPath into the body ($..updated_at), or a header name")
    add.add_argument("--header", action="store_true", help="PATH is a header name")
    add.add_argument("--comparator", default="ignore", help="ignore (default), numeric, ...")
    for name, kind in (("seconds", float), ("tolerance", float), ("relative", float)):
        add.add_argument(f"--{name}", type=kind, help=f"the comparator's {name}")
    for name in ("key", "pattern", "target", "note"):
        add.add_argument(f"--{name}", help=f"the rule's {name}")
    add.set_defaults(handler=diff_noise_command)

    accept = actions.add_parser(
        "accept", parents=[rules], help="ENDPOINT FIELD: an intended difference, never gating"
    )
    accept.add_argument("endpoint", help='"GET /users/{id}"')
    accept.add_argument("field", help="the field as the report names it ($.name, status)")
    for name in ("kind", "target", "note"):
        accept.add_argument(f"--{name}", help=f"the acceptance's {name}")
    accept.set_defaults(handler=diff_accept_command)


def _sides(args: argparse.Namespace) -> tuple[Any, list[str]]:
    """The run's roles (None: drift only) and every target it reads."""
    from shadowtap.diff.run import Roles
    from shadowtap.errors import ConfigError

    if args.grace_s < 0:
        raise ConfigError("--grace-s must be 0 or more: how long past a record to wait for it")
    roles = None
    if args.baseline or args.candidate:
        if not (args.baseline and args.candidate):
            raise ConfigError("--baseline and --candidate go together (--secondary: optional)")
        roles = Roles(args.baseline, args.candidate, args.secondary or "")
    elif args.secondary:
        raise ConfigError("--secondary needs --baseline and --candidate")
    extra = [t.strip() for t in (args.targets or "").split(",") if t.strip()]
    targets = list(dict.fromkeys([*(roles.names if roles else ()), *extra]))
    if not targets:
        raise ConfigError("name the targets: --baseline/--candidate, or --targets for drift only")
    return roles, targets


def diff_run_command(args: argparse.Namespace) -> int:
    from shadowtap.cli.settings import command_settings
    from shadowtap.clock import parse_since
    from shadowtap.diff.consumer import DiffConsumer
    from shadowtap.diff.run import DiffRun
    from shadowtap.diff.stage import DiffMetrics
    from shadowtap.kafka_check import wait_for_broker

    roles, targets = _sides(args)
    goals = _goals(args)  # a typo in a goal is said before anything is read
    settings = command_settings(args)
    wait_for_broker(settings.kafka)
    run = DiffRun(_rules(args.rules), roles, drift=not args.no_drift)
    metrics = DiffMetrics()
    if args.metrics_port:
        metrics.serve(args.metrics_port)
    consumer = DiffConsumer(
        settings, run, targets, grace_ms=int(args.grace_s * 1000), metrics=metrics
    )
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    since = parse_since(args.since) if args.since else None
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    what = f"{settings.topics.results} → {' / '.join(targets)}"
    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console()
    )
    with progress:
        task = progress.add_task(f"diffing {what}", total=None)

        def show(n: int) -> None:
            again = sum(consumer.redeliveries.values())
            progress.update(
                task,
                description=f"diffing {what}: {n:,} results, {consumer.pending:,} waiting, "
                f"{consumer.unpaired:,} unpaired, {again:,} redelivered",
            )

        try:
            consumer.run(
                since_ms=since,
                idle_s=0 if args.follow else args.idle_s,
                stop=stop,
                write_diffs=not args.no_diffs,
                progress=show,
            )
        except KeyboardInterrupt:  # what was still waiting is reported unpaired
            consumer.finish()
        finally:
            signal.signal(signal.SIGTERM, previous)
    summary = consumer.summary(goals=goals)
    return _write(summary, Path(args.out))


def diff_serve_command(args: argparse.Namespace) -> int:
    from shadowtap.cli.settings import command_settings
    from shadowtap.diff.run import DiffRun
    from shadowtap.diff.stage import DiffMetrics
    from shadowtap.diff.worker import Serve, run_worker
    from shadowtap.errors import ConfigError
    from shadowtap.kafka_check import wait_for_broker

    roles, targets = _sides(args)
    if args.publish_s <= 0:
        raise ConfigError("--publish-s must be above 0: how often a worker's counters are written")
    serve = Serve(
        args.run,
        tuple(targets),
        grace_ms=int(args.grace_s * 1000),
        publish_s=args.publish_s,
        write_diffs=not args.no_diffs,
    )
    rules = _rules(args.rules)
    settings = command_settings(args)
    wait_for_broker(settings.kafka)
    metrics = DiffMetrics()
    if args.metrics_port:
        metrics.serve(args.metrics_port)
    run = DiffRun(rules, roles, drift=not args.no_drift)
    console().print(
        f"diff serve: run {escape(args.run)}, group {escape(serve.group)}, "
        f"targets {escape(', '.join(targets))}"
    )
    return run_worker(settings, serve, run, metrics=metrics, loglevel=args.loglevel)


def diff_report_command(args: argparse.Namespace) -> int:
    from shadowtap.diff.goals import evaluate, parse_goal
    from shadowtap.diff.summary import from_json
    from shadowtap.errors import ConfigError

    if bool(args.summary) == bool(args.run):
        raise ConfigError("give one of: a saved summary (diff-summary.json), or --run NAME")
    if args.run:
        return _write(_served(args), Path(args.out))
    summary = from_json(Path(args.summary).read_bytes())
    wanted = _goals(args)
    if args.rules or Path(RULES).exists():
        wanted = [*_rules(args.rules).goals, *wanted]
    if wanted:
        goals = [parse_goal(g) if isinstance(g, str) else g for g in wanted]
        summary = replace(summary, goals=evaluate(goals, summary))
    return _write(summary, Path(args.out))


def diff_noise_command(args: argparse.Namespace) -> int:
    from shadowtap.diff.triage import add_header_noise, add_noise

    options = {
        k: getattr(args, k)
        for k in ("seconds", "tolerance", "relative", "key", "pattern", "target", "note")
        if getattr(args, k) is not None
    }
    path = args.rules or RULES
    add = add_header_noise if args.header else add_noise
    rule = add(path, args.endpoint, args.path, args.comparator, **options)
    console().print(f"{escape(path)}: noise {escape(repr(rule))}")
    return 0


def diff_accept_command(args: argparse.Namespace) -> int:
    from shadowtap.diff.triage import accept

    options = {k: getattr(args, k) for k in ("target", "note") if getattr(args, k) is not None}
    path = args.rules or RULES
    accepted = accept(path, args.endpoint, args.field, args.kind or "", **options)
    console().print(f"{escape(path)}: accepted {escape(repr(accepted))}")
    return 0


def _served(args: argparse.Namespace) -> Any:
    """The summary of a serve run: every worker's published counters, merged."""
    from shadowtap.cli.settings import command_settings
    from shadowtap.diff import states
    from shadowtap.kafka_check import wait_for_broker

    settings = command_settings(args)
    wait_for_broker(settings.kafka)
    records = states.load(settings.kafka, settings.topics.diff_states, args.run)
    return states.merged_summary(records, _rules(args.rules), _goals(args))


def _rules(path: str | None) -> Any:
    from shadowtap.diff.rules import Rules, load_rules

    if path:
        return load_rules(path)
    return load_rules(RULES) if Path(RULES).exists() else Rules()


def _goals(args: argparse.Namespace) -> list[Any]:
    from shadowtap.diff.goals import fail_above, parse_goal

    goals = [parse_goal(g) for g in args.goal]
    if args.fail_above:
        goals.append(fail_above(args.fail_above))
    return goals


def _write(summary: Any, out: Path) -> int:
    from shadowtap.diff.goals import exit_code
    from shadowtap.diff.html import write_html
    from shadowtap.diff.junit import write_junit
    from shadowtap.diff.summary import to_json

    out.mkdir(parents=True, exist_ok=True)
    (out / "diff-summary.json").write_bytes(to_json(summary))
    write_html(summary, out / "diff-report.html")
    write_junit(summary, out / "diff-junit.xml")
    con = console()
    t = summary.totals
    con.print(
        f"{t.records:,} records: {t.compared:,} compared, {t.unpaired:,} unpaired, "
        f"{sum(t.incomplete.values()):,} incomplete, {t.no_production:,} without production "
        f"response, {t.partial:,} with a cut body; {sum(t.redeliveries.values()):,} redeliveries"
        + (f"; {t.waiting:,} still waiting for a target" if t.waiting else "")
    )
    for view in summary.views:
        flagged = [
            (e.endpoint, f.field, f.verdict)
            for e in view.endpoints
            for f in e.fields
            if f.verdict in ("regression", "difference")
        ]
        con.print(f"[bold]{escape(view.label)}[/bold]: {len(flagged)} flagged field(s)")
        for endpoint, field, verdict in flagged[:20]:
            con.print(f"  {escape(endpoint)}  {escape(field)}  [red]{verdict}[/red]")
    for goal in summary.goals:
        mark = "[green]pass[/green]" if goal.passed else "[red]FAIL[/red]"
        where = f" {escape(goal.endpoint)}" if goal.endpoint else ""
        con.print(f"  {mark} {escape(goal.goal)}{where}: {escape(goal.detail)}")
    con.print(f"report: {escape(str(out / 'diff-report.html'))}")
    return exit_code(summary.goals) if summary.goals else 0
