"""Every use of Faust's, aiokafka's and mode's private names, in one place, and why.

The Faust workers (the processor: 1 to 4; the diff: 3 to 5) need five things faust-streaming
has no public API for. Each is done here and nowhere else; each has a test against the
installed classes (tests/unit/test_faust_internals.py) that fails when Faust changes the
behaviour it relies on. Importing this module refuses library versions that were not tested
(``TESTED``): a new release can change any of it without notice, and what is at stake is
at-least-once delivery.

1. ``commit_watermarks(consumer, position)``: Faust's consumer commits, per partition, what
   ``Consumer._new_offset(tp)`` computes from its private ack books ``_acked`` and
   ``_acked_index``. That reckoning steps over a one-record hole (see
   shadowtap.processors.offsets), so ``_new_offset`` is replaced by the processor's own
   watermark, and Faust's books are emptied at each commit so that they do not grow.
2. ``commit_now(consumer, offsets)``: commit given offsets at once, through the transport's
   ``Consumer._commit``. aiokafka has no cooperative rebalancing: every rebalance revokes
   every partition, and each starts again at the group's committed offset. The processor
   commits what it finished when partitions are revoked, but by then Faust has dropped
   them from ``_acked``, so its public ``commit()`` would commit nothing for them. A commit
   the group refuses (the member was already replaced) returns False, as Faust's own does.
3. ``divert_table_writes(producer, topic, send)``: a Faust table queues each changelog
   write in ``producer.buffer`` (``ProducerBuffer.put`` of a ``FutureMessage``, already
   serialized and partitioned) for aiokafka to send later, unacknowledged by anything the
   processor could wait for. Writes to ``topic`` are taken from there and handed to
   ``send``, so a batch's dedup memory is acknowledged with its output.
4. ``quiet_worker(worker)``: Faust's Worker, at a log level of WARNING or above, turns the
   root logger to DEBUG for its start-up spinner (``Worker.on_setup_root_logger``), so
   every debug line of aiokafka builds a record: ~10 % of the worker. No spinner, no DEBUG.
5. ``flush_also(producer, flush)``: before Faust commits offsets it awaits
   ``app.producer.flush()`` (``Consumer._commit_offsets``), so that table changelog writes
   are in Kafka before the offsets of the events that made them. Writes diverted to another
   producer (3.) must be flushed then too: ``flush`` is awaited after Faust's own, and an
   error it raises keeps the offsets from being committed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from importlib import metadata
from typing import Any

from shadowtap.errors import DependencyError

log = logging.getLogger(__name__)

# The versions this module and its tests were run against: pinned in pyproject.toml.
TESTED = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0", "mode-streaming": "0.7.1"}
# Set to 1 to run against other versions anyway (to try a new release with the tests).
ALLOW_UNTESTED = "SHADOWTAP_ALLOW_UNTESTED_FAUST"


def untested_versions() -> dict[str, tuple[str | None, str]]:
    """``{distribution: (installed, tested)}`` for each one that differs from ``TESTED``."""
    found: dict[str, tuple[str | None, str]] = {}
    for name, tested in TESTED.items():
        try:
            installed: str | None = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != tested:
            found[name] = (installed, tested)
    return found


def require_tested_versions() -> None:
    """Raise DependencyError unless the tested faust-streaming, aiokafka and mode are installed."""
    wrong = untested_versions()
    if not wrong:
        return
    listed = ", ".join(f"{n} {i or 'not installed'} (tested: {t})" for n, (i, t) in wrong.items())
    if os.environ.get(ALLOW_UNTESTED) == "1":
        log.warning("running with untested versions (%s=1): %s", ALLOW_UNTESTED, listed)
        return
    pins = " ".join(f"'{n}=={t}'" for n, (_, t) in wrong.items())
    raise DependencyError(
        f"the processor reaches into Faust's internals and was tested only with other "
        f"versions: {listed}. Install the tested ones (pip install {pins}), or to try these "
        f"anyway set {ALLOW_UNTESTED}=1 and first run "
        "tests/unit/test_faust_internals.py"
    )


require_tested_versions()


def commit_watermarks(consumer: Any, position: Callable[[str, int], int | None]) -> None:
    """Make Faust's consumer commit ``position(topic, partition)`` instead of its own reckoning.

    Faust asks ``_new_offset(tp)`` for every partition with acks on each commit (None: do not
    commit it); its ack books are emptied then, as its own ``_new_offset`` would.
    """

    def new_offset(tp: Any) -> int | None:
        consumer._acked[tp].clear()
        consumer._acked_index[tp].clear()
        return position(tp.topic, tp.partition)

    consumer._new_offset = new_offset


async def commit_now(consumer: Any, offsets: Mapping[Any, int]) -> bool:
    """Commit ``{TP: offset}`` now, for partitions still assigned; False if the group refused."""
    if not offsets:
        return False
    done: bool = await consumer._commit(dict(offsets))
    return done


def divert_table_writes(producer: Any, topic: str, send: Callable[..., None]) -> None:
    """Hand writes to ``topic`` queued in Faust's producer buffer to ``send`` instead.

    ``send(topic, key, value, headers, partition=...)`` gets the serialized message. Faust's
    future for it is never resolved: nothing waits on it (the memory store keeps no persisted
    offsets). Other topics are queued as before.
    """
    buffer = producer.buffer
    put = buffer.put

    def put_diverted(fut: Any) -> None:
        m = fut.message
        if m.channel.get_topic_name() != topic:
            put(fut)
            return
        send(topic, m.key, m.value, m.headers or None, partition=m.partition)

    buffer.put = put_diverted


def flush_also(producer: Any, flush: Callable[[], Awaitable[None]]) -> None:
    """Make ``producer.flush()`` (awaited by Faust before each commit) await ``flush`` too."""
    own = producer.flush

    async def flush_both() -> None:
        await own()
        await flush()

    producer.flush = flush_both


def quiet_worker(worker: Any) -> None:
    """Keep Faust's start-up spinner from turning the root logger to DEBUG."""
    worker.spinner = None
