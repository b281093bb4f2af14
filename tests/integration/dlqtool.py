"""Run ``shadowtap dlq …`` in this process against a test's own topics, as an operator would."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import orjson

from shadowtap.cli import main
from shadowtap.config import Settings


def config_file(settings: Settings, directory: Path) -> Path:
    """A TOML file naming the test's broker, topics and processor group."""
    t = settings.topics
    topics = {
        "captured": t.captured,
        "mirror": t.mirror,
        "results": t.results,
        "dlq": t.dlq,
        "redriven": t.redriven,
        "retry_prefix": t.retry_prefix,
    }
    lines = [
        "[kafka]",
        f'bootstrap = "{settings.kafka.bootstrap}"',
        "[topics]",
        *(f'{k} = "{v}"' for k, v in topics.items()),
        f"partitions = {t.partitions}",
        "[processor]",
        f'group = "{settings.processor.group}"',
    ]
    path = directory / "shadowtap.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def dlq(settings: Settings, directory: Path, action: str, *args: str) -> tuple[int, str]:
    """``shadowtap dlq ACTION --config … ARGS``: its exit code and what it printed on stdout."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["dlq", action, "--config", str(config_file(settings, directory)), *args])
    return code, out.getvalue()


def dlq_json(settings: Settings, directory: Path, action: str, *args: str) -> Any:
    code, text = dlq(settings, directory, action, *args, "--json")
    assert code == 0, text
    return orjson.loads(text)
