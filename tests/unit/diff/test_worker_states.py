"""What ``diff report --run`` makes of the states diff serve workers published: one summary
judged on every worker's counts, and waiting records counted only by live workers."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from shadowtap.diff import states
from shadowtap.diff.rules import Rules
from shadowtap.diff.run import DiffRun, Roles
from shadowtap.diff.stage import DiffStage
from shadowtap.errors import ConfigError
from tests.unit.diff.test_consumer import _result

ROLES = Roles("v1-a", "v2", secondary="v1-b")


def _worker(records: range, waiting: dict[int, tuple[int, int]]) -> dict[str, Any]:
    """The state a worker that compared ``records`` publishes (as read back from Kafka)."""
    stage = DiffStage(DiffRun(roles=ROLES), ROLES.names)
    for i in records:
        for target in ROLES.names:
            n: object = "1" if target == "v2" and i % 4 == 0 else 1  # a regression, 1 in 4
            stage.offer(_result(f"r{i}", target, {"n": n}, captured=i), partition=i % 3)
    first = records[0]  # delivered again:
    stage.offer(_result(f"r{first}", "v2", {"n": 1}, captured=first), partition=first % 3)
    return dict(orjson.loads(states.encode("rollout", f"rollout/w{first}", stage, waiting)))


def test_workers_counts_are_judged_together() -> None:
    one = _worker(range(0, 40), waiting={0: (3, 1_000), 1: (0, 1_000)})
    two = _worker(range(40, 100), waiting={2: (2, 1_000)})
    summary = states.merged_summary([one, two], Rules())
    totals = summary.totals
    assert (totals.records, totals.compared, totals.waiting) == (100, 100, 5)
    assert totals.redeliveries == {"v2": 2}
    regression = summary.view("regression")
    assert regression is not None
    [endpoint] = regression.endpoints
    assert endpoint.mismatched == 25 and endpoint.fields[0].verdict == "regression"


def test_each_partitions_newest_waiting_count_is_the_one_reported() -> None:
    crashed = _worker(range(0, 10), waiting={0: (7, 1_000), 1: (4, 1_000)})
    alive = _worker(range(10, 20), waiting={0: (1, 61_000)})  # took partition 0 over
    totals = states.merged_summary([crashed, alive], Rules()).totals
    # Its comparisons still count; partition 1 has had no owner since: its count stands.
    assert totals.records == 20 and totals.waiting == 1 + 4


def test_no_state_yet_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="no diff worker has published"):
        states.merged_summary([], Rules())
