"""Commit positions: only over the finished prefix of each partition."""

from __future__ import annotations

import random

from shadowtap.replayers.tracker import CommitTracker

TP = ("mirror", 0)


def test_commit_only_up_to_the_first_unfinished_offset() -> None:
    t = CommitTracker()
    for offset in (10, 11, 12, 15, 16):  # gaps: compaction, transaction markers
        t.add(TP, offset)
    assert t.to_commit() == []
    t.done(TP, 11)
    t.done(TP, 15)
    assert t.to_commit() == []
    t.done(TP, 10)
    assert t.to_commit() == [("mirror", 0, 12)]
    t.sent(t.to_commit())
    assert t.to_commit() == []
    t.done(TP, 12)
    assert t.to_commit() == [("mirror", 0, 16)]
    t.done(TP, 16)
    assert t.to_commit() == [("mirror", 0, 17)]
    assert t.pending() == 0


def test_random_completion_order_never_commits_past_an_unfinished_record() -> None:
    rng = random.Random(7)
    t = CommitTracker()
    offsets = list(range(1000))
    for o in offsets:
        t.add(TP, o)
    order = offsets[:]
    rng.shuffle(order)
    finished: set[int] = set()
    for o in order:
        t.done(TP, o)
        finished.add(o)
        commit = t.to_commit()
        if commit:
            position = commit[0][2]
            assert all(x in finished for x in range(position))
            assert position == 1000 or position not in finished
    assert t.to_commit() == [("mirror", 0, 1000)]


def test_revoked_partition_is_forgotten() -> None:
    t = CommitTracker()
    t.add(TP, 1)
    t.revoke(TP)
    assert not t.owns(TP)
    assert t.done(TP, 1) is False
    assert t.to_commit() == []


def test_partitions_are_independent_and_filterable() -> None:
    t = CommitTracker()
    other = ("mirror", 1)
    t.add(TP, 0)
    t.add(other, 5)
    t.done(other, 5)
    assert t.to_commit() == [("mirror", 1, 6)]
    assert t.to_commit(only=[TP]) == []
    assert t.pending(TP) == 1


def test_a_position_sent_is_not_the_groups_until_acknowledged() -> None:
    t = CommitTracker()
    for offset in range(5):
        t.add(TP, offset)
        t.done(TP, offset)
    t.sent(t.to_commit())  # an asynchronous commit of 5, answer still to come
    assert t.to_commit() == []  # the timer does not send it again
    # but a partition leaving now must commit it itself: the answer may be a refusal
    assert t.to_commit(unacknowledged=True) == [("mirror", 0, 5)]
    t.acknowledged([("mirror", 0, 5)])
    assert t.to_commit(unacknowledged=True) == []


def test_a_refused_position_is_sent_again() -> None:
    t = CommitTracker()
    t.add(TP, 0)
    t.done(TP, 0)
    t.sent(t.to_commit())
    t.acknowledged([("mirror", 0, 1)])
    t.add(TP, 1)
    t.done(TP, 1)
    t.sent(t.to_commit())
    t.refused([("mirror", 0, 2)])  # ILLEGAL_GENERATION: a rebalance bumped the generation
    assert t.to_commit() == [("mirror", 0, 2)]
    assert t.position(TP) == 2
    t.refused([("mirror", 0, 1)])  # an older refusal changes nothing newer
    assert t.to_commit(unacknowledged=True) == [("mirror", 0, 2)]
