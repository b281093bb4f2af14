"""Installing the middleware must not pull the processor's or replayer's dependencies in."""

from __future__ import annotations

import subprocess
import sys

HEAVY = {
    "faust",
    "mode",
    "aiokafka",
    "presidio_analyzer",
    "presidio_anonymizer",
    "spacy",
    "httpx",
    "aiohttp",
    "rich",
    "prometheus_client",
    "tldextract",
}


def test_capture_modules_import_only_stdlib_confluent_kafka_and_orjson() -> None:
    code = (
        "import sys\n"
        "import shadowtap.producers.asgi, shadowtap.producers.wsgi, shadowtap.producers.collector\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(HEAVY)!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
