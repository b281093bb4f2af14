"""``shadowtap collect``, ``process`` and ``replay``: one stage of the pipeline each.

Each checks that the cluster answers and accepts its credentials before it starts
(shadowtap.kafka_check.wait_for_broker): a cluster that refuses our password or
certificates stops the command in seconds, saying which, instead of a client retrying
forever. ``replay`` then runs the critical preflight checks (shadowtap.preflight) and exits
1 without sending anything when the target is production or the marking key is the
development key off this machine.
"""

from __future__ import annotations

import argparse
import logging

from shadowtap.cli.settings import command_settings, delivery_flags


def collect_command(args: argparse.Namespace) -> int:
    import asyncio

    from shadowtap.errors import BrokerError, KafkaSecurityError
    from shadowtap.kafka_check import wait_for_broker
    from shadowtap.producers.collector import serve

    _log_at(args.loglevel)
    flags = {
        "collector_host": args.host,
        "collector_port": args.port,
        "collector_metrics_port": args.metrics_port or None,
    }
    settings = command_settings(args, capture=flags)
    try:
        wait_for_broker(settings.kafka)
    except KafkaSecurityError:
        raise
    except BrokerError as exc:  # capture never waits on Kafka: it drops and counts meanwhile
        logging.getLogger("shadowtap.collect").warning("%s; collecting anyway", exc)
    asyncio.run(serve(settings))
    return 0


def process_command(args: argparse.Namespace) -> int:
    from shadowtap.kafka_check import wait_for_broker
    from shadowtap.processors.app import run_worker

    settings = command_settings(args, processor={"web_port": args.web_port})
    wait_for_broker(settings.kafka, clients=("librdkafka", "aiokafka"))  # Faust reads via aiokafka
    return run_worker(settings, loglevel=args.loglevel)


def replay_command(args: argparse.Namespace) -> int:
    from shadowtap.cli.console import console
    from shadowtap.kafka_check import wait_for_broker
    from shadowtap.preflight import start_allowed
    from shadowtap.replayers.rewrite import parse_target
    from shadowtap.replayers.worker import run_replayer

    _log_at(args.loglevel)
    flags = {
        **delivery_flags(args),
        "group": args.group or None,
        "metrics_port": args.metrics_port,
    }
    settings = command_settings(args, replayer=flags)
    target = settings.replayer.target
    parse_target(target)  # a typo in the target is said before Kafka is asked
    wait_for_broker(settings.kafka)
    if not start_allowed(
        settings, target, console(), allow_production=args.allow_production_target
    ):
        return 1
    return run_replayer(settings)


def _log_at(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(name)s %(message)s")
