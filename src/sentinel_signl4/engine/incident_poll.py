"""The incident poll: one list read of what changed since the cursor, and a full filtered scan as the safety net.

An idle poll makes one list read: incidents modified at or after ``cursor - overlap``, any status, every page
(Sentinel ``lastModifiedTimeUtc``, Graph ``lastUpdateDateTime``). Forward decisions (a new incident that matches the
filter is paged) and lifecycle decisions (closed → the Signl is resolved, reopened, merged by Defender) both come
from that read. A full filtered scan (status, severity, created within ``max_age``) runs at start and every
``full_scan_interval``: it catches whatever a read of changes could miss (a server whose listing skips an item while
it changes, an incident deleted and restored, a cursor written by a bug).

The cursor is our clock at the start of a read whose pages were all read and whose decisions were all queued. The
next read starts ``OVERLAP`` before it, which covers a server clock up to that much behind ours and a change that
becomes visible to listings a little after newer ones; re-reading is harmless because every action is keyed. The
cursor is written only when it moves by ``CURSOR_STEP`` or more, so most idle polls write nothing to the store (one
small write per step) while a read never spans more than ``OVERLAP + CURSOR_STEP`` of changes. A read that returns
the same incident twice (it changed while the pages were read, so a server that pages by offset may have skipped a
neighbour) keeps the cursor where it was: the next poll reads the same window again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog

from sentinel_signl4.domain import Incident, skip_reason
from sentinel_signl4.engine.cursor_cache import CursorCache
from sentinel_signl4.engine.forward import ForwardPath
from sentinel_signl4.engine.ports import IncidentSource
from sentinel_signl4.engine.report import PollReport
from sentinel_signl4.engine.reverse import LIFECYCLE_CURSOR, ReversePath
from sentinel_signl4.store import StateStore

__all__ = ["CHANGES_CURSOR", "CURSOR_STEP", "DEFAULT_FULL_SCAN_INTERVAL", "OVERLAP", "IncidentPoll"]

log = structlog.get_logger("sentinel_signl4.incident_poll")

#: Our clock (ISO 8601) at the start of the last read that was complete and fully decided on.
CHANGES_CURSOR = "changes_since"
#: Re-read this much before the cursor: a server clock behind ours, and a change that becomes visible to listings
#: late (after a newer one). [derived: neither Sentinel nor Graph documents how soon a change appears in listings.]
OVERLAP = timedelta(minutes=5)
#: The cursor moves in steps of at least this much: an idle poll between steps writes nothing.
CURSOR_STEP = timedelta(minutes=5)
DEFAULT_FULL_SCAN_INTERVAL = timedelta(minutes=15)


class IncidentPoll:
    """The ``poll`` step of one connector: forward and lifecycle decisions from one read of changes."""

    def __init__(self, connector: str, *, source: IncidentSource, store: StateStore, forward: ForwardPath,
                 reverse: ReversePath | None = None,
                 full_scan_interval: timedelta = DEFAULT_FULL_SCAN_INTERVAL) -> None:
        self.connector = connector
        self.source = source
        self.store = store
        self.cursors = CursorCache(store, connector)
        self.forward = forward
        self.reverse = reverse
        self.full_scan_interval = full_scan_interval
        self._next_full_scan: datetime | None = None  # None: due (at start, and after a failed scan)

    def full_scan_due(self, now: datetime) -> bool:
        return self._next_full_scan is None or now >= self._next_full_scan

    async def poll(self, now: datetime, report: PollReport) -> None:
        since, stored = await self._since(now)
        changed, repeated = await self._read_changes(since - OVERLAP)
        if self.reverse is not None:
            # First: a Defender merge moves a Signl onto the surviving incident, so the forward decisions below see
            # that incident linked and do not page it a second time.
            await self.reverse.apply_lifecycle(changed, now, report)
        full_scan = self.full_scan_due(now)
        if full_scan:
            matching = [incident async for incident in self.source.list_matching(self.forward.flt, now)]
            names = {incident.resource_id for incident in matching}
            # What changed after the scan's pages were read is decided on too (it matches now, or it does not).
            matching += [i for i in changed if i.resource_id not in names and self._matches(i, now)]
            await self.forward.consider(matching, now, report)
            self._next_full_scan = now + self.full_scan_interval
        else:
            # The server-side filter of the full scan, applied to the changes: only candidates reach the forward
            # path, so an incident closed long ago is not counted as skipped at every poll that re-reads it.
            await self.forward.consider([i for i in changed if self._matches(i, now)], now, report)
        if repeated:
            log.info("changes_read_twice", connector=self.connector, incidents=len(repeated),
                     reason="changed while the pages were read; the same window is read again next poll")
            return
        if not stored or now - since >= CURSOR_STEP:
            await self.cursors.set(CHANGES_CURSOR, now.isoformat())

    def _matches(self, incident: Incident, now: datetime) -> bool:
        return skip_reason(incident, self.forward.flt, now) is None

    async def _since(self, now: datetime) -> tuple[datetime, bool]:
        """Where the next read starts (before the overlap), and whether that came from a stored cursor."""
        stored = await self.cursors.get(CHANGES_CURSOR)
        if stored is None:
            # Upgrading: start where the lifecycle pass (our clock, written after each of its reads) left off.
            stored = await self.cursors.get(LIFECYCLE_CURSOR)
        if stored is None:
            return self.forward.flt.oldest(now), False
        try:
            return datetime.fromisoformat(stored), True
        except ValueError:
            log.warning("changes_cursor_unreadable", connector=self.connector, value=stored[:64])
            return self.forward.flt.oldest(now), False

    async def _read_changes(self, since: datetime) -> tuple[list[Incident], set[str]]:
        """Every incident modified at or after ``since`` (each once, its last version read) and the ids read more
        than once."""
        by_id: dict[str, Incident] = {}
        repeated: set[str] = set()
        async for incident in self.source.list_modified_since(since):
            if incident.resource_id in by_id:
                repeated.add(incident.resource_id)
            by_id[incident.resource_id] = incident
        return list(by_id.values()), repeated
