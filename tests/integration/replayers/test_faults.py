"""Targets that refuse, hang, fail, reset or crawl; commits wait for delivery."""

from __future__ import annotations

import time
from collections.abc import Callable

from shadowtap.config import Settings
from tests.integration.replayers.conftest import (
    Reader,
    TargetServer,
    ThreadWorker,
    committed,
    envelopes,
    free_port,
    produce,
    with_replayer,
)


def _dlq_reasons(r: Reader) -> list[str]:
    return sorted(dict(m.headers())["shadowtap-dlq-reason"].decode() for m in r.messages)


def test_nothing_is_committed_while_the_target_has_not_answered(
    rsettings: Settings,
    target: TargetServer,
    thread_worker: Callable[[Settings], ThreadWorker],
    reader: Callable[[str], Reader],
) -> None:
    s = with_replayer(rsettings, target=target.url, timeout_s=60)
    target.mode = "hang"
    produce(s, list(envelopes(6)))
    thread_worker(s)
    deadline = time.monotonic() + 30
    while len(target.seen) < 6:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1.0)  # five commit intervals
    assert all(o < 0 for o in committed(s, s.replayer.group).values())
    target.release()
    out = reader(s.topics.results)
    out.until(lambda r: len(r.messages) >= 6)
    deadline = time.monotonic() + 20
    while sum(max(0, o) for o in committed(s, s.replayer.group).values()) < 6:
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_refused_connections_go_to_the_dlq_after_connect_retry(
    rsettings: Settings,
    thread_worker: Callable[[Settings], ThreadWorker],
    reader: Callable[[str], Reader],
) -> None:
    s = with_replayer(
        rsettings, target=f"http://127.0.0.1:{free_port()}", connect_retry_s=0.5, retries=0
    )
    records = envelopes(4)
    produce(s, list(records))
    thread_worker(s)
    dlq = reader(s.topics.dlq)
    dlq.until(lambda r: len(r.messages) >= 4)
    assert _dlq_reasons(dlq) == ["connect"] * 4
    headers = dict(dlq.messages[0].headers())
    assert b"Connect" in headers["shadowtap-dlq-error"]
    assert int(headers["shadowtap-dlq-attempts"]) > 1
    res = reader(s.topics.results)
    res.until(lambda r: len(r.messages) >= 4)
    assert {(r.status, r.error_kind) for r in res.results()} == {(None, "connect")}


def test_a_target_that_is_down_builds_lag_and_catches_up_when_it_returns(
    rsettings: Settings,
    late_target: Callable[[int], TargetServer],
    thread_worker: Callable[[Settings], ThreadWorker],
    reader: Callable[[str], Reader],
) -> None:
    port = free_port()
    s = with_replayer(
        rsettings,
        target=f"http://127.0.0.1:{port}",
        connect_retry_s=120,
        backoff_max_s=0.3,
        max_in_flight=4,
        max_buffered=12,
    )
    records = envelopes(150)
    produce(s, list(records))
    worker = thread_worker(s)
    peak = 0
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        peak = max(peak, worker.replayer._buffered)
        time.sleep(0.01)
    assert 0 < peak <= 12  # memory stays bounded: the partitions are paused
    assert all(o < 0 for o in committed(s, s.replayer.group).values())
    server = late_target(port)
    out = reader(s.topics.results)
    out.until(lambda r: len(r.messages) >= 150, limit_s=60)
    assert {r.status for r in out.results()} == {200}
    assert set(server.ids()) == {e.id for e in records}
    assert peak <= 12 and worker.replayer._buffered <= 12


def test_hanging_failing_and_resetting_targets(
    rsettings: Settings,
    target: TargetServer,
    thread_worker: Callable[[Settings], ThreadWorker],
    reader: Callable[[str], Reader],
) -> None:
    s = with_replayer(
        rsettings,
        target=target.url,
        timeout_s=0.5,
        retries=2,
        retry_statuses=(503,),
        backoff_base_s=0.01,
    )
    res = reader(s.topics.results)
    dlq = reader(s.topics.dlq)
    thread_worker(s)
    expected = {"hang": "timeout", "status:503": "status-503", "reset": "disconnected"}
    for n, (mode, reason) in enumerate(expected.items(), start=1):
        target.mode = mode
        produce(s, list(envelopes(1)))
        dlq.until(lambda r, n=n: len(r.messages) >= n, why=mode)
        assert dict(dlq.messages[-1].headers())["shadowtap-dlq-reason"].decode() == reason
        assert dict(dlq.messages[-1].headers())["shadowtap-dlq-attempts"] == b"3"
    # A 500 is not in retry_statuses: it is the target's answer, recorded once, no DLQ.
    target.mode = "status:500"
    one = envelopes(1)
    produce(s, list(one))
    res.until(lambda r: any(x.id == one[0].id for x in r.results()))
    result = next(x for x in res.results() if x.id == one[0].id)
    assert (result.status, result.attempts, result.error_kind) == (500, 1, "")
    dlq.drain(0.5)
    assert len(dlq.messages) == 3
    assert {r.error_kind for r in res.results() if r.status is None} == {"timeout", "disconnected"}
