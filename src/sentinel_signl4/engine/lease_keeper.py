"""The leases one replica holds, renewed together: one store transaction per tick for all of them.

A connector's loop takes its lease once (``acquire_lease``, the acquisition that sets the epoch its cycles are fenced
with) and hands it to the keeper. From then on its cycles start without a store write: the keeper renews every held
lease a third of its TTL after the last renewal, all those due in one ``renew_leases`` call, so a replica with 1,000
connectors writes one lease transaction every few seconds instead of one per connector and cycle.

A renewal never acquires: a lease that comes back missing (expired while the replica was paused, released, taken
by another replica) or with another epoch is lost. The keeper forgets it and logs ``lease_renewal_lost``; the cycle
under way is refused its next write by the fence (``LeaseLostError``), and the connector's next cycle asks the store
for the lease again (standby when another replica has it). A lost lease is thus noticed within a third of its TTL,
as when each connector renewed its own. When renewing fails (the store is down), the leases are kept and tried again
at the next tick; a lease whose remaining time falls below a third of its TTL is no longer ``current``, so the loop
claims it itself before its next cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from sentinel_signl4.engine.health import store_error_message
from sentinel_signl4.store import Lease, StateStore

__all__ = ["LeaseKeeper"]

log = structlog.get_logger("sentinel_signl4.leases")

# Without a held lease the keeper still wakes now and then (a lease handed to it wakes it at once).
_IDLE_TICK = 60.0


class LeaseKeeper:
    """Holds ``owner``'s leases and renews them in batches; ``run`` is its task, one per supervisor."""

    def __init__(self, store: StateStore, owner: str, clock: Callable[[], datetime], *,
                 on_renewed: Callable[[], None] | None = None) -> None:
        """``on_renewed``: called after each successful renewal (the replica's instance file is touched there)."""
        self.store = store
        self.owner = owner
        self.clock = clock
        self.on_renewed = on_renewed
        self._held: dict[str, Lease] = {}
        self._ttl: dict[str, float] = {}
        self._due: dict[str, float] = {}  # loop time of the next renewal, by lease name
        self._changed = asyncio.Event()

    def hold(self, lease: Lease, ttl: float) -> None:
        """Keep ``lease`` (just acquired or renewed by the caller, for ``ttl`` seconds) renewed from now on."""
        self._held[lease.name] = lease
        self._ttl[lease.name] = ttl
        self._due[lease.name] = asyncio.get_running_loop().time() + ttl / 3
        self._changed.set()

    def drop(self, name: str) -> None:
        """Stop renewing ``name`` (its loop ends, or it releases the lease)."""
        self._held.pop(name, None)
        self._ttl.pop(name, None)
        self._due.pop(name, None)

    def current(self, name: str) -> Lease | None:
        """The held lease ``name`` while more than a third of its TTL is left at ``clock()``; else None (claim it
        again through the store)."""
        lease = self._held.get(name)
        if lease is None:
            return None
        if lease.expires_at - self.clock() <= timedelta(seconds=self._ttl[name] / 3):
            return None
        return lease

    def held(self) -> list[str]:
        return sorted(self._held)

    async def run(self) -> None:
        """Renew what is due, sleep until the next is due; until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            wait = min(self._due.values(), default=loop.time() + _IDLE_TICK) - loop.time()
            if wait > 0:
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._changed.wait()
                continue
            await self.renew_due()

    async def renew_due(self) -> None:
        """One ``renew_leases`` call for every held lease whose renewal is due, or due within a third of its
        renewal period: early rather than in another transaction a moment later, so leases taken at different
        moments (a warm-up) fall into one batch after their first renewal."""
        now_loop = asyncio.get_running_loop().time()
        due = {name: self._ttl[name] for name, at in self._due.items()
               if at - now_loop <= self._ttl[name] / 9}
        if not due:
            return
        asked = {name: self._held[name] for name in due}
        try:
            renewed = await self.store.renew_leases(self.owner, due, self.clock())
        except Exception as exc:  # noqa: BLE001 - a store hiccup: the leases are tried again at the next tick
            log.error("lease_failed", leases=len(due), error=store_error_message(exc))
            for name in due:
                if name in self._due:
                    self._due[name] = now_loop + self._ttl[name] / 3
            return
        for name, lease in asked.items():
            if self._held.get(name) is not lease:
                continue  # dropped or re-acquired meanwhile: the newer state stands
            fresh = renewed.get(name)
            if fresh is not None and fresh.epoch == lease.epoch:
                self._held[name] = fresh
                self._due[name] = now_loop + self._ttl[name] / 3
                continue
            log.warning("lease_renewal_lost", lease=name, epoch=lease.epoch,
                        now_epoch=None if fresh is None else fresh.epoch)
            self.drop(name)
        if renewed and self.on_renewed is not None:
            self.on_renewed()
