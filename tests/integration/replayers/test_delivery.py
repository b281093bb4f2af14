"""A replayer in a thread against a real broker and a real HTTP target."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable

import orjson

from shadowtap.config import Settings
from shadowtap.envelope import Envelope
from shadowtap.rules import RequestRule
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


def test_every_record_is_delivered_rewritten_with_a_result_and_committed(
    rsettings: Settings,
    target: TargetServer,
    thread_worker: Callable[[Settings], ThreadWorker],
    reader: Callable[[str], Reader],
) -> None:
    s = with_replayer(rsettings, target=target.url + "/shadow", target_name="staging")
    records = envelopes(60)
    records[0].headers = [("Connection", "close, X-Secret"), ("X-Secret", "1"), ("Accept", "*/*")]
    produce(s, list(records))
    worker = thread_worker(s)
    out = reader(s.topics.results)
    out.until(lambda r: len(r.messages) >= 60)
    got = {r.id: r for r in out.results()}
    assert set(got) == {e.id for e in records}
    assert {r.status for r in got.values()} == {200}
    assert all(r.target == "staging" and r.body == b"ok" for r in got.values())
    assert ["X-Target", "yes"] in [list(h) for h in got[records[0].id].headers]

    seen = {s_.headers["X-Shadowtap-Id"]: s_ for s_ in target.seen}
    first = seen[records[0].id]
    assert first.path == "/shadow/api/items/0"
    assert first.headers["Idempotency-Key"] == records[0].id
    assert first.headers["X-Mirrored-From"] == "shop.example"
    assert first.headers["Host"] == f"127.0.0.1:{target.port}"
    assert first.body == b'{"n":0}'
    assert "X-Secret" not in first.headers

    # Committed offsets reach the end of every partition once all results are acknowledged.
    deadline = time.monotonic() + 20
    while sum(max(0, o) for o in committed(s, s.replayer.group).values()) < 60:
        assert time.monotonic() < deadline, committed(s, s.replayer.group)
        time.sleep(0.2)
    worker.stop()
    assert worker.error is None


def test_same_key_in_order_and_denied_paths_never_sent(
    rsettings: Settings,
    target: TargetServer,
    thread_worker: Callable[[Settings], ThreadWorker],
    reader: Callable[[str], Reader],
) -> None:
    s = with_replayer(
        rsettings,
        target=target.url,
        deny=(RequestRule(path="/payments*", methods=("POST",)),),
        max_in_flight=16,
    )
    sessions = 4
    records = [
        Envelope(method="POST", path=f"/api/s{i % sessions}", body=b"%d" % i, host="h")
        for i in range(200)
    ]
    payments = [Envelope(method="POST", path="/payments/1", host="h") for _ in range(5)]
    all_records = records + payments
    produce(s, list(all_records), key=lambda i: b"session-%d" % (i % sessions))
    thread_worker(s)
    out = reader(s.topics.results)
    out.until(lambda r: len(r.messages) >= len(all_records))
    blocked = [r for r in out.results() if r.error_kind == "blocked"]
    assert {r.id for r in blocked} == {e.id for e in payments}
    assert not [x for x in target.seen if x.path.startswith("/payments")]
    # Per session key, the target saw the requests in the order they were produced.
    for k in range(sessions):
        sent = [int(x.body) for x in target.seen if x.path == f"/api/s{k}"]
        assert sent == sorted(sent) and len(sent) == 50


def test_undecodable_record_goes_to_dlq_and_the_rest_flows(
    rsettings: Settings,
    target: TargetServer,
    thread_worker: Callable[[Settings], ThreadWorker],
    reader: Callable[[str], Reader],
) -> None:
    s = with_replayer(rsettings, target=target.url)
    good = envelopes(5)
    bad = [b"not json at all", orjson.dumps({"v": 9, "id": "x"})]
    produce(s, [*good[:2], *bad, *good[2:]])
    thread_worker(s)
    dlq = reader(s.topics.dlq)
    dlq.until(lambda r: len(r.messages) >= 2)
    reasons = sorted(dict(m.headers())["shadowtap-dlq-reason"].decode() for m in dlq.messages)
    assert reasons == ["not-json", "unsupported-version"]
    assert sorted(m.value() for m in dlq.messages) == sorted(bad)
    res = reader(s.topics.results)
    res.until(lambda r: len(r.messages) >= 5)
    assert {r.id for r in res.results()} == {e.id for e in good}


def test_prometheus_metrics_on_the_metrics_port(
    rsettings: Settings,
    target: TargetServer,
    thread_worker: Callable[[Settings], ThreadWorker],
    reader: Callable[[str], Reader],
) -> None:
    port = free_port()
    s = with_replayer(
        rsettings, target=target.url, target_name="stg", metrics_port=port, connect_retry_s=0
    )
    produce(s, [*envelopes(10), b"garbage"])
    thread_worker(s)
    out = reader(s.topics.results)
    out.until(lambda r: len(r.messages) >= 10)

    def scrape() -> dict[str, float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        return {
            name: float(value)
            for name, _, value in (
                line.rpartition(" ") for line in text.splitlines() if not line.startswith("#")
            )
            if name
        }

    deadline = time.monotonic() + 20
    while True:
        m = scrape()
        lag = [k for k in m if k.startswith("shadowtap_replayer_lag{")]
        if lag or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert m['shadowtap_replayer_delivered_total{status="2xx",target="stg"}'] == 10
    assert m['shadowtap_replayer_failed_total{reason="not-json",target="stg"}'] == 1
    assert m['shadowtap_replayer_latency_seconds_count{target="stg"}'] == 10
    assert m['shadowtap_replayer_in_flight{target="stg"}'] == 0
    assert m["shadowtap_replayer_commits_total"] >= 1
    assert lag, "no lag gauge after 20 s"


def test_paced_replay_keeps_every_record_in_order_per_key_and_commits_them(
    rsettings: Settings,
    target: TargetServer,
    thread_worker: Callable[[Settings], ThreadWorker],
    reader: Callable[[str], Reader],
) -> None:
    # 300 requests recorded over 30 s, replayed at 20x: partitions get parked and released.
    s = with_replayer(rsettings, target=target.url, speed="20x")
    records = [
        Envelope(method="GET", path=f"/s{i % 5}", query=f"n={i}", host="h", ts=1_000_000 + i * 100)
        for i in range(300)
    ]
    produce(s, list(records), key=lambda i: b"session-%d" % (i % 5))
    thread_worker(s)
    out = reader(s.topics.results)
    out.until(lambda r: len(r.messages) >= 300)
    assert {r.id for r in out.results()} == {e.id for e in records}
    for k in range(5):
        sent = [int(x.query.removeprefix("n=")) for x in target.seen if x.path == f"/s{k}"]
        assert sent == sorted(sent) and len(sent) == 60
    deadline = time.monotonic() + 20
    while sum(max(0, o) for o in committed(s, s.replayer.group).values()) < 300:
        assert time.monotonic() < deadline, committed(s, s.replayer.group)
        time.sleep(0.2)


def test_incomplete_records_are_skipped_or_sent_and_their_results_say_so(
    rsettings: Settings,
    target: TargetServer,
    thread_worker: Callable[[Settings], ThreadWorker],
    reader: Callable[[str], Reader],
) -> None:
    whole, unread, truncated = envelopes(3, path="/api/body")
    unread.body, unread.body_size, unread.truncated = b"", 30, True
    unread.headers = [("Content-Length", "30")]
    unread.meta = {"request_body_skipped": "not-read"}
    truncated.body, truncated.body_size, truncated.truncated = b"", 100_000, True
    produce(rsettings, [whole, unread, truncated])
    skip = with_replayer(rsettings, target=target.url)  # the default: incomplete = "skip"
    send = with_replayer(rsettings, target=target.url, group=skip.replayer.group + "-send",
                         incomplete="send")  # fmt: skip
    thread_worker(skip)
    thread_worker(send)
    out = reader(rsettings.topics.results)
    out.until(lambda r: len(r.messages) >= 6)
    got = {(r.group, r.id): r for r in out.results()}
    for group in (skip.replayer.group, send.replayer.group):
        assert got[group, whole.id].incomplete == "" and got[group, whole.id].status == 200
    skipped = [got[skip.replayer.group, e.id] for e in (unread, truncated)]
    assert [(r.incomplete, r.error_kind, r.error, r.status) for r in skipped] == [
        ("body-unread", "blocked", "incomplete", None),
        ("truncated", "blocked", "incomplete", None),
    ]
    sent = [got[send.replayer.group, e.id] for e in (unread, truncated)]
    assert [(r.incomplete, r.status) for r in sent] == [("body-unread", 200), ("truncated", 200)]
    # The target saw each whole request twice, each incomplete one once (sent, without body).
    ids = target.ids()
    assert (ids.count(whole.id), ids.count(unread.id), ids.count(truncated.id)) == (2, 1, 1)
    assert all(s.body == b"" for s in target.seen if s.headers["X-Shadowtap-Id"] != whole.id)
