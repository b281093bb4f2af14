"""The diff stage stands alone: no other stage package, no Faust, no HTTP client.

Its pure core needs no Kafka client either; only the thin shells that read results
(``shadowtap.diff.consumer``) and publish workers' states (``shadowtap.diff.states``) import
librdkafka's, and only the Faust agent (``shadowtap.diff.worker``) imports Faust."""

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


SHELLS = ("shadowtap.diff.consumer", "shadowtap.diff.states")
AGENT = "shadowtap.diff.worker"


def _imported(modules: list[str], forbidden: tuple[str, ...]) -> str:
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.startswith({forbidden!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_diff_modules_import_no_other_stage_and_no_heavy_dependency() -> None:
    modules = [f"shadowtap.diff.{m.name}" for m in pkgutil.iter_modules(shadowtap.diff.__path__)]
    assert {*SHELLS, AGENT} <= set(modules) and len(modules) >= 15
    pure = [m for m in modules if m not in (*SHELLS, AGENT)]
    assert _imported(pure, FORBIDDEN) == "[]"


def test_the_kafka_shells_import_only_librdkafkas_client() -> None:
    heavy = tuple(f for f in FORBIDDEN if f != "confluent_kafka")
    assert _imported(list(SHELLS), heavy) == "[]"


def test_the_faust_agent_imports_faust_only_when_it_builds_its_app() -> None:
    heavy = tuple(f for f in FORBIDDEN if f not in ("confluent_kafka", "faust"))
    assert _imported([AGENT], heavy) == "[]"
