"""The mirrored state reaches tasks and threads a mirrored request starts, and no further."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from shadowtap.guard import mirrored_request_id

from .conftest import make_guard, mirrored


def _in_thread(target_run: type[threading.Thread] = threading.Thread) -> str | None:
    seen: list[str | None] = []
    thread = target_run(target=lambda: seen.append(mirrored_request_id()))
    thread.start()
    thread.join()
    return seen[0]


class _Worker(threading.Thread):
    def __init__(self) -> None:
        super().__init__()
        self.seen: str | None = "unset"

    def run(self) -> None:
        self.seen = mirrored_request_id()


def test_threads_started_by_a_mirrored_request_are_mirrored() -> None:
    guard = make_guard()
    with mirrored(guard, "rid-t"):
        assert _in_thread() == "rid-t"
        worker = _Worker()
        worker.start()
        worker.join()
        assert worker.seen == "rid-t"
        seen: list[str | None] = []
        timer = threading.Timer(0, lambda: seen.append(mirrored_request_id()))
        timer.start()
        timer.join()
        assert seen == ["rid-t"]
    assert _in_thread() is None


def test_executors_run_work_in_the_submitters_state() -> None:
    guard = make_guard()
    with ThreadPoolExecutor(max_workers=1) as pool:
        with mirrored(guard, "rid-p"):
            # the pool's only worker thread starts here, inside a mirrored request
            assert pool.submit(mirrored_request_id).result() == "rid-p"
        # ... and must not treat later, ordinary work as mirrored
        assert pool.submit(mirrored_request_id).result() is None
        with mirrored(guard, "rid-q"):
            assert pool.submit(mirrored_request_id).result() == "rid-q"


def test_asyncio_tasks_to_thread_and_run_in_executor_are_mirrored() -> None:
    guard = make_guard()

    async def main() -> list[str | None]:
        loop = asyncio.get_running_loop()
        with mirrored(guard, "rid-a"):
            inside = [
                await asyncio.create_task(asyncio.sleep(0, result=mirrored_request_id())),
                await asyncio.to_thread(mirrored_request_id),
                await loop.run_in_executor(None, mirrored_request_id),
            ]
        outside = [
            await asyncio.to_thread(mirrored_request_id),
            await loop.run_in_executor(None, mirrored_request_id),
        ]
        return inside + outside

    assert asyncio.run(main()) == ["rid-a", "rid-a", "rid-a", None, None]
