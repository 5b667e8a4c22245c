"""The incident poll: one list read of what changed since the cursor, and a full filtered scan as the safety net.

An idle poll makes one list read: incidents modified at or after ``cursor - overlap``, any status, every page
(Sentinel ``lastModifiedTimeUtc``, Graph ``lastUpdateDateTime``). Forward decisions (a new incident that matches the
filter is paged) and lifecycle decisions (closed → the Signl is resolved, reopened, merged by Defender) both come
from that read. A full filtered scan (status, severity, created within ``max_age``) runs at start and every
``full_scan_interval``: it catches whatever a read of changes could miss (a server whose listing skips an item while
it changes, an incident deleted and restored, a cursor written by a bug).

The cursor is the newest modification time the source itself reported (capped at our clock), so a server clock
behind ours cannot move it past a change. It is written only after every page was read and every decision was
queued, and only when it moves, so an idle poll writes nothing. The overlap covers an incident whose modification
becomes visible to listings a little after newer ones (replication lag); re-reading it is harmless because every
action it leads to is keyed. A read that returns the same incident twice (it changed while the pages were read, so
a server that pages by offset may have skipped a neighbour) keeps the cursor where it was: the next poll reads the
same window again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog

from sentinel_signl4.domain import Incident, skip_reason
from sentinel_signl4.engine.forward import ForwardPath
from sentinel_signl4.engine.ports import IncidentSource
from sentinel_signl4.engine.report import PollReport
from sentinel_signl4.engine.reverse import LIFECYCLE_CURSOR, ReversePath
from sentinel_signl4.store import StateStore

__all__ = ["CHANGES_CURSOR", "DEFAULT_FULL_SCAN_INTERVAL", "OVERLAP", "IncidentPoll"]

log = structlog.get_logger("sentinel_signl4.incident_poll")

#: The newest modification time (the source's clock, ISO 8601) of everything read and decided on.
CHANGES_CURSOR = "changes_since"
#: Re-read this much before the cursor: an incident whose change becomes visible to listings late (after a newer
#: one) is still seen. [derived: neither Sentinel nor Graph documents how soon a change appears in listings.]
OVERLAP = timedelta(minutes=5)
DEFAULT_FULL_SCAN_INTERVAL = timedelta(minutes=15)


class IncidentPoll:
    """The ``poll`` step of one connector: forward and lifecycle decisions from one read of changes."""

    def __init__(self, connector: str, *, source: IncidentSource, store: StateStore, forward: ForwardPath,
                 reverse: ReversePath | None = None,
                 full_scan_interval: timedelta = DEFAULT_FULL_SCAN_INTERVAL) -> None:
        self.connector = connector
        self.source = source
        self.store = store
        self.forward = forward
        self.reverse = reverse
        self.full_scan_interval = full_scan_interval
        self._next_full_scan: datetime | None = None  # None: due (at start, and after a failed scan)

    def full_scan_due(self, now: datetime) -> bool:
        return self._next_full_scan is None or now >= self._next_full_scan

    async def poll(self, now: datetime, report: PollReport) -> None:
        since = await self._since(now)
        changed, newest, repeated = await self._read_changes(since - OVERLAP)
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
        if newest is None:
            return
        # Never ahead of our own clock: a change stamped in the future by a server clock that jumped ahead must not
        # carry the cursor past the changes stamped after the clock came back.
        cursor = min(newest, now)
        if cursor > since:
            await self.store.set_cursor(self.connector, CHANGES_CURSOR, cursor.isoformat())

    def _matches(self, incident: Incident, now: datetime) -> bool:
        return skip_reason(incident, self.forward.flt, now) is None

    async def _since(self, now: datetime) -> datetime:
        stored = await self.store.get_cursor(self.connector, CHANGES_CURSOR)
        if stored is None:
            # Upgrading: start where the lifecycle pass (our clock, written after each of its reads) left off.
            stored = await self.store.get_cursor(self.connector, LIFECYCLE_CURSOR)
        oldest = self.forward.flt.oldest(now)
        if stored is None:
            return oldest
        try:
            return datetime.fromisoformat(stored)
        except ValueError:
            log.warning("changes_cursor_unreadable", connector=self.connector, value=stored[:64])
            return oldest

    async def _read_changes(self, since: datetime) -> tuple[list[Incident], datetime | None, set[str]]:
        """Every incident modified at or after ``since`` (each once, its last version read), the newest
        modification time seen, and the ids read more than once."""
        by_id: dict[str, Incident] = {}
        repeated: set[str] = set()
        newest: datetime | None = None
        async for incident in self.source.list_modified_since(since):
            if incident.resource_id in by_id:
                repeated.add(incident.resource_id)
            by_id[incident.resource_id] = incident
            if newest is None or incident.last_modified > newest:
                newest = incident.last_modified
        return list(by_id.values()), newest, repeated
