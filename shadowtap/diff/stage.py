"""The diff's step, with no Kafka client: a result in, the records it pairs compared.

Both shells drive it: ``shadowtap diff run`` (shadowtap.diff.consumer, one process over a
time window) and ``shadowtap diff serve`` (shadowtap.diff.worker, a Faust agent in as many
processes as wanted)::

    stage = DiffStage(DiffRun(rules, Roles("v1-a", "v2", "v1-b")), ("v1-a", "v1-b", "v2"),
                      grace_ms=60_000, store=table)     # store: a dict, or a Faust table
    mismatches = stage.offer(value, partition)          # each result as on the wire
    stage.release([3, 4])                               # partitions another worker now owns
    summary = stage.summary(goals=["mismatch<=0.5%"])

Each result is decoded (shadowtap.diff.sides) and paired by record id on capture time with
a grace period (shadowtap.diff.pairing, one Pairing per partition: a record's results share
its partition, as they are keyed by its id). The pairing keeps each result as its wire text,
so a Faust table can hold it; it is decoded again when its record is compared. A result
that cannot be read is counted and logged, never compared; one of a target the diff does
not name is skipped. Mismatches are the samples the run took (at most ``Limits.samples`` per
endpoint, field and view), for ``topics.diffs`` (:func:`mismatch_record`), with no value of
a header scrubbed as a secret.

Metrics (shadowtap.diff.stage.DiffMetrics): ``shadowtap_diff_results_total{target}``,
``shadowtap_diff_redeliveries_total{target}``, ``shadowtap_diff_records_total{outcome}``
(paired, unpaired), ``shadowtap_diff_bad_results_total``, ``shadowtap_diff_mismatches_total
{view}`` (samples written), ``shadowtap_diff_pending`` (records waiting for a target).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, MutableMapping, Sequence
from typing import Any

import orjson

from shadowtap import results
from shadowtap.diff.model import Record
from shadowtap.diff.pairing import Group, Pairing
from shadowtap.diff.run import DiffRun, Mismatch
from shadowtap.diff.sides import answer
from shadowtap.diff.summary import Summary
from shadowtap.errors import EnvelopeError

log = logging.getLogger("shadowtap.diff")

VERSION = 1


class DiffMetrics:
    """The diff's series in their own registry."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.registry = r = CollectorRegistry()
        self.results = Counter("shadowtap_diff_results", "Results read", ["target"], registry=r)
        self.redeliveries = Counter(
            "shadowtap_diff_redeliveries",
            "Results after the first for a record and target",
            ["target"],
            registry=r,
        )
        self.records = Counter(
            "shadowtap_diff_records", "Records compared", ["outcome"], registry=r
        )
        self.bad = Counter("shadowtap_diff_bad_results", "Results not readable", registry=r)
        self.mismatches = Counter(
            "shadowtap_diff_mismatches", "Mismatch samples written", ["view"], registry=r
        )
        self.pending = Gauge(
            "shadowtap_diff_pending", "Records waiting for a target's result", registry=r
        )

    def serve(self, port: int) -> None:
        from prometheus_client import start_http_server

        start_http_server(port, registry=self.registry)


def mismatch_record(mismatch: Mismatch, secret_headers: frozenset[str] = frozenset()) -> bytes:
    """The value written to ``topics.diffs`` for one sampled mismatch."""
    sample = mismatch.sample
    secret = mismatch.field.startswith("header:") and mismatch.field[7:] in secret_headers
    return orjson.dumps(
        {
            "v": VERSION,
            "view": mismatch.view,
            "endpoint": mismatch.endpoint,
            "field": mismatch.field,
            "id": sample.id,
            "method": sample.method,
            "path": sample.path,
            "where": sample.where,
            "kind": sample.kind,
            "a": None if secret else sample.a,
            "b": None if secret else sample.b,
            "noise": sample.noise,
        },
        default=str,
    )


def record_of(group: Group[str]) -> Record:
    """The record a group of results (wire text by target) stands for."""
    answers = {target: answer(results.decode(text)) for target, text in group.payloads.items()}
    first = next(iter(answers.values()))
    production = next((a.production for a in answers.values() if a.production), None)
    return Record(first.request, {t: a.side for t, a in answers.items()}, production)


class DiffStage:
    """Pairs results per partition and feeds a DiffRun; bounded by ``max_pending`` each."""

    def __init__(
        self,
        run: DiffRun,
        targets: Sequence[str],
        *,
        grace_ms: int = 60_000,
        max_pending: int = 200_000,
        store: MutableMapping[str, Any] | None = None,
        metrics: DiffMetrics | None = None,
    ) -> None:
        if not targets:
            raise ValueError("the diff needs at least one target")
        self.diff_run = run
        self.targets = tuple(targets)
        self.grace_ms = grace_ms
        self.max_pending = max_pending
        self.store: MutableMapping[str, Any] = {} if store is None else store
        self.metrics = metrics
        self.redeliveries: Counter[str] = Counter()
        self.bad = 0
        self.read = 0
        self.skipped = 0
        self._pairings: dict[int, Pairing[str]] = {}
        self._m_results: dict[str, Any] = {}

    def offer(self, value: bytes, partition: int = 0) -> list[Mismatch]:
        """One result record: paired, and any record it completes (or that the slowest
        target has passed by the grace period) compared."""
        self.read += 1
        try:
            got = answer(results.decode(value))
        except EnvelopeError as exc:
            self.bad += 1
            if self.metrics is not None:
                self.metrics.bad.inc()
            log.warning("skipping a result that cannot be read: %s", exc)
            return []
        target = got.target
        if target not in self.targets:
            self.skipped += 1  # another target's result: not part of this diff
            return []
        if self.metrics is not None:
            self._result_counter(target).inc()
        pairing = self.pairing(partition)
        before = pairing.redeliveries[target]
        done = pairing.offer(got.request.id, got.request.ts, target, value.decode())
        if pairing.redeliveries[target] > before:
            self.redeliveries[target] += 1
            if self.metrics is not None:
                self.metrics.redeliveries.labels(target).inc()
        return self._compare(done) + self._compare(pairing.expire())

    def pairing(self, partition: int) -> Pairing[str]:
        """The pairing of ``partition``: made, and recovered from the store, on first use."""
        found = self._pairings.get(partition)
        if found is None:
            found = self._pairings[partition] = Pairing(
                self.targets,
                grace_ms=self.grace_ms,
                max_pending=self.max_pending,
                store=self.store,
                partition=partition,
            )
            waiting = found.recover()
            if waiting:
                log.info("partition %d: %d records still waiting for a target", partition, waiting)
        return found

    def release(self, partitions: Iterable[int]) -> None:
        """Forget partitions now owned elsewhere: their entries stay in the store (a
        table's changelog), for the worker that owns them now."""
        for partition in partitions:
            self._pairings.pop(partition, None)

    def finish(self) -> list[Mismatch]:
        """The end of a run: every record still waiting is given up as unpaired."""
        out: list[Mismatch] = []
        for pairing in self._pairings.values():
            out.extend(self._compare(pairing.flush()))
        return out

    @property
    def pending(self) -> int:
        """Records waiting for a target, in the partitions paired here so far."""
        return sum(p.pending for p in self._pairings.values())

    def waiting(self) -> dict[int, int]:
        """Records waiting for a target, per partition paired here since its assignment (a
        partition given no result since it was recovered is not counted: it may not be
        recovered yet)."""
        return {partition: p.pending for partition, p in self._pairings.items()}

    @property
    def unpaired(self) -> int:
        return sum(p.unpaired for p in self._pairings.values())

    def summary(self, goals: Sequence[Any] = ()) -> Summary:
        return self.diff_run.summary(goals=goals, redeliveries=dict(self.redeliveries))

    def _compare(self, groups: list[Group[str]]) -> list[Mismatch]:
        out: list[Mismatch] = []
        for group in groups:
            out.extend(self.diff_run.add(record_of(group)))
            if self.metrics is not None:
                paired = all(t in group.payloads for t in self.targets)
                self.metrics.records.labels("paired" if paired else "unpaired").inc()
        if self.metrics is not None:
            self.metrics.pending.set(self.pending)
            for m in out:
                self.metrics.mismatches.labels(m.view).inc()
        return out

    def _result_counter(self, target: str) -> Any:
        counter = self._m_results.get(target)
        if counter is None and self.metrics is not None:
            counter = self._m_results[target] = self.metrics.results.labels(target)
        return counter


def secret_headers(scrub_headers: Iterable[str]) -> frozenset[str]:
    """Header names whose values never go to ``topics.diffs``."""
    return frozenset(h.lower() for h in scrub_headers)
