"""What ``shadowtap collect`` costs production behind nginx ``mirror``, in one run.

    python bench/collect.py [--seconds 30] [--rounds 5] [--connections 32] [--before DIR]

nginx holds a client's next keep-alive request until that request's mirror subrequest has
been answered (nginx 1.22, wrk with 32 connections: 41,000 req/s alone, 106 req/s with a
mirror target answering in 300 ms), so the collector's speed is production's speed. One nginx
(Debian's /usr/sbin/nginx, one worker, pinned to core 1 with wrk) serves the same 1 KB JSON
POST, proxied to a backend that answers 204, in these cases:

- ``alone``: no mirror — the baseline;
- ``mirror-nginx``: mirrored (body included) to an nginx location answering 204 — the
  fastest mirror target there can be, the ceiling any collector can reach;
- ``collector``: mirrored to ``shadowtap collect`` of this tree (pinned to core 0),
  publishing to a real broker;
- ``collector-before``: with ``--before DIR``, the same for the collector of another
  checkout (``git worktree add /tmp/collect-before 7e2c4d6``), run from DIR's code.

The cases take turns for ``--rounds`` interleaved rounds (a shared VM drifts); per round the
rate is divided by that round's ``alone`` rate and the median is printed, with p50 and the
collector process's CPU time per mirrored request (all its threads, librdkafka's included):
that one does not depend on how fast wrk gets to run. Every request each collector answered
must have reached its topic. Ends with one JSON line. Broker: SHADOWTAP_BOOTSTRAP, else a
local one started for the run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.capture_overhead import (  # noqa: E402  (a script: its directory is not a package)
    CLK_TCK,
    LUA,
    PAYLOAD,
    _cpu_ticks,
    _pin,
    _published,
    _steal,
    _wrk,
)
from bench.replay import NGINX_CONF  # noqa: E402  (one nginx answering 204: the backend)

NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")

# The front server of one case: proxied to the backend, mirrored when ``mirror`` is given.
FRONT = """
    server {{
        listen 127.0.0.1:{port};
        location / {{
            {mirror}
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://backend;
        }}
        {mirror_location}
    }}
"""
MIRROR_LOCATION = """location = /_shadowtap {{
            internal;
            proxy_pass http://mirror_{name}$request_uri;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_connect_timeout 200ms;
            proxy_read_timeout 1s;
        }}"""


def _front(name: str, port: int, mirror_port: int | None) -> str:
    if mirror_port is None:
        return FRONT.format(port=port, mirror="", mirror_location="")
    upstream = f"    upstream mirror_{name} {{ server 127.0.0.1:{mirror_port}; keepalive 32; }}"
    return upstream + FRONT.format(
        port=port,
        mirror="mirror /_shadowtap; mirror_request_body on;",
        mirror_location=MIRROR_LOCATION.format(name=name),
    )


def _wait(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited: {log.read_text()[-2000:]}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"did not start: {log.read_text()[-2000:]}")


def _collector(
    code: Path, port: int, bootstrap: str, topic: str, log: Path
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWTAP_")}
    env.update(
        PYTHONPATH=str(code),
        SHADOWTAP_TOPICS_CAPTURED=topic,
        SHADOWTAP_CAPTURE_SOURCE="bench",
        SHADOWTAP_CAPTURE_EXCLUDE_PATHS='["/ready"]',
    )
    cmd = [sys.executable, "-m", "shadowtap.cli", "collect", "--port", str(port)]
    cmd += ["--bootstrap", bootstrap, "--loglevel", "warning"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*_pin(0), *cmd], cwd=code, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    _wait(port, proc, log)
    return proc


def _drained(bootstrap: str, topic: str, answered: int, timeout: float = 20.0) -> None:
    """Wait until the topic holds as many records as requests were answered (or time out)."""
    deadline = time.monotonic() + timeout
    while _published(bootstrap, topic) < answered and time.monotonic() < deadline:
        time.sleep(0.2)


def _report(
    cases: list[str], runs: dict[str, list[tuple[float, float, float]]]
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for case in cases:
        rate = statistics.median(r for r, _, _ in runs[case])
        p50 = statistics.median(p for _, p, _ in runs[case])
        row: dict[str, object] = {
            "case": case,
            "req_s": round(rate),
            "p50_ms": round(p50, 3),
            "rounds_req_s": [round(r) for r, _, _ in runs[case]],
        }
        line = f"{case:17} {rate:7.0f} req/s  p50 {p50:6.2f} ms"
        if case != "alone":
            pairs = zip(runs[case], runs["alone"], strict=True)
            row["ratio"] = round(statistics.median(r / a for (r, _, _), (a, _, _) in pairs), 3)
            line += f"  ratio {row['ratio']:.3f}"
        if case.startswith("collector"):
            row["cpu_us_per_req"] = round(statistics.median(c for _, _, c in runs[case]))
            line += f"  collector cpu {row['cpu_us_per_req']:4} µs/req"
        rows.append(row)
        print(line)
    return rows


def _start(
    tmp: Path, cases: list[str], collectors: dict[str, Path], bootstrap: str, topics: dict[str, str]
) -> tuple[dict[str, int], dict[str, subprocess.Popen[bytes]]]:
    """Start the collectors and one nginx with a front server per case; return the ports."""
    from shadowtap.devkafka import free_port

    ports = {case: free_port() for case in cases}
    backend = free_port()  # answers 204: the proxied app, and the mirror-nginx target
    mirror_ports: dict[str, int | None] = {"alone": None, "mirror-nginx": backend}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, code in collectors.items():
            port = mirror_ports[name] = free_port()
            procs[name] = _collector(code, port, bootstrap, topics[name], tmp / f"{name}.log")
        servers = f"    upstream backend {{ server 127.0.0.1:{backend}; keepalive 64; }}\n"
        servers += "".join(_front(c.replace("-", "_"), ports[c], mirror_ports[c]) for c in cases)
        conf = tmp / "nginx.conf"
        # bench/replay.py's nginx (the backend on its one server) with the front servers added
        http = NGINX_CONF.format(dir=tmp, port=backend).rstrip()
        conf.write_text(http.removesuffix("}") + servers + "}\n")
        cmd = [str(NGINX), "-p", str(tmp), "-c", str(conf), "-e", "stderr"]
        with (tmp / "nginx.log").open("wb") as out:
            procs["nginx"] = subprocess.Popen(
                [*_pin(1), *cmd], stdout=out, stderr=subprocess.STDOUT
            )
        _wait(ports["alone"], procs["nginx"], tmp / "nginx.log")
    except BaseException:
        _stop(procs)
        raise
    return ports, procs


def _stop(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    for proc in procs.values():
        proc.terminate()  # the collectors flush what they queued (bounded)
    for proc in procs.values():
        proc.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=30, help="load per case, over all rounds")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median wins)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--before", type=Path, help="a checkout whose collector is compared")
    args = parser.parse_args()
    if NGINX is None or not shutil.which("wrk"):
        sys.exit("nginx and wrk are needed: apt-get install nginx-light wrk")
    from shadowtap.devkafka import resolve_broker

    per_round = max(1, round(args.seconds / args.rounds))
    collectors = {"collector": ROOT}
    if args.before is not None:
        collectors["collector-before"] = args.before.resolve()
    cases = ["alone", "mirror-nginx", *collectors]
    topics = {name: f"bench.collect.{name}.{os.getpid()}" for name in collectors}
    runs: dict[str, list[tuple[float, float, float]]] = {c: [] for c in cases}
    answered = dict.fromkeys(collectors, 0)
    with (
        resolve_broker("bench-collect", ephemeral=True) as broker,
        tempfile.TemporaryDirectory() as tmp_name,
    ):
        tmp = Path(tmp_name)
        if broker.pid and _pin(1):
            subprocess.run(
                ["taskset", "-a", "-cp", "1", str(broker.pid)], capture_output=True, check=False
            )
        script = tmp / "post.lua"
        script.write_text(LUA % PAYLOAD)
        ports, procs = _start(tmp, cases, collectors, broker.bootstrap, topics)
        try:
            for case in cases:  # warm-up
                done = _wrk(ports[case], 1, args.connections, script)[2]
                if case in collectors:
                    answered[case] += done
            steal = _steal()
            for _ in range(args.rounds):
                for case in cases:
                    collector = procs.get(case)
                    ticks = _cpu_ticks(collector.pid) if collector else 0
                    rate, p50, total = _wrk(ports[case], per_round, args.connections, script)
                    ticks = (_cpu_ticks(collector.pid) - ticks) if collector else 0
                    runs[case].append((rate, p50, ticks / CLK_TCK / max(total, 1) * 1e6))
                    if case in collectors:
                        answered[case] += total
                        # The next case starts with an idle broker: a backlog left behind
                        # would make the next collector drop (queue full), and dropping is
                        # cheaper than publishing.
                        _drained(broker.bootstrap, topics[case], answered[case])
            steal = _steal() - steal
        finally:
            _stop(procs)
        published = {name: _published(broker.bootstrap, topics[name]) for name in collectors}

    rows = _report(cases, runs)
    for name in collectors:
        # Requests in flight when wrk stops are mirrored but not counted by wrk, so a few
        # more records than requests is normal; fewer means records were dropped.
        print(f"{name}: {published[name]} records in Kafka for {answered[name]} requests")
        if published[name] < answered[name] * 0.99:
            # Dropping (queue full) is cheaper than publishing: such a run flatters the
            # collector. Fewer --connections give the broker room.
            print(f"  WARNING: {name} dropped records: the broker did not keep up")
    print(f"CPU steal during the runs: {steal / CLK_TCK:.1f} s")
    print(
        json.dumps(
            {
                "bench": "collect",
                "seconds_per_round": per_round,
                "rounds": args.rounds,
                "connections": args.connections,
                "published": published,
                "requests": answered,
                "results": rows,
            }
        )
    )


if __name__ == "__main__":
    main()
