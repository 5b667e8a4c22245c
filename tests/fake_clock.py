"""The clock the emulators (and client-side limiters) run on in tests: it moves only when a test says so.

Import it after the directory's ``conftest`` or world module put ``tests/`` on ``sys.path``.
"""

from __future__ import annotations

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
        return self.now.timestamp()

    async def sleep(self, seconds: float) -> None:
        """A sleep that passes emulator time instead of real time (for client-side limiters)."""
        self.advance(seconds)
