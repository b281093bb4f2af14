"""Commit positions never move past a record the agent did not finish."""

from __future__ import annotations

from shadowtap.processors.offsets import Watermarks

TP = ("captured", 0)


def test_position_moves_over_finished_records_only() -> None:
    marks = Watermarks()
    marks.start(TP, 100)
    for offset in (100, 101, 102, 103):
        assert marks.see(TP, offset) is None
    marks.finish(TP, 101)
    marks.finish(TP, 103)
    assert marks.position(TP) == 100  # 100 is still in flight
    marks.finish(TP, 100)
    assert marks.position(TP) == 102
    marks.finish(TP, 102)
    assert marks.position(TP) == 104


def test_a_jump_is_a_hole_and_the_position_waits_for_it() -> None:
    # Faust's own reckoning would commit 102 here: a one-record hole at the head passes it.
    marks = Watermarks()
    marks.start(TP, 100)
    assert marks.see(TP, 101) == (100, 101)
    marks.finish(TP, 101)
    assert marks.position(TP) == 100
    marks.finish(TP, 100)  # read back and processed
    assert marks.position(TP) == 102


def test_a_hole_in_the_middle() -> None:
    marks = Watermarks()
    marks.start(TP, 0)
    assert marks.see(TP, 0) is None
    assert marks.see(TP, 5) == (1, 5)
    assert marks.see(TP, 6) is None


def test_redelivered_records_are_neither_holes_nor_progress() -> None:
    marks = Watermarks()
    marks.start(TP, 10)
    assert marks.see(TP, 10) is None
    assert marks.see(TP, 11) is None
    assert marks.see(TP, 10) is None  # Faust sought back: not a hole
    assert marks.see(TP, 12) is None
    marks.finish(TP, 10)
    marks.finish(TP, 10)
    assert marks.position(TP) == 11


def test_reset_forgets_every_partition() -> None:
    marks = Watermarks()
    marks.start(TP, 7)
    marks.finish(TP, 7)
    marks.reset()
    assert not marks.knows(TP)
    assert marks.position(TP) is None
    marks.finish(TP, 8)  # a record of a partition no longer followed: ignored
    assert marks.position(TP) is None


def test_finished_records_are_known_as_such() -> None:
    marks = Watermarks()
    assert not marks.finished(TP, 0)  # a partition not followed
    marks.start(TP, 10)  # everything before 10 is finished
    assert marks.finished(TP, 9) and not marks.finished(TP, 10)
    for offset in (10, 11):
        marks.see(TP, offset)
    marks.finish(TP, 11)
    assert marks.finished(TP, 11) and not marks.finished(TP, 10)
