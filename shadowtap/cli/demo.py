"""``shadowtap demo``: the whole pipeline on demo apps, with a report (shadowtap.demo)."""

from __future__ import annotations

import argparse
from pathlib import Path


def demo_command(args: argparse.Namespace) -> int:
    from shadowtap.demo import run_demo

    return run_demo(
        requests=args.requests, report_dir=Path(args.report_dir), keep_kafka=args.keep_kafka
    )
