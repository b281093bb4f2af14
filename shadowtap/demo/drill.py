"""The demo's last step: a short DR drill of the traffic it just mirrored, against staging.

The mirror topic holds the run's clean traffic; ``shadowtap drill`` replays that window at
max speed to staging in a consumer group of its own (the demo's replayer is untouched),
writes its report beside the demo's (``drill/drill.html``) and says how staging did.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from shadowtap.clock import now_ms
from shadowtap.config import Settings
from shadowtap.drill.goals import parse
from shadowtap.drill.session import DrillOptions, run_drill
from shadowtap.drill.window import Window


def demo_drill(
    settings: Settings, staging_port: int, since_ms: int, *, report_dir: Path, name: str, out: Any
) -> int:
    """Drill ``[since_ms, now)`` against staging; the drill's exit status (0: goal met)."""
    replayer = replace(
        settings.replayer,
        target=f"http://127.0.0.1:{staging_port}",
        speed="max",
        results=False,
    )
    out.print("[bold]DR drill[/bold]: the run's mirrored traffic again, to staging at max speed")
    return run_drill(
        replace(settings, replayer=replayer),
        DrillOptions(
            name=name,
            window=Window(since_ms, now_ms() + 1, skew_ms=2000),
            goals=(parse("success>=99%"),),
            report_dir=report_dir / "drill",
            probe=False,
        ),
        out,
    )
