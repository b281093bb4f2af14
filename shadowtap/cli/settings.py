"""The one way from a command's flags to its Settings; the delivery flags replay and drill share."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from shadowtap.config import KafkaSettings, Settings


def command_settings(args: argparse.Namespace, **sections: Mapping[str, Any]) -> Settings:
    """Defaults ← ``--config`` (or SHADOWTAP_CONFIG) ← SHADOWTAP_* ← the command's flags.

    ``sections`` holds the command's flags by settings section, e.g.
    ``replayer={"speed": args.speed}``; a flag left out (None) keeps what the file and the
    environment say. ``--bootstrap`` is ``kafka.bootstrap``; without it, and with the
    default bootstrap, a local broker started by ``shadowtap kafka start`` is used.
    """
    overrides: dict[str, dict[str, Any]] = {}
    for section, flags in sections.items():
        given = {key: value for key, value in flags.items() if value is not None}
        if given:
            overrides[section] = given
    bootstrap = getattr(args, "bootstrap", None)
    if bootstrap:
        overrides.setdefault("kafka", {})["bootstrap"] = bootstrap
    path = getattr(args, "config", None)
    settings = Settings.load(path, overrides=overrides)
    if not bootstrap and settings.kafka.bootstrap == KafkaSettings().bootstrap:
        from shadowtap.devkafka import LocalKafka

        local = LocalKafka().status()
        if local is not None and local.bootstrap != settings.kafka.bootstrap:
            overrides.setdefault("kafka", {})["bootstrap"] = local.bootstrap
            settings = Settings.load(path, overrides=overrides)
    return settings


def add_delivery_flags(parser: argparse.ArgumentParser) -> None:
    """``--speed``, ``--rate`` and ``--max-in-flight``: how replay and drill send."""
    parser.add_argument("--speed", help="max (default), or 1x, 2x, 0.5x: keep recorded pacing")
    parser.add_argument("--rate", dest="rate_per_s", help="ceiling, e.g. 500/s (default: none)")
    parser.add_argument("--max-in-flight", type=int, help="requests in flight (default 64)")


def delivery_flags(args: argparse.Namespace) -> dict[str, Any]:
    """``[replayer]`` overrides from ``--target`` and the delivery flags (a bad ``--rate``
    fails here, naming it)."""
    from shadowtap.replayers.pacing import parse_rate

    rate = None if args.rate_per_s is None else parse_rate(args.rate_per_s) or 0.0
    return {
        "target": args.target or None,
        "speed": args.speed,
        "rate_per_s": rate,
        "max_in_flight": args.max_in_flight,
    }
