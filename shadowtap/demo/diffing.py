"""The demo's diff: production (v1) against staging (v2), from the results the replay wrote.

Staging runs the new version on staging data, so this is the two-way "data drift" view of
``shadowtap diff run --targets staging`` (shadowtap.diff.consumer): per endpoint, the
fields in which staging answered differently, with examples, in
``shadowtap-demo-diff.html`` (and ``.json``) beside the demo's own report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shadowtap.config import Settings
from shadowtap.diff.consumer import DiffConsumer
from shadowtap.diff.html import write_html
from shadowtap.diff.run import DiffRun
from shadowtap.diff.summary import FLAGGED, Summary, to_json

HTML = "shadowtap-demo-diff.html"
JSON = "shadowtap-demo-diff.json"


def diff_staging(settings: Settings, target: str, report_dir: Path, out: Any) -> Summary:
    """Pair and compare what the replay wrote; write the diff report; print its summary."""
    consumer = DiffConsumer(settings, DiffRun(), [target], grace_ms=60_000)
    consumer.run(idle_s=2.0)
    summary = consumer.summary()
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / JSON).write_bytes(to_json(summary))
    write_html(summary, report_dir / HTML, title="shadowtap demo: production vs staging")
    for view in summary.views:
        compared = sum(e.compared for e in view.endpoints)
        mismatched = sum(e.mismatched for e in view.endpoints)
        share = f"{mismatched / compared:.0%}" if compared else "-"
        out.print(
            f"[bold]{view.label}[/bold]: {mismatched} of {compared} compared differ ({share})"
        )
        for endpoint in view.endpoints:
            fields = [f.field for f in endpoint.fields if f.verdict in FLAGGED]
            if fields:
                out.print(f"  {endpoint.endpoint}: {', '.join(fields[:6])}")
    out.print(f"diff report: {report_dir / HTML}")
    return summary
