"""Runs every enabled connector concurrently; one failing or slow connector never delays the others.

Each connector runs in its own task under a lease in the store, so N replicas sharing a store run each connector
exactly once. A connector's loop takes its lease once; from then on one ``LeaseKeeper`` renews every lease this
replica holds, in one store transaction per tick (``engine.lease_keeper``), also while a long cycle runs (a
1,000-incident burst can outlast the TTL), so a cycle starts without a store write. The cycle's writes are fenced
by the lease's epoch (``engine.leases``): a replica that lost its lease (paused past the TTL while another took
over) gets ``LeaseLostError`` from the store and ends its cycle at once.
``stop`` ends the loops: a cycle under way starts no further side effect, those in progress finish and are
recorded, and the rest stays queued for the next start.

While running, single connectors can be added, stopped or replaced (a config reload): ``stop_connector`` ends one
loop the way ``stop`` ends all of them and releases its lease; the other connectors' tasks are not touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from sentinel_signl4.engine.admission import CycleSlots
from sentinel_signl4.engine.connector import ConnectorRuntime
from sentinel_signl4.engine.failures import describe_error, leaf_errors
from sentinel_signl4.engine.health import store_error_message
from sentinel_signl4.engine.instances import Registration
from sentinel_signl4.engine.lease_keeper import LeaseKeeper
from sentinel_signl4.engine.leases import claim_lease, fence_for, fenced, replica_id
from sentinel_signl4.engine.report import PollReport
from sentinel_signl4.logs import connector_context
from sentinel_signl4.store import Lease, LeaseLostError, StateStore, is_store_error

__all__ = ["ScheduledConnector", "Supervisor", "replica_id"]

log = structlog.get_logger("sentinel_signl4.supervisor")

#: How many connectors start per second of the first interval when many start together (``start_offset``).
STARTS_PER_SECOND = 20.0


@dataclass(slots=True)
class ScheduledConnector:
    runtime: ConnectorRuntime
    interval: float


def _utcnow() -> datetime:
    return datetime.now(UTC)


def start_offset(name: str, interval: float, connectors: int) -> float:
    """Where connector ``name`` makes its first cycle, in seconds from the start: a stable point (a hash of its
    name, the same in every process and run) of a spread of ``connectors`` / ``STARTS_PER_SECOND`` seconds, at most
    one interval. A few connectors start at once; a thousand are spread over their interval."""
    spread = min(interval, connectors / STARTS_PER_SECOND)
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return spread * int.from_bytes(digest, "big") / 2**64


class Supervisor:
    def __init__(self, connectors: Sequence[ScheduledConnector], store: StateStore, *,
                 clock: Callable[[], datetime] = _utcnow, owner: str | None = None,
                 lease_ttl: float | None = None,
                 on_report: Callable[[PollReport], None] | None = None,
                 instance: Registration | None = None, slots: CycleSlots | None = None) -> None:
        """``instance``: this replica's registration (its instance file, locked); its id is the lease owner, and
        its registry proves other holders dead, to take their leases over before expiry. Without one, only
        expiry frees a lease. ``slots`` bounds the cycles under way at once (``engine.admission``).
        """
        self.connectors = list(connectors)
        self.store = store
        self.clock = clock
        self.instance = instance
        self.owner = instance.replica if instance is not None else owner or replica_id()
        self.lease_ttl = lease_ttl
        self.on_report = on_report
        self.running = False
        self._wake: dict[str, asyncio.Event] = {c.runtime.name: asyncio.Event() for c in self.connectors}
        self._group: asyncio.TaskGroup | None = None
        self._halts: dict[str, asyncio.Event] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.slots = slots or CycleSlots()
        self.keeper = LeaseKeeper(store, self.owner, clock,
                                  on_renewed=instance.touch if instance is not None else None)

    async def run(self, stop: asyncio.Event) -> None:
        self.running = True
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                keeper = group.create_task(self.keeper.run(), name="lease-keeper")
                for item in self.connectors:
                    # Connectors started together would cycle together for good: each starts at its own point
                    # of the interval (a stable one, from its name), so the load is spread evenly over it.
                    self._spawn(item, start_offset(item.runtime.name, item.interval, len(self.connectors)))
                # The group stays open until ``stop``, even with no connector left: one may be added later.
                await stop.wait()
                for name, halt in self._halts.items():
                    halt.set()
                    self.wake(name)
                # The keeper renews the leases until the last cycle under way has finished.
                if self._tasks:
                    await asyncio.wait(set(self._tasks.values()))
                keeper.cancel()
        finally:
            self._group = None
            self.running = False

    def _spawn(self, item: ScheduledConnector, delay: float = 0.0) -> None:
        assert self._group is not None
        name = item.runtime.name
        halt = self._halts[name] = asyncio.Event()
        self._wake.setdefault(name, asyncio.Event())
        self._tasks[name] = self._group.create_task(self._loop(item, halt, delay), name=f"connector:{name}",
                                                    context=connector_context(name))

    def names(self) -> list[str]:
        """The connectors this supervisor runs."""
        return [item.runtime.name for item in self.connectors]

    def add_connector(self, item: ScheduledConnector) -> None:
        """Run ``item`` too (at once when running). Its name must not be one this supervisor runs already."""
        if item.runtime.name in self.names():
            raise ValueError(f"connector {item.runtime.name!r} is already running")
        self.connectors.append(item)
        if self._group is not None:
            self._spawn(item)

    async def stop_connector(self, name: str) -> None:
        """Stop one connector as ``stop`` stops all: its cycle in progress finishes (sends in flight complete and
        are recorded, nothing new starts), then its lease is released. Returns once its loop has ended."""
        self.connectors = [item for item in self.connectors if item.runtime.name != name]
        halt, task = self._halts.pop(name, None), self._tasks.pop(name, None)
        wake = self._wake.pop(name, None)
        if halt is None or task is None:
            return
        halt.set()
        if wake is not None:
            wake.set()
        await asyncio.wait({task})

    async def replace_connector(self, item: ScheduledConnector) -> None:
        """Stop the connector of ``item``'s name (see ``stop_connector``), then run ``item`` in its place."""
        await self.stop_connector(item.runtime.name)
        self.add_connector(item)

    def _ttl(self, item: ScheduledConnector) -> float:
        return self.lease_ttl or max(60.0, 3 * item.interval)

    async def _loop(self, item: ScheduledConnector, stop: asyncio.Event, delay: float = 0.0) -> None:
        """Cycle ``item`` every ``interval`` from start to start (at once when a cycle took longer), the first
        cycle after ``delay`` seconds (or a wake)."""
        rt = item.runtime
        lease = f"connector:{rt.name}"
        ttl = self._ttl(item)
        try:
            if delay > 0:
                await self._pause(rt.name, delay, stop)
            while not stop.is_set():
                began = time.monotonic()
                # A lease the keeper renews is used as it is: no store write before the cycle.
                held = self.keeper.current(lease)
                if held is None:
                    held = await self._claim(rt, lease, self.clock(), ttl)
                    if held is not None:
                        self.keeper.hold(held, ttl)
                if held is not None:
                    async with self.slots.slot():  # a saturated process queues cycles instead of requests
                        if not stop.is_set():
                            await self._cycle(item, held, stop)
                # Start to start: a cycle's own time is not added to the interval (at once when it took longer).
                await self._pause(rt.name, max(0.0, item.interval - (time.monotonic() - began)), stop)
        finally:
            self.keeper.drop(lease)
            with contextlib.suppress(Exception):
                await self.store.release_lease(lease, self.owner)

    def wake(self, connector: str) -> None:
        """Run ``connector``'s next cycle now (a SIGNL4 webhook arrived): reverse sync does not wait a poll interval.

        Safe to call from the web server's handlers (same event loop); unknown names are ignored.
        """
        event = self._wake.get(connector)
        if event is not None:
            event.set()

    async def _pause(self, name: str, interval: float, stop: asyncio.Event) -> None:
        """Wait ``interval`` seconds, or less when stopped or woken. Stopping sets the wake event too, so one event
        and the task's own timeout do: no helper task per cycle."""
        wake = self._wake.get(name)
        if wake is None or stop.is_set():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval):
                await wake.wait()
        wake.clear()

    async def _claim(self, rt: ConnectorRuntime, lease: str, now: datetime, ttl: float) -> Lease | None:
        """Take or renew ``lease`` for a cycle. Otherwise report why in ``rt.health``: standby only when the store
        names a live holder, error with the store's message when the store failed."""
        registry = self.instance.registry if self.instance is not None else None
        try:
            held = await claim_lease(self.store, lease, self.owner, now, ttl, instances=registry)
            holder = None if held is not None else await self.store.lease_holder(lease)
        except Exception as exc:  # noqa: BLE001 - a store outage must not kill the loop; it is reported
            message = store_error_message(exc)
            log.error("lease_failed", lease=lease, error=message)
            rt.health.store_failed(now, message)
            return None
        if held is not None:
            if self.instance is not None:
                self.instance.touch()
            return held
        if holder is not None and holder != self.owner:
            rt.health.standby(now, holder)
        return None

    async def run_each_once(self) -> dict[str, PollReport | None]:
        """One cycle of every connector whose lease this process gets (``run --once``); None for the others.

        Taking the lease keeps a ``run --once`` (cron, recovery after a crash) from running a connector at the same
        time as a live ``run`` on the same store, which could send a page twice.
        """
        stop = asyncio.Event()

        async def one(item: ScheduledConnector) -> PollReport | None:
            lease, ttl = f"connector:{item.runtime.name}", self._ttl(item)
            held = await self._claim(item.runtime, lease, self.clock(), ttl)
            if held is None:
                return None
            self.keeper.hold(held, ttl)
            try:
                return await self._cycle(item, held, stop)
            finally:
                self.keeper.drop(lease)
                with contextlib.suppress(Exception):
                    await self.store.release_lease(lease, self.owner)

        loop = asyncio.get_running_loop()
        keeper = loop.create_task(self.keeper.run(), name="lease-keeper")
        try:
            reports = await asyncio.gather(*(loop.create_task(one(item),
                                                              context=connector_context(item.runtime.name))
                                             for item in self.connectors))
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        return {item.runtime.name: report for item, report in zip(self.connectors, reports, strict=True)}

    async def _cycle(self, item: ScheduledConnector, lease: Lease, stop: asyncio.Event) -> PollReport | None:
        rt = item.runtime
        try:
            with fenced(fence_for(lease, self.clock)):
                report = await rt.run_once(self.clock(), stop=stop)
            if self.on_report is not None:
                self.on_report(report)
            return report
        except LeaseLostError as exc:
            # Another replica runs this connector now; whatever this cycle planned is its business.
            log.warning("lease_lost", connector=rt.name, lease=lease.name, epoch=lease.epoch, error=str(exc))
            rt.health.crashed(self.clock(), f"{type(exc).__name__}: {exc}")
            return None
        except Exception as exc:
            detail = describe_error(exc)
            log.exception("connector_cycle_crashed", connector=rt.name, error=detail)
            cause = leaf_errors(exc)[0]
            if is_store_error(cause):
                rt.health.store_failed(self.clock(), store_error_message(cause))
            else:
                rt.health.crashed(self.clock(), detail)
            return None

