"""Scrubbing in other processes: the expensive half of the pipeline on more than one core.

Scrub → route → encode is ~85 % of a record's CPU (Presidio's recognizers, phonenumbers, HMAC
pseudonyms), all of it holding the GIL, so threads cannot share it out. With
``processor.scrub_processes`` = N > 0 the worker keeps decode → filter → sample → dedup (the
dedup memory is its Faust table) and hands chunks of records to N processes that run
``Pipeline.back``; a chunk's outcomes come back in order::

    pool = ScrubPool(settings)                  # N spawned processes, each with its Pipeline
    outcomes = await pool.scrub([(value, env.meta, timings), ...])

A process that dies fails the chunks in flight (``BrokenProcessPool``), and the agent reads
their batch again; the pool is replaced. Each process exits when the worker is gone, even
after a kill -9.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from shadowtap.config import Settings
from shadowtap.envelope import decode
from shadowtap.errors import ConfigError
from shadowtap.processors.pipeline import Outcome, Pipeline

Item = tuple[bytes, dict[str, Any], dict[str, float]]  # record value, meta after front, timings

log = logging.getLogger(__name__)

_pipeline: Pipeline | None = None  # a scrubber process's own


class ScrubPool:
    """``scrub_processes`` processes, each running ``Pipeline.back`` on chunks of records."""

    def __init__(self, settings: Settings) -> None:
        n = settings.processor.scrub_processes
        if n < 1:
            raise ConfigError(
                f"setting 'processor.scrub_processes' = {n} is invalid: expected 0 (scrub in "
                "the worker's own process) or a number of processes"
            )
        self.size = n
        self._settings = settings
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        # spawn, not fork: the worker already runs librdkafka's and aiokafka's threads
        return ProcessPoolExecutor(
            self.size,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_process,
            initargs=(self._settings, os.getpid()),
        )

    async def ready(self) -> None:
        """Start every process and wait until they take work (Presidio loads in seconds)."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(loop.run_in_executor(self._pool, time.sleep, 0.2) for _ in range(self.size))
        )

    async def scrub(self, items: list[Item]) -> list[Outcome]:
        """The outcomes of ``items``, in order; raises BrokenProcessPool if a process died."""
        pool = self._pool
        try:
            return await asyncio.wrap_future(pool.submit(_back, items))
        except BrokenProcessPool:
            if pool is self._pool:  # the first to find it broken starts a new one
                log.error("a scrubber process died: starting a new pool of %d", self.size)
                self._pool = self._start()
                pool.shutdown(wait=False, cancel_futures=True)
            raise

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _start_process(settings: Settings, parent: int) -> None:
    global _pipeline
    # Ctrl-C or a SIGTERM to the whole process group is the worker's to handle: it shuts the
    # pool down after its last batch, rather than find its scrubbers gone mid-batch.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _pipeline = Pipeline(settings)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    # A SIGKILLed worker cannot shut its pool down: its processes notice they were orphaned.
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _back(items: list[Item]) -> list[Outcome]:
    assert _pipeline is not None
    out = []
    for value, meta, timings in items:
        try:
            env = decode(value)  # the worker decoded it already: this cannot fail but for a bug
        except Exception as exc:
            out.append(Outcome("dlq", "internal-error", error=repr(exc), timings=timings))
            continue
        env.meta = meta
        out.append(_pipeline.back(env, timings))
    return out
