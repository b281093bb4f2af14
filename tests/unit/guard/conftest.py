"""Guards built from settings, a way to run code as a mirrored request, and real sinks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from shadowtap.config import Settings
from shadowtap.guard.core import Guard
from shadowtap.guard.state import Mirror, enter, leave
from shadowtap.marking import Marker
from tests.sinks import HTTPSink, SMTPSink, sinks

KEY = "unit-test-marking-key"
marker = Marker(KEY)


def make_guard(**guard: Any) -> Guard:
    return Guard(Settings.load(env={}, overrides={"marking": {"key": KEY}, "guard": guard}))


@contextlib.contextmanager
def mirrored(guard: Guard, request_id: str = "rid-1") -> Iterator[Mirror]:
    """Run the block as a verified mirrored request would run under ``guard``."""
    mirror = Mirror(request_id, guard.policy)
    token = enter(mirror)
    try:
        yield mirror
    finally:
        leave(token)


@pytest.fixture(scope="session")
def both_sinks() -> Iterator[tuple[HTTPSink, SMTPSink]]:
    yield from sinks()


@pytest.fixture
def http_sink(both_sinks: tuple[HTTPSink, SMTPSink]) -> HTTPSink:
    return both_sinks[0]


@pytest.fixture
def smtp_sink(both_sinks: tuple[HTTPSink, SMTPSink]) -> SMTPSink:
    return both_sinks[1]
