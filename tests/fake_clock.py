"""The clock the emulators (and client-side limiters) run on in tests: it moves only when a test says so.

``tests/`` is on ``sys.path`` through ``pythonpath`` in pyproject.toml.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

START = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)


class FakeClock:
    """Starts at ``start`` (default START); ``advance`` moves it, nothing else does."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 0.0, **delta: float) -> None:
        """Move on by ``seconds`` and any other ``timedelta`` keywords (``advance(minutes=5)``)."""
        self.now += timedelta(seconds=seconds, **delta)

    def epoch(self) -> float:
        """Wall-clock seconds (``time.time``'s reading)."""
        return self.now.timestamp()

    wall = epoch

    def monotonic(self) -> float:
        """Seconds since ``START`` (``time.monotonic``'s reading: only differences mean anything)."""
        return (self.now - START).total_seconds()

    async def sleep(self, seconds: float) -> None:
        """A sleep that passes fake time instead of real time and, like a real one, lets other tasks run."""
        self.advance(seconds)
        await asyncio.sleep(0)
