"""``shadowtap demo``: the whole pipeline on one machine, end to end, in about a minute.

It starts (or finds) a Kafka broker, creates topics for this run, starts the demo shop as
production (v1, behind the capture middleware) and as staging (v2, behind the guard, with
order confirmation e-mails), runs ``shadowtap process`` and one ``shadowtap replay``
worker, sends realistic traffic with planted PII, health checks and retried requests, and
watches every topic fill up. It ends with a report (JSON and HTML) that checks what
shadowtap promises: nothing sensitive reached the mirror topic, health checks and duplicates
were dropped, every mirrored request was replayed and trusted by staging's guard, no order
e-mail left staging, and where staging answered differently from production; then the diff
of production against staging, per endpoint and field (shadowtap.demo.diffing). Last, a
short DR drill replays the run's window of the mirror topic to staging
(shadowtap.demo.drill), with its own report in ``drill/``.

    shadowtap demo [--requests 200] [--report-dir .] [--keep-kafka]

On an existing cluster (``SHADOWTAP_BOOTSTRAP``) every stage uses the ``[kafka]`` settings
of ``SHADOWTAP_CONFIG`` and ``SHADOWTAP_KAFKA_*``, security included; a local broker is
plaintext.

The package: ``services`` supervises the child processes, ``traffic`` sends the requests and
watches the topics, ``report`` checks and writes the verdict, ``diffing`` compares.
"""

from __future__ import annotations

import sys
import uuid
from dataclasses import replace
from pathlib import Path

from shadowtap.clock import now_ms
from shadowtap.config import KafkaSettings, Settings
from shadowtap.demo.diffing import diff_staging
from shadowtap.demo.drill import demo_drill
from shadowtap.demo.report import build_report, print_summary, write_report
from shadowtap.demo.services import stage_env, supervised
from shadowtap.demo.traffic import drive, guard_counts
from shadowtap.devkafka import free_port, resolve_broker
from shadowtap.devkafka_jars import cache_dir
from shadowtap.errors import ShadowtapError
from shadowtap.kafka import create_topics
from shadowtap.replayers.rewrite import parse_target


def run_demo(requests: int = 200, report_dir: Path = Path("."), keep_kafka: bool = False) -> int:
    """Run the demo; return 0 when every check passed."""
    from rich.console import Console

    out = Console(stderr=True, highlight=False)
    run_id = uuid.uuid4().hex[:8]
    run_home = cache_dir() / "run" / f"demo-{run_id}"
    run_home.mkdir(parents=True, exist_ok=True)
    out.print(f"[bold]shadowtap demo[/bold] run {run_id} · logs in {run_home}")
    user_kafka = Settings.load().kafka  # how to reach an existing cluster (security)
    with resolve_broker(
        "default",
        keep_running=keep_kafka,
        progress=lambda m: out.print(f"[cyan]•[/cyan] {m}"),
        kafka=user_kafka,
    ) as broker:
        out.print(f"[green]✓[/green] Kafka {broker.describe()}")
        prefix = f"shadowtap.demo-{run_id}"
        kafka = replace(
            user_kafka if broker.kind == "external" else KafkaSettings(),
            bootstrap=broker.bootstrap,
            client_id="shadowtap-demo",
        )
        settings = Settings.load(
            env={},
            overrides={
                "topics": {
                    "captured": f"{prefix}.captured",
                    "mirror": f"{prefix}.mirror",
                    "results": f"{prefix}.results",
                    "dlq": f"{prefix}.dlq",
                    "diffs": f"{prefix}.diffs",
                    "drills": f"{prefix}.drills",
                    "partitions": 3,
                },
            },
        )
        settings = replace(settings, kafka=kafka)
        create_topics(settings)
        out.print(f"[green]✓[/green] topics {prefix}.{{captured,mirror,results,dlq}}")
        env = stage_env(settings, run_id)
        with supervised(run_home) as services:
            prod_port, staging_port = free_port(), free_port()
            services.start(
                "staging",
                [
                    sys.executable,
                    "-m",
                    "shadowtap.demoapps",
                    "staging",
                    "--port",
                    str(staging_port),
                ],
                {**env, "SHOP_SMTP": f"127.0.0.1:{free_port()}"},  # its order e-mails
            )
            services.start(
                "production",
                [
                    sys.executable,
                    "-m",
                    "shadowtap.demoapps",
                    "production",
                    "--port",
                    str(prod_port),
                ],
                env,
            )
            services.start("processor", [sys.executable, "-m", "shadowtap.cli", "process"], env)
            services.start(
                "replayer",
                [
                    sys.executable,
                    "-m",
                    "shadowtap.cli",
                    "replay",
                    "--target",
                    f"http://127.0.0.1:{staging_port}",
                    "--group",
                    f"demo-{run_id}-staging",
                ],
                env,
            )
            services.wait_http("staging", staging_port)
            services.wait_http("production", prod_port)
            out.print(
                "[green]✓[/green] production (v1 + capture), staging (v2 + guard), processor, "
                "replayer"
            )
            started_ms = now_ms()
            traffic, tally = drive(settings, prod_port, requests, services, out)
            guard = guard_counts(staging_port)  # before the drill sends staging more
            try:
                drill_status = demo_drill(
                    settings, staging_port, started_ms, report_dir=report_dir, name=run_id, out=out
                )
            except ShadowtapError as exc:  # the demo's own report is still written
                out.print(f"[red]DR drill failed: {exc}[/red]")
                drill_status = 1
        report = build_report(traffic, tally, guard)
        paths = write_report(report, report_dir)
        print_summary(out, report, paths)
        staging = parse_target(f"http://127.0.0.1:{staging_port}").name
        diff_staging(settings, staging, report_dir, out)
        out.print(f"DR drill: {'goal met' if drill_status == 0 else 'goal missed'}")
        if keep_kafka and broker.kind == "local":
            out.print(
                f"[dim]Kafka keeps running at {broker.bootstrap}: `shadowtap kafka stop`[/dim]"
            )
    return 0 if report["passed"] else 1
