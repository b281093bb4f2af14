"""``shadowtap doctor [--target URL] [--json]``: the preflight checklist (shadowtap.doctor).

Exit status: 0 when nothing failed (warnings allowed), 1 when a check failed, 2 when a
setting or the target URL is unusable (as every command).
"""

from __future__ import annotations

import argparse
import json
import sys

from shadowtap.cli.console import console
from shadowtap.cli.settings import command_settings


def doctor_command(args: argparse.Namespace) -> int:
    from shadowtap.doctor import checklist
    from shadowtap.preflight import Status, as_json, failures, show
    from shadowtap.replayers.rewrite import parse_target

    settings = command_settings(args)
    target = args.target or settings.replayer.target
    if target:
        parse_target(target)  # a typo is a usage error, not a failed check
    out = console()
    status = getattr(out, "status", None)  # rich's spinner; the plain console has none
    if status is None or args.json:
        findings = checklist(settings, target)
    else:
        with status(f"checking {target or 'the settings'} …"):
            findings = checklist(settings, target)
    if args.json:
        json.dump(as_json(findings), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        show(findings, out)
        counts = {s: sum(f.status is s for f in findings) for s in Status}
        out.print(
            f"{counts[Status.PASS]} passed, {counts[Status.WARN]} warnings, "
            f"{counts[Status.FAIL]} failed"
        )
    return 1 if failures(findings) else 0
