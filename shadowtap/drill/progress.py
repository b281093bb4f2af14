"""Live progress of a drill (rich): share of the window done by event time, records done of
the total, rate, error rate, ETA and, when paced, the lag behind the recorded timeline.

It redraws from counters the engine and the book keep anyway, a few times a second on its
own task, so the delivery path pays nothing for it::

    async with Progress(book, engine, console):
        await drill.run()
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table

from shadowtap.drill.report import DrillBook
from shadowtap.replayers.engine import Engine

REFRESH_S = 0.5


def snapshot(book: DrillBook, engine: Engine, now: float) -> dict[str, float | None]:
    """The figures the display shows (also what a log line would say)."""
    plan = book.plan
    total = plan.records
    done = engine.delivered
    elapsed = now - book.first_sent if book.first_sent is not None else 0.0
    rate = done / elapsed if elapsed > 0 else 0.0
    share = plan.window.share_before(book.max_ts + 1) if book.max_ts is not None else 0.0
    lag = None
    if book.speed and book.first_sent is not None and plan.first_ts is not None:
        expected = plan.first_ts + elapsed * book.speed * 1000
        lag = max(0.0, (expected - (book.max_ts or plan.first_ts)) / 1000)
    return {
        "done": done,
        "total": total,
        "share": share,
        "rate": rate,
        "error_rate": (book.sent - book.succeeded) / book.sent if book.sent else 0.0,
        "eta_s": (total - done) / rate if rate > 0 and total >= done else None,
        "lag_s": lag,
    }


def render(figures: dict[str, float | None], name: str) -> Table:
    table = Table.grid(padding=(0, 2))
    done, total = int(figures["done"] or 0), int(figures["total"] or 0)
    share = figures["share"] or 0.0
    bar = "█" * int(share * 30) + "░" * (30 - int(share * 30))
    eta = figures["eta_s"]
    row = [
        f"[bold]{name}[/bold]",
        f"{bar} {share:6.1%} of the window",
        f"{done:,}/{total:,}",
        f"{figures['rate'] or 0:,.0f}/s",
        f"errors {figures['error_rate'] or 0:.2%}",
        f"ETA {eta:,.0f}s" if eta is not None else "ETA -",
    ]
    if figures["lag_s"] is not None:
        row.append(f"lag {figures['lag_s']:.1f}s")
    table.add_row(*row)
    return table


class Progress:
    """A rich Live display redrawn on its own task (nothing when not a terminal)."""

    def __init__(self, book: DrillBook, engine: Engine, console: Console, name: str) -> None:
        self.book = book
        self.engine = engine
        self.console = console
        self.name = name
        self._task: asyncio.Task[None] | None = None
        self._live: Live | None = None

    def _table(self) -> Table:
        return render(snapshot(self.book, self.engine, time.monotonic()), self.name)

    async def _redraw(self) -> None:
        assert self._live is not None
        while True:
            await asyncio.sleep(REFRESH_S)
            self._live.update(self._table(), refresh=True)

    async def __aenter__(self) -> Progress:
        if self.console.is_terminal:
            self._live = Live(self._table(), console=self.console, auto_refresh=False)
            self._live.start()
            self._task = asyncio.create_task(self._redraw())
        return self

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._live is not None:
            self._live.update(self._table(), refresh=True)
            self._live.stop()
