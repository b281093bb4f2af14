"""The ``shadowtap`` command.

    shadowtap kafka start|stop|status     a local Apache Kafka for the demo and development
    shadowtap kafka fetch                 only fetch its jars (CI, offline preparation)
    shadowtap topics create|describe      shadowtap's topics, from configuration
    shadowtap collect                     HTTP sink for nginx/Envoy/Istio mirrors → captured
    shadowtap process                     the Faust processor: captured → mirror
    shadowtap replay --target URL --group NAME   a replayer worker: mirror → target
    shadowtap doctor [--target URL] [--json]     preflight checklist before mirroring to a target
    shadowtap dlq stats|list|show|redrive  work the dead-letter topic (shadowtap.deadletters)
    shadowtap diff run|report|noise add|accept   compare the targets' answers, gate on goals
    shadowtap drill --target URL --from T --to T   replay a window to a DR site, with a report
    shadowtap drill list|show NAME        earlier drill runs (shadowtap.drills)
    shadowtap demo                        the whole pipeline on demo apps, with a report

Every command takes ``--config FILE`` (TOML, see shadowtap.config) and ``--bootstrap``.
Without either, a local broker started by ``shadowtap kafka start`` is found by itself.

The parser and ``main`` are here; each command group's handlers are in a module of its own
(``cluster``: kafka and topics; ``stages``: collect, process, replay; ``doctor``; ``dlq``;
``demo``), and
their flags become settings one way (``shadowtap.cli.settings``).
Each handler imports what it needs, so ``shadowtap --help`` stays fast and the capture-only
install can still run the commands that need nothing more.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from shadowtap import __version__
from shadowtap.cli.cluster import kafka_command, topics_command
from shadowtap.cli.console import console, escape
from shadowtap.cli.demo import demo_command
from shadowtap.cli.diff import add_diff_parser
from shadowtap.cli.dlq import dlq_command
from shadowtap.cli.doctor import doctor_command
from shadowtap.cli.drill import add_drill
from shadowtap.cli.settings import add_delivery_flags
from shadowtap.cli.stages import collect_command, process_command, replay_command
from shadowtap.errors import ShadowtapError

Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ShadowtapError as exc:
        console().print(f"[red]error:[/red] {escape(str(exc))}")
        return 2
    except KeyboardInterrupt:
        return 130


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
    kafka.set_defaults(handler=kafka_command)

    demo = sub.add_parser("demo", help="run the whole pipeline locally on demo apps and report")
    demo.add_argument("--requests", type=int, default=200, help="requests to send (default 200)")
    demo.add_argument("--report-dir", default=".", help="where the JSON and HTML reports go")
    demo.add_argument("--keep-kafka", action="store_true", help="leave a broker it started running")
    demo.set_defaults(handler=demo_command)

    collect = sub.add_parser(
        "collect", parents=[common], help="HTTP sink for nginx/Envoy/Istio mirrored requests"
    )
    collect.add_argument(
        "--host", help="listen address (default: capture.collector_host, 127.0.0.1)"
    )
    collect.add_argument(
        "--port", type=int, help="listen port (default: capture.collector_port, 8787)"
    )
    collect.add_argument("--metrics-port", type=int, help="Prometheus /metrics port (default off)")
    collect.add_argument("--loglevel", default="info", help="log level (default: info)")
    collect.set_defaults(handler=collect_command)

    process = sub.add_parser(
        "process", parents=[common], help="run the Faust processor: captured → mirror"
    )
    process.add_argument(
        "--web-port", type=int, help="Prometheus /metrics port (default: processor.web_port)"
    )
    process.add_argument("--loglevel", default="info", help="worker log level (default: info)")
    process.set_defaults(handler=process_command)

    replay = sub.add_parser(
        "replay", parents=[common], help="deliver mirrored traffic to a target (one worker)"
    )
    replay.add_argument("--target", help="target base URL (default: replayer.target)")
    replay.add_argument("--group", help="consumer group, one per target (default: replayer.group)")
    add_delivery_flags(replay)
    replay.add_argument("--metrics-port", type=int, help="Prometheus /metrics port (default off)")
    replay.add_argument("--loglevel", default="info", help="log level (default: info)")
    replay.add_argument(
        "--allow-production-target",
        action="store_true",
        help="replay even to a production host: every request reaches production twice",
    )
    replay.set_defaults(handler=replay_command)

    doctor = sub.add_parser(
        "doctor", parents=[common], help="preflight checklist: is it safe to mirror to a target?"
    )
    doctor.add_argument("--target", help="target base URL (default: replayer.target)")
    doctor.add_argument("--json", action="store_true", help="print JSON instead of a table")
    doctor.set_defaults(handler=doctor_command)

    _add_dlq(sub, common)
    add_diff_parser(sub, common)
    add_drill(sub, common)

    topics = sub.add_parser("topics", parents=[common], help="create or describe the topics")
    topics.add_argument("action", choices=["create", "describe"])
    topics.set_defaults(handler=topics_command)
    return parser


def _add_dlq(sub: Any, common: argparse.ArgumentParser) -> None:
    dlq_parser = sub.add_parser(
        "dlq", help="work the dead-letter topic: stats, list, show, redrive"
    )
    actions = dlq_parser.add_subparsers(dest="action", required=True, metavar="ACTION")
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
    dlq_parser.set_defaults(handler=dlq_command)
