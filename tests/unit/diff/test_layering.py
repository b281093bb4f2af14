"""The diff stage stands alone: no other stage package, no Faust, no HTTP client."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import shadowtap.diff

FORBIDDEN = (
    "shadowtap.processors",
    "shadowtap.replayers",
    "shadowtap.producers",
    "faust",
    "presidio_analyzer",
    "httpx",
    "aiohttp",
    "confluent_kafka",
)


def test_diff_modules_import_no_other_stage_and_no_heavy_dependency() -> None:
    modules = [f"shadowtap.diff.{m.name}" for m in pkgutil.iter_modules(shadowtap.diff.__path__)]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.startswith({FORBIDDEN!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert len(modules) >= 15
    assert out.stdout.strip() == "[]"
