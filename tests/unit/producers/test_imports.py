"""Installing the middleware must not pull the processor's or replayer's dependencies in."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

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
    "httptools",  # the collector's extra, imported only when a collector is built
}
ROOT = Path(__file__).resolve().parents[3]
# Makes ``import httptools`` fail, as on an install without the [collector] extra.
NO_HTTPTOOLS = (
    "import sys\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] == 'httptools':\n"
    "            raise ImportError('No module named httptools')\n"
    "sys.meta_path.insert(0, Block())\n"
)


def test_capture_modules_import_only_stdlib_confluent_kafka_and_orjson() -> None:
    code = (
        "import sys\n"
        "import shadowtap.producers.asgi, shadowtap.producers.wsgi, shadowtap.producers.collector\n"
        "import shadowtap.producers.django\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(HEAVY)!r})))\n"
        # nor any of the other stages' code (lint-imports checks the same statically)
        "print(sorted(m for m in sys.modules if m.startswith(('shadowtap.processors', "
        "'shadowtap.replayers'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "[]"]


def test_capture_install_is_light_and_the_collector_has_its_own_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {dep.split(">")[0].split("=")[0].split("[")[0] for dep in project["dependencies"]}
    assert base == {"confluent-kafka", "orjson"}
    extras = project["optional-dependencies"]
    assert any(dep.startswith("httptools") for dep in extras["collector"])
    assert "collector" in extras["all"][0]


def test_collect_without_its_extra_says_how_to_install_it() -> None:
    code = NO_HTTPTOOLS + (
        "import shadowtap.producers.asgi, shadowtap.producers.collector\n"
        "from shadowtap.cli import main\n"
        "sys.exit(main(['collect', '--port', '0', '--bootstrap', '127.0.0.1:1']))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 2, out.stderr
    assert "pip install 'shadowtap[collector]'" in out.stderr.replace("\n", " ")
