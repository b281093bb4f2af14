"""One scrubber for the scrub tests (building one compiles every recognizer)."""

from __future__ import annotations

import pytest

from shadowtap.scrub.scrubber import Scrubber


@pytest.fixture(scope="module")
def scrubber() -> Scrubber:
    return Scrubber(key="test-key")
