"""No-inbound mode: poll SIGNL4 for changes to the linked Signls.

For networks that take no inbound calls. Each cycle asks the ``Signl4Changes`` port (``sources/signl4_changes.py``)
once which alerts changed since the last cycle (minus an overlap), keeps those this connector raised, and stores
the events it reports for them in the same inbox the webhook fills (as :meth:`Signl4Event.to_record`). Their ids
are deterministic, so a change seen twice, or seen by the webhook too in ``both`` mode, is processed once.

At most ``max_alerts`` changed alerts are read per cycle. When more changed, the cursor stays, and the next cycles
read the rest: an alert already read at the same revision is skipped, so a catch-up makes progress although the
search lists the newest first.

The annotation read that answered (v1 or the v2 timeline) is kept in the store (cursor ``signl4_annotations_path``),
so a restart does not probe the other one again. When neither answers, the warning is logged once, every cycle's
report names the Signls whose notes were not read, and the cursor moves on: acknowledgements and closes still sync.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog

from sentinel_signl4.engine.cursor_cache import CursorCache
from sentinel_signl4.engine.ports import ChangedAlert, Signl4Changes
from sentinel_signl4.engine.report import PollReport
from sentinel_signl4.store import InboxEvent, Link, StateStore

__all__ = ["ANNOTATIONS_PATH_CURSOR", "POLL_CURSOR", "Signl4Poller"]

log = structlog.get_logger("sentinel_signl4.signl4_poll")

POLL_CURSOR = "signl4_polled_at"
ANNOTATIONS_PATH_CURSOR = "signl4_annotations_path"
UNREADABLE = ("neither GET /alerts/{id}/annotations (v1) nor GET /v2/alerts/{id}/timeline answered; "
              "acknowledgements and closes are still synced")
OVERLAP = timedelta(minutes=2)  # clocks differ; the inbox de-duplicates what is seen twice


class Signl4Poller:
    def __init__(self, connector: str, *, changes: Signl4Changes, store: StateStore, interval: timedelta,
                 lookback: timedelta = timedelta(hours=24), max_alerts: int = 200) -> None:
        self.connector = connector
        self.changes = changes
        self.store = store
        self.cursors = CursorCache(store, connector)
        self.interval = interval
        self.lookback = lookback
        self.max_alerts = max_alerts
        #: Alerts already turned into events during a catch-up that has not reached the end (id → revision read).
        self._read: dict[str, str] = {}
        self._stored_path: str | None = None
        self._path_loaded = False
        self._warned_unreadable = False

    async def poll(self, now: datetime, report: PollReport) -> None:
        last = await self.cursors.get(POLL_CURSOR)
        since = datetime.fromisoformat(last) if last else now - self.lookback
        if now - since < self.interval:
            return
        ours: list[tuple[Link, ChangedAlert]] = []
        for alert in await self.changes.changed_since(since - OVERLAP):
            link = await self.store.get_link_by_external_id(self.connector, alert.external_id)
            if link is not None:
                ours.append((link, alert))
        # While a catch-up spans cycles, an alert read in an earlier cycle is skipped unless it changed since: the
        # search lists newest first, so without this every cycle would read the same newest ones again.
        todo = [(link, alert) for link, alert in ours if self._read.get(alert.alert_id) != alert.revision]
        if todo:
            await self._load_annotations_path()
        unreadable: list[str] = []
        for link, alert in todo[: self.max_alerts]:
            found = await self.changes.events_of(alert, now)
            if found.annotations_unreadable is not None:
                self._note_unreadable(found.annotations_unreadable)
                unreadable.append(str(link.incident_number))
            for event in found.events:
                # received_at = when it happened in SIGNL4, so the inbox processes a cycle's finds in their order.
                await self.store.add_inbox(InboxEvent(connector=self.connector, event_id=event.event_id,
                                                      payload=event.to_record(), received_at=event.raised_at or now))
            self._read[alert.alert_id] = alert.revision
        await self._store_annotations_path()
        if unreadable:
            report.errors.append(f"signl4 poll: annotations of {len(unreadable)} Signl(s) not read "
                                 f"(#{', #'.join(unreadable)}): {UNREADABLE}")
        if len(todo) > self.max_alerts:
            log.warning("signl4_poll_truncated", connector=self.connector, changed=len(todo), limit=self.max_alerts)
            return  # keep the cursor: the rest is picked up next cycle
        self._read.clear()
        await self.cursors.set(POLL_CURSOR, now.isoformat())

    def _note_unreadable(self, why: str) -> None:
        if not self._warned_unreadable:
            self._warned_unreadable = True
            log.warning("signl4_annotations_unreadable", connector=self.connector, error=why)

    async def _load_annotations_path(self) -> None:
        """Once per process: the annotation path that answered before a restart is tried first."""
        if self._path_loaded:
            return
        self._path_loaded = True
        self._stored_path = await self.cursors.get(ANNOTATIONS_PATH_CURSOR)
        if self.changes.annotations_path is None and self._stored_path is not None:
            self.changes.annotations_path = self._stored_path

    async def _store_annotations_path(self) -> None:
        path = self.changes.annotations_path
        if path is not None and path != self._stored_path:
            await self.cursors.set(ANNOTATIONS_PATH_CURSOR, path)
            self._stored_path = path
