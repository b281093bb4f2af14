"""Apache Kafka's jars for the local broker: fetched from Maven Central once, into the cache.

``org.apache.kafka:kafka_2.13`` and its runtime dependencies (plus an slf4j binding) are
copied by Maven into ``<cache>/kafka_<scala>-<version>/libs``; the machine's Java runs them
(shadowtap.devkafka). The cache is ``SHADOWTAP_CACHE_DIR``, else
``$XDG_CACHE_HOME/shadowtap``, else ``~/.cache/shadowtap``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from shadowtap.errors import DevKafkaError

KAFKA_VERSION = "3.9.1"
SCALA_VERSION = "2.13"
# slf4j has no binding in Kafka's runtime dependencies; without one the broker logs nothing.
_LOGGING_JAR = "org.slf4j:slf4j-simple:1.7.36"

Progress = Callable[[str], None]


def cache_dir() -> Path:
    if os.environ.get("SHADOWTAP_CACHE_DIR"):
        return Path(os.environ["SHADOWTAP_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "shadowtap"


def jars_dir() -> Path:
    return cache_dir() / f"kafka_{SCALA_VERSION}-{KAFKA_VERSION}" / "libs"


def ensure_jars(progress: Progress = lambda _msg: None) -> Path:
    """Fetch the broker's jars from Maven Central once; return the directory holding them."""
    libs = jars_dir()
    done = libs.parent / ".complete"
    if done.exists():
        return libs
    java, mvn = shutil.which("java"), shutil.which("mvn")
    if java is None:
        raise DevKafkaError(
            "Java is not installed: the local Kafka broker needs a Java 17+ runtime "
            "(Debian: apt-get install openjdk-17-jre-headless), or set SHADOWTAP_BOOTSTRAP "
            "to an existing cluster"
        )
    if mvn is None:
        raise DevKafkaError(
            "Maven is not installed: it fetches Apache Kafka's jars from Maven Central once "
            "(Debian: apt-get install maven), or set SHADOWTAP_BOOTSTRAP to an existing cluster"
        )
    progress(f"fetching Apache Kafka {KAFKA_VERSION} jars from Maven Central into {libs}")
    libs.mkdir(parents=True, exist_ok=True)
    group, artifact, version = _LOGGING_JAR.split(":")
    pom = f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>shadowtap</groupId><artifactId>devkafka</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_{SCALA_VERSION}</artifactId>
      <version>{KAFKA_VERSION}</version></dependency>
    <dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>
      <version>{version}</version></dependency>
  </dependencies>
</project>
"""
    with tempfile.TemporaryDirectory(prefix="shadowtap-mvn-") as work:
        Path(work, "pom.xml").write_text(pom)
        cmd = [
            mvn, "-B", "-q", "-f", str(Path(work, "pom.xml")),
            "dependency:copy-dependencies", f"-DoutputDirectory={libs}", "-DincludeScope=runtime",
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise DevKafkaError(
            f"Maven could not fetch org.apache.kafka:kafka_{SCALA_VERSION}:{KAFKA_VERSION} "
            f"(exit {proc.returncode}); is Maven Central reachable?\n{tail}"
        )
    if not any(libs.glob(f"kafka_{SCALA_VERSION}-{KAFKA_VERSION}.jar")):
        raise DevKafkaError(f"Maven finished but {libs} holds no Kafka jar")
    done.write_text(KAFKA_VERSION)
    return libs
