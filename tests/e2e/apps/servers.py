"""Start and stop the e2e servers (subprocesses on loopback ports) and their environment."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[3]


def capture_env(bootstrap: str, topic: str, **extra: str) -> dict[str, str]:
    """This process's environment without its SHADOWTAP_*, plus capture to ``topic``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWTAP_")}
    env.update(
        SHADOWTAP_BOOTSTRAP=bootstrap,
        SHADOWTAP_TOPICS_CAPTURED=topic,
        SHADOWTAP_CAPTURE_FLUSH_TIMEOUT_S="5",
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
        **extra,
    )
    return env


def start_server(
    cmd: list[str], port: int, env: dict[str, str], log: Path, ready: str = "/ready"
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` and wait until ``GET ready`` gets any answer; stop it with stop_server."""
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"{cmd} exited:\n{log.read_text()}"
            try:
                httpx.get(f"http://127.0.0.1:{port}{ready}", timeout=1)
                return proc
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"{cmd} did not start:\n{log.read_text()}")
    except BaseException:
        stop_server(proc)
        raise


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (servers flush what they queued), SIGKILL after 15 s, and reap."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
