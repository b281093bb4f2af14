"""Where the commands talk to people: rich on stderr, plain text without rich."""

from __future__ import annotations

import sys
from typing import Any


def console() -> Any:
    """A rich console on stderr, or a plain stand-in when rich is not installed."""
    try:
        from rich.console import Console
    except ImportError:  # capture-only install: plain output is enough

        class _Plain:
            def print(self, *objects: object, **_: object) -> None:
                print(*objects, file=sys.stderr)

        return _Plain()
    return Console(stderr=True, highlight=False)


def escape(text: str) -> str:
    """Brackets in a message (``[kafka]``, ``shadowtap[collector]``) are text, not markup."""
    try:
        from rich.markup import escape as rich_escape
    except ImportError:
        return text
    return rich_escape(text)
