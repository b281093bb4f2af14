"""Capture's own Python per request, in process, for this tree and (``--before DIR``) another.

    python bench/capture_inprocess.py [--before DIR] [--rounds 5] [--calls 5000]

``capture_overhead.py`` measures capture under a real server and wrk, where a shared machine's
drift (±30 %) hides a change of a microsecond. This drives the ASGI and WSGI capture
middleware straight from Python instead (no server, no network, Kafka down so librdkafka only
enqueues) around a raw app that reads a 1 KB POST and answers: µs added per request against
the same app bare, measured in the same process. Cases:

- ``unmarked``: an ordinary request with a browser's headers — what every production request
  pays;
- ``signed``: the same request with a valid signed marking (``X-Shadowtap-Signature``), which
  loop prevention verifies and does not record (a tree without loop prevention records it).

Each tree runs in a process of its own (``PYTHONPATH``); the trees take turns for
``--rounds`` rounds, the figure per case is the median over rounds of each round's fastest
pass. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-marking-key"
RID = "0190a0b1-7c2d-7e3f-8a4b-5c6d7e8f9012"
BODY = b'{"customer": "c-1", "items": [' + b'{"sku": "S0001", "qty": 1}, ' * 36 + b"{}]}"
HEADERS = [
    tuple(line.encode().split(b": ", 1))
    for line in """\
host: shop.example
user-agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0
accept: application/json
accept-encoding: gzip, deflate, br
accept-language: en-GB,en;q=0.9
content-type: application/json
authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjLTEifQ.sig
cookie: session=abc123; theme=dark
x-request-id: 7f9c1e0a-5d3b-4c2a-9e8f-1b2c3d4e5f60
traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01""".splitlines()
] + [(b"content-length", str(len(BODY)).encode())]


def _best_us(cases: dict[str, Callable[[], object]], calls: int, passes: int) -> dict[str, float]:
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(passes):
        for name, call in cases.items():
            gc.collect()
            gc.disable()
            try:
                start = time.perf_counter()
                for _ in range(calls):
                    call()
                best[name] = min(best[name], (time.perf_counter() - start) / calls * 1e6)
            finally:
                gc.enable()
    return best


def _drive(coro: Any) -> None:
    try:
        coro.send(None)
    except StopIteration:
        return
    raise RuntimeError("the benchmark app suspended")


def worker(calls: int, passes: int) -> dict[str, float]:
    """µs per request of each case, in this process's shadowtap (whatever PYTHONPATH says)."""
    from shadowtap.config import Settings
    from shadowtap.marking import Marker
    from shadowtap.producers.asgi import ShadowtapMiddleware
    from shadowtap.producers.wsgi import ShadowtapWSGIMiddleware

    settings = Settings.load(
        env={},
        overrides={
            "kafka": {"bootstrap": "127.0.0.1:9"},  # Kafka down: produce() only enqueues
            # A queue that never fills here, so every request takes the enqueue path.
            "capture": {
                "hash_key": "bench",
                "flush_timeout_s": 0,
                "queue_max_messages": 10_000_000,
                "queue_max_kbytes": 2_000_000,
            },
            "marking": {"key": KEY},
        },
    )
    signature = Marker(KEY).sign("POST", "/api/orders", RID)
    marked = [*HEADERS, (b"x-shadowtap-id", RID.encode()),
              (b"x-shadowtap-signature", signature.encode())]  # fmt: skip
    start = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"x")]}
    body = {"type": "http.response.body", "body": b'{"ok": true}'}
    request = {"type": "http.request", "body": BODY, "more_body": False}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(start)
        await send(body)

    async def receive() -> dict[str, Any]:
        return request

    async def send(message: Any) -> None:
        return None

    def scope(headers: list[Any]) -> dict[str, Any]:
        return {
            "type": "http", "method": "POST", "path": "/api/orders", "raw_path": b"/api/orders",
            "query_string": b"", "headers": headers, "scheme": "http",
            "server": ("shop.example", 80), "client": ("10.0.0.7", 50000),
        }  # fmt: skip

    captured = ShadowtapMiddleware(app, settings)

    def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
        environ["wsgi.input"].read(len(BODY))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"ok": true}']

    def environ(headers: list[Any]) -> dict[str, Any]:
        out = {
            "REQUEST_METHOD": "POST", "PATH_INFO": "/api/orders", "QUERY_STRING": "",
            "SERVER_NAME": "shop.example", "SERVER_PORT": "80", "wsgi.url_scheme": "http",
            "REMOTE_ADDR": "10.0.0.7", "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(BODY)),
        }  # fmt: skip
        for key, value in headers:
            name = key.decode().upper().replace("-", "_")
            if name not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                out["HTTP_" + name] = value.decode()
        return out

    wsgi_captured = ShadowtapWSGIMiddleware(wsgi_app, settings)

    def wsgi_call(target: Any, headers: list[Any]) -> Callable[[], object]:
        import io

        env = environ(headers)

        def call() -> object:
            env["wsgi.input"] = io.BytesIO(BODY)
            return b"".join(target(env, lambda status, headers, exc_info=None: None))

        return call

    plain, signed = scope(HEADERS), scope(marked)
    cases: dict[str, Callable[[], object]] = {
        "asgi bare": lambda: _drive(app(dict(plain), receive, send)),
        "asgi unmarked": lambda: _drive(captured(dict(plain), receive, send)),
        "asgi signed": lambda: _drive(captured(dict(signed), receive, send)),
        "wsgi bare": wsgi_call(wsgi_app, HEADERS),
        "wsgi unmarked": wsgi_call(wsgi_captured, HEADERS),
        "wsgi signed": wsgi_call(wsgi_captured, marked),
    }
    return _best_us(cases, calls, passes)


def _run_tree(tree: Path, calls: int, passes: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, str(ROOT / "bench" / "capture_inprocess.py"), "--worker",
               "--calls", str(calls), "--passes", str(passes)]  # fmt: skip
    out = subprocess.run(command, env=env, cwd=tree, capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout.splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, help="another checkout to compare against")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=5_000)
    parser.add_argument("--passes", type=int, default=3, help="timed passes per round")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.calls, args.passes)))
        return
    trees = {"this": ROOT} | ({"before": args.before.resolve()} if args.before else {})
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for turn in range(args.rounds):
        order = list(trees) if turn % 2 == 0 else list(reversed(trees))
        for name in order:
            runs[name].append(_run_tree(trees[name], args.calls, args.passes))
    print(f"python {sys.version.split()[0]}, {args.rounds} rounds × {args.calls} calls")
    print(f"{'tree':<8}{'case':<16}{'bare µs':>9}{'captured µs':>13}{'added µs':>10}{'ratio':>7}")
    figures: dict[str, dict[str, dict[str, float]]] = {}
    for name, rounds in runs.items():
        figures[name] = {}
        for server in ("asgi", "wsgi"):
            for case in ("unmarked", "signed"):
                bare = statistics.median(r[f"{server} bare"] for r in rounds)
                took = statistics.median(r[f"{server} {case}"] for r in rounds)
                added = statistics.median(
                    r[f"{server} {case}"] - r[f"{server} bare"] for r in rounds
                )
                figures[name][f"{server} {case}"] = {"bare": bare, "captured": took, "added": added}
                label = f"{server} {case}"
                figures_line = f"{bare:>9.2f}{took:>13.2f}{added:>10.2f}{bare / took:>7.3f}"
                print(f"{name:<8}{label:<16}{figures_line}")
    if "before" in figures:
        print("added µs, this tree against --before (same run):")
        for case, this in figures["this"].items():
            before = figures["before"][case]["added"]
            change = this["added"] - before
            print(f"   {case:<16}{before:>8.2f} -> {this['added']:>6.2f}  ({change:+.2f})")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
