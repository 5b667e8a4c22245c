"""A connector's cursors as this process last read or wrote them, for as long as it holds the lease in one epoch.

Only the replica holding a connector's lease moves that connector's cursors, so while the lease is held without a
gap (one epoch) the value this process last read or wrote is the stored one, and an idle cycle need not read it
again. The cache is keyed by the cycle's fence (``engine.leases.current_fence``): a new epoch — the lease taken
again after a gap, during which another replica may have moved the cursors — starts from the store. Outside a
leased cycle (tests, one-off commands) every read goes to the store.
"""

from __future__ import annotations

from sentinel_signl4.engine.leases import current_fence
from sentinel_signl4.store import StateStore

__all__ = ["CursorCache"]


class CursorCache:
    def __init__(self, store: StateStore, connector: str) -> None:
        self.store = store
        self.connector = connector
        self._fence: tuple[str, str, int] | None = None
        self._values: dict[str, str | None] = {}

    def _valid_for(self) -> tuple[str, str, int] | None:
        """The current fence's identity, with the cache emptied when it changed (None: no leased cycle)."""
        fence = current_fence()
        if fence is None:
            self._fence = None
            self._values.clear()
            return None
        key = (fence.lease, fence.owner, fence.epoch)
        if key != self._fence:
            self._fence = key
            self._values.clear()
        return key

    async def get(self, name: str) -> str | None:
        if self._valid_for() is None:
            return await self.store.get_cursor(self.connector, name)
        if name not in self._values:
            self._values[name] = await self.store.get_cursor(self.connector, name)
        return self._values[name]

    async def set(self, name: str, value: str) -> None:
        key = self._valid_for()
        self._values.pop(name, None)  # unknown until the write returned
        await self.store.set_cursor(self.connector, name, value, fence=current_fence())
        if key is not None and key == self._fence:
            self._values[name] = value
