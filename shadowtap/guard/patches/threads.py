"""Carry the mirrored state into threads a mirrored request starts.

Context variables reach asyncio tasks and ``asyncio.to_thread`` by themselves, but not a
plain ``threading.Thread`` (a new thread starts with an empty context) nor
``ThreadPoolExecutor.submit`` (nor so ``loop.run_in_executor``), which run work in
long-lived worker threads. So:

- ``Thread.start`` during a mirrored request makes the thread's ``run`` mirrored too;
- ``ThreadPoolExecutor.submit`` runs each work item in the submitter's state, mirrored or
  not. That also keeps a worker thread that happened to start during a mirrored request from
  treating later, ordinary work as mirrored. Until the first mirrored request of the process
  nothing can be mirrored, and submit passes work on unwrapped.

Pools that start their threads up front and take work another way
(``multiprocessing.pool.ThreadPool``) are not covered: submit through an executor instead.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from shadowtap.guard import state
from shadowtap.guard.patches import patch


def wrap_start(start: Callable[[threading.Thread], None]) -> Callable[[threading.Thread], None]:
    @functools.wraps(start)
    def start_mirrored(self: threading.Thread) -> None:
        mirror = state.current()
        if mirror is not None:
            run = self.run

            def run_mirrored() -> None:
                state.enter(mirror)  # the thread's own, fresh context: nothing to reset
                run()

            self.run = run_mirrored  # type: ignore[method-assign]
        start(self)

    return start_mirrored


def wrap_submit(submit: Callable[..., Future[Any]]) -> Callable[..., Future[Any]]:
    @functools.wraps(submit)
    def submit_in_state(
        self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> Future[Any]:
        if not state.seen_mirrored():
            return submit(self, fn, *args, **kwargs)
        return submit(self, functools.partial(_call_in, state.current(), fn), *args, **kwargs)

    return submit_in_state


def _call_in(mirror: state.Mirror | None, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    token = state.enter(mirror)
    try:
        return fn(*args, **kwargs)
    finally:
        state.leave(token)


def install() -> None:
    patch(threading.Thread, "start", wrap_start)
    patch(ThreadPoolExecutor, "submit", wrap_submit)
