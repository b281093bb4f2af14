"""The DLQ read and redriven on the real broker, without workers: selection, lookup, and a
redrive stopped half-way that the next run finishes without sending anything twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from shadowtap import dlq
from shadowtap.clock import parse_since
from shadowtap.config import Settings
from shadowtap.deadletters import Selection, find, letters, markers
from shadowtap.envelope import Envelope, encode
from shadowtap.kafka import create_topics, make_producer
from shadowtap.redrive import Redrive
from shadowtap.topicscan import scan


class Killed(Exception):
    """Stands for kill -9 at one step of a redrive."""


def _dead_letters(settings: Settings, letters_: list[tuple[Envelope, dlq.DeadLetter]]) -> None:
    producer = make_producer(settings.kafka)
    for env, letter in letters_:
        producer.produce(
            settings.topics.dlq, encode(env), key=env.id.encode(), headers=dlq.headers(letter)
        )
    assert producer.flush(10) == 0


def _failed(settings: Settings, n: int, reason: str, group: str) -> list[Envelope]:
    envs = [Envelope(method="GET", path=f"/{reason}/{i}") for i in range(n)]
    letter = dlq.DeadLetter(
        dlq.REPLAYER, reason, "boom", settings.topics.mirror, 0, 0, target="t", group=group
    )
    _dead_letters(settings, [(e, letter) for e in envs])
    return envs


def _arrived(settings: Settings, topic: str) -> Counter[str]:
    """How many copies of each DLQ record the topic holds (by shadowtap-redriven-from)."""
    return Counter(
        dict(m.headers())[dlq.REDRIVEN_FROM].decode() for m in scan(settings.kafka, topic)
    )


def _kill(monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    def killed(*_: object) -> None:
        raise Killed(step)

    monkeypatch.setattr(Redrive, step, killed)


@pytest.mark.parametrize(
    ("killed_at", "found_after"),
    [
        ("_mark_done", 2),  # the first batch's records arrived; their markers say "sending"
        ("_send_records", 0),  # only "sending" markers were written
    ],
)
def test_a_redrive_killed_half_way_is_finished_by_the_next_without_duplicates(
    settings: Settings,
    unique_name: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
    killed_at: str,
    found_after: int,
) -> None:
    create_topics(settings)
    group = unique_name("g")
    _failed(settings, 5, "connect", group)
    retry = settings.topics.retry(group)
    selection = Selection(reasons=frozenset({"connect"}))

    with monkeypatch.context() as m:
        _kill(m, killed_at)
        with pytest.raises(Killed):
            Redrive(settings, selection, execute=True, batch=2).run()
    assert Counter(x.state for x in markers(settings).values()) == {"sending": 2}

    report = Redrive(settings, selection, execute=True, batch=2).run()
    assert (report.arrived, report.already, report.sent) == (
        found_after,
        found_after,
        5 - found_after,
    )
    copies = _arrived(settings, retry)
    assert len(copies) == 5 and set(copies.values()) == {1}
    assert Counter(x.state for x in markers(settings).values()) == {"done": 5}

    last = Redrive(settings, selection, execute=True).run()
    assert (last.sent, last.already) == (0, 5)
    assert sum(_arrived(settings, retry).values()) == 5


def test_selection_lookup_and_what_cannot_be_redriven(
    settings: Settings, unique_name: Callable[[str], str]
) -> None:
    create_topics(settings)
    assert markers(settings) == {}
    group = unique_name("g")
    timeouts = _failed(settings, 2, "timeout", group)
    _failed(settings, 1, "timeout", "")  # a replayer record without its group
    stray = Envelope(method="GET", path="/stray")
    _dead_letters(settings, [(stray, dlq.DeadLetter("", "odd", "", "elsewhere", 0, 1))])

    found = list(letters(settings))
    assert len(found) == 4
    only = Selection(reasons=frozenset({"timeout"}), group=group)
    assert sorted(x.record_id for x in found if only.matches(x)) == sorted(e.id for e in timeouts)
    assert not [x for x in found if Selection(since_ms=parse_since("2999-01-01")).matches(x)]
    assert len(list(letters(settings, since_ms=parse_since("1h")))) == 4

    [by_id] = find(settings, timeouts[0].id)
    [by_ref] = find(settings, by_id.ref)
    assert by_ref.coordinates == by_id.coordinates and by_ref.why.group == group
    assert find(settings, "0:999999") == [] and find(settings, "no-such-id") == []

    report = Redrive(settings, Selection(reasons=frozenset({"timeout", "odd"})), execute=True).run()
    assert report.sent == 2
    assert dict(report.not_redrivable) == {
        ("replayer", "timeout", "no replayer group in its headers"): 1,
        ("", "odd", "no stage in its headers"): 1,
    }
    assert any(f"{settings.topics.retry(group)} did not exist" in w for w in report.warnings)
