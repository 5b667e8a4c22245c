"""Notices when the process's own event loop stops running (a blocking call, a runaway computation, a deadlock).

A coroutine on the loop stamps a heartbeat; a watcher *thread* — which keeps running while the loop is stuck —
compares the stamp with the clock. A heartbeat older than ``stall_after`` pages once (the send is made from the
thread, synchronously, since the loop cannot); the next fresh heartbeat resolves that Signl. Sends that fail are
tried again on the next tick.

The outage is remembered in memory only: the store is reached through the event loop, which is what is stuck.
If the process is killed while stalled, that Signl stays open until someone closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from sentinel_signl4.domain import SignlRequest, SignlStatus

__all__ = ["LoopWatcher"]

log = structlog.get_logger("sentinel_signl4.watchdog")

SyncSend = Callable[[SignlRequest], object]


class LoopWatcher:
    def __init__(self, send: SyncSend, *, stall_after: float, replica: str, service: str) -> None:
        self.send = send
        self.stall_after = stall_after
        self.replica = replica
        self.service = service
        self.tick = min(1.0, stall_after / 4)
        self._beat = time.monotonic()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.open_external_id: str | None = None

    async def heartbeat(self, stop: asyncio.Event) -> None:
        """Run on the event loop until ``stop``: proves the loop is alive."""
        while not stop.is_set():
            self._beat = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.tick)

    def start(self) -> None:
        self._beat = time.monotonic()
        self._stopped.clear()
        self._thread = threading.Thread(target=self._watch, name="s4s-loop-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _watch(self) -> None:
        while not self._stopped.wait(self.tick):
            lag = time.monotonic() - self._beat
            if lag > self.stall_after and self.open_external_id is None:
                self._page(lag)
            elif lag <= self.stall_after and self.open_external_id is not None:
                self._resolve(self.open_external_id)

    def _page(self, lag: float) -> None:
        now = datetime.now(UTC)
        external_id = f"s4s-watchdog:event-loop:{self.replica}:{int(now.timestamp())}"
        request = SignlRequest(
            external_id=external_id, service=self.service,
            title=f"sentinel-signl4: event loop of replica {self.replica} stalled",
            message=f"The process has not run its event loop for {lag:.0f} s (limit {self.stall_after:g} s) at "
                    f"{now.isoformat(timespec='seconds')}: no connector polls, pages or syncs meanwhile.")
        try:
            self.send(request)
        except Exception as exc:  # noqa: BLE001 - tried again on the next tick
            log.error("watchdog_page_failed", subject="event-loop", error=str(exc))
            return
        self.open_external_id = external_id
        log.error("watchdog_paged", subject="event-loop", external_id=external_id, stalled_seconds=round(lag, 1))

    def _resolve(self, external_id: str) -> None:
        try:
            self.send(SignlRequest(external_id=external_id, status=SignlStatus.RESOLVED, service=self.service))
        except Exception as exc:  # noqa: BLE001 - tried again on the next tick
            log.warning("watchdog_resolve_failed", subject="event-loop", error=str(exc))
            return
        self.open_external_id = None
        log.info("watchdog_resolved", subject="event-loop", external_id=external_id)
