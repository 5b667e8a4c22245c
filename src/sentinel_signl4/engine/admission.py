"""How many connector cycles may be under way at once in one process (``CycleSlots``).

Without a bound, a process with more connectors than it can serve starts every due cycle at once: thousands of
requests then wait for one of the HTTP client's connections, each with its connect timeout running, and fail as
"not sent" to be retried, which costs more CPU still (measured with ``bench/scale.py``: 5,000 connectors at 30 s, 9,180
to 13,060 failed steps in 7.5 minutes, most connectors in error). With a bound, the cycles that do not get a slot
wait their turn (first come, first served): the poll period stretches, and nothing fails for it.

A cycle gives its slot back when it ends, or after ``hold`` seconds if it is still running: a slow connector (a burst
of pages, a remote system answering slowly) keeps running but no longer counts, so it cannot hold up the others for
longer than that. An idle cycle takes milliseconds; below saturation no cycle ever waits for a slot.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

__all__ = ["CYCLE_SLOTS", "SLOT_HOLD_S", "CycleSlots"]

#: Cycles under way at once. Below the HTTP client's 50 connections: a cycle makes one request at a time, and the
#: web server's SIGNL4 and health traffic keeps some.
CYCLE_SLOTS = 32
#: After this long a running cycle stops counting against the bound.
SLOT_HOLD_S = 2.0


class CycleSlots:
    def __init__(self, slots: int = CYCLE_SLOTS, hold: float = SLOT_HOLD_S) -> None:
        if slots < 1 or hold <= 0:
            raise ValueError("slots must be >= 1 and hold > 0")
        self._free = asyncio.Semaphore(slots)
        self._hold = hold

    def waiting(self) -> bool:
        """Whether a cycle would have to wait for a slot now."""
        return self._free.locked()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for a slot; hold it until the block ends or for ``hold`` seconds, whichever comes first."""
        await self._free.acquire()
        given_back = False

        def give_back() -> None:
            nonlocal given_back
            if not given_back:
                given_back = True
                self._free.release()

        timer = asyncio.get_running_loop().call_later(self._hold, give_back)
        try:
            yield
        finally:
            timer.cancel()
            give_back()
