"""No-inbound mode: poll the SIGNL4 REST API for changes to the linked Signls.

For networks that take no inbound calls. Each cycle asks SIGNL4 once which alerts changed since the last cycle
(``POST /v2/alerts/paged`` with ``modifiedSince``, minus an overlap), keeps those this connector raised, and turns
what it finds into the same event envelope the outbound webhook would have delivered, with deterministic ids
(``poll:<alert>:ack``, ``poll:<alert>:close``, ``poll:annotation:<id>``), in the same inbox. A change seen twice,
or seen by the webhook too in ``both`` mode, is therefore processed once.

Calls per cycle, bounded: one paged search (one page per 100 changed alerts), plus one annotations read per changed
alert of ours that carries annotations (at most ``max_alerts``), plus ``GET /v2/users`` at most once per
``users_ttl``. An idle cycle costs one call.

Annotations are read from v1 ``GET /alerts/{id}/annotations`` (official) or the v2 ``GET /v2/alerts/{id}/timeline``
(derived), whichever answers (:meth:`Signl4Client.list_annotations`). The path that answered is kept in the store
(cursor ``signl4_annotations_path``), so a restart does not probe the other one again. When neither answers, the
warning is logged once, every cycle's report names the Signls whose notes were not read, and the cursor moves on:
acknowledgements and closes still sync.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import structlog

from sentinel_signl4.clients.signl4 import AnnotationsUnavailableError, Signl4Client
from sentinel_signl4.clients.signl4_reads import ANNOTATION_PATHS
from sentinel_signl4.domain.signl4_events import parse_signl4_time
from sentinel_signl4.engine.report import PollReport
from sentinel_signl4.store import InboxEvent, Link, StateStore

__all__ = ["Signl4Poller"]

log = structlog.get_logger("sentinel_signl4.signl4_poll")

POLL_CURSOR = "signl4_polled_at"
ANNOTATIONS_PATH_CURSOR = "signl4_annotations_path"
UNREADABLE = ("neither GET /alerts/{id}/annotations (v1) nor GET /v2/alerts/{id}/timeline answered; "
              "acknowledgements and closes are still synced")
OVERLAP = timedelta(minutes=2)  # clocks differ; the inbox de-duplicates what is seen twice
HAS_ANNOTATIONS = 2  # alert flag bit (reference signl4-api.md §3.3 "Other useful enums")
STATUS_ACKNOWLEDGED, STATUS_CLOSED = 2, 4


class Signl4Poller:
    def __init__(self, connector: str, *, client: Signl4Client, store: StateStore, interval: timedelta,
                 lookback: timedelta = timedelta(hours=24), max_alerts: int = 200,
                 users_ttl: timedelta = timedelta(minutes=10)) -> None:
        self.connector = connector
        self.client = client
        self.store = store
        self.interval = interval
        self.lookback = lookback
        self.max_alerts = max_alerts
        self.users_ttl = users_ttl
        self._users: dict[str, dict[str, Any]] = {}
        self._users_at: datetime | None = None
        #: Alerts already turned into events during a catch-up that has not reached the end (id → alert as read).
        self._read: dict[str, dict[str, Any]] = {}
        self.calls = 0
        self._stored_path: str | None = None
        self._path_loaded = False
        self._warned_unreadable = False

    async def poll(self, now: datetime, report: PollReport) -> None:
        last = await self.store.get_cursor(self.connector, POLL_CURSOR)
        since = datetime.fromisoformat(last) if last else now - self.lookback
        if now - since < self.interval:
            return
        self.calls += 1
        changed = await self.client.list_alerts_modified_since(since - OVERLAP)
        ours: list[tuple[Link, dict[str, Any]]] = []
        for alert in changed:
            external_id = alert.get("externalId")
            if isinstance(external_id, str) and external_id:
                link = await self.store.get_link_by_external_id(self.connector, external_id)
                if link is not None:
                    ours.append((link, alert))
        # While a catch-up spans cycles, an alert read in an earlier cycle is skipped unless it changed since: the
        # search lists newest first, so without this every cycle would read the same newest ones again.
        todo = [(link, alert) for link, alert in ours if self._read.get(str(alert.get("id"))) != alert]
        if todo:
            await self._refresh_users(now)
            await self._load_annotations_path()
        unreadable: list[str] = []
        for link, alert in todo[: self.max_alerts]:
            await self._events_of(link, alert, now, unreadable)
            self._read[str(alert.get("id"))] = alert
        await self._store_annotations_path()
        if unreadable:
            report.errors.append(f"signl4 poll: annotations of {len(unreadable)} Signl(s) not read "
                                 f"(#{', #'.join(unreadable)}): {UNREADABLE}")
        if len(todo) > self.max_alerts:
            log.warning("signl4_poll_truncated", connector=self.connector, changed=len(todo), limit=self.max_alerts)
            return  # keep the cursor: the rest is picked up next cycle
        self._read.clear()
        await self.store.set_cursor(self.connector, POLL_CURSOR, now.isoformat())

    async def _load_annotations_path(self) -> None:
        """Once per process: the annotation path that answered before a restart is tried first."""
        if self._path_loaded:
            return
        self._path_loaded = True
        self._stored_path = await self.store.get_cursor(self.connector, ANNOTATIONS_PATH_CURSOR)
        if self.client.annotations_path is None and self._stored_path in ANNOTATION_PATHS:
            self.client.annotations_path = self._stored_path

    async def _store_annotations_path(self) -> None:
        path = self.client.annotations_path
        if path is not None and path != self._stored_path:
            await self.store.set_cursor(self.connector, ANNOTATIONS_PATH_CURSOR, path)
            self._stored_path = path

    async def _annotations(self, link: Link, alert_id: str, unreadable: list[str]) -> list[dict[str, Any]]:
        try:
            return await self.client.list_annotations(alert_id)
        except AnnotationsUnavailableError as exc:
            if not self._warned_unreadable:
                self._warned_unreadable = True
                log.warning("signl4_annotations_unreadable", connector=self.connector, error=exc.message)
            unreadable.append(str(link.incident_number))
            return []

    async def _events_of(self, link: Link, alert: dict[str, Any], now: datetime, unreadable: list[str]) -> None:
        alert_id = str(alert.get("id"))
        status = alert.get("status")
        raw_history = alert.get("history")
        history: dict[str, Any] = raw_history if isinstance(raw_history, dict) else {}
        acks = history.get("acknowledgements") or []
        if status in (STATUS_ACKNOWLEDGED, STATUS_CLOSED) and acks:
            await self._add(f"poll:{alert_id}:ack", 201, STATUS_ACKNOWLEDGED, link, alert_id, _last_user_id(acks),
                            history.get("acknowledgedAt"), now)
        flags = alert.get("flags")
        if isinstance(flags, int) and flags & HAS_ANNOTATIONS:
            self.calls += 1
            for note in await self._annotations(link, alert_id, unreadable):
                if note.get("id"):
                    await self._add(f"poll:annotation:{note['id']}", 203, 0, link, alert_id, note.get("userId"),
                                    note.get("timestamp"), now,
                                    annotation={"id": note["id"], "message": note.get("text", "")})
        if status == STATUS_CLOSED:
            closed_by = history.get("closedBy")
            await self._add(f"poll:{alert_id}:close", 201, STATUS_CLOSED, link, alert_id,
                            closed_by if isinstance(closed_by, str) else None, history.get("closedAt"), now)

    async def _refresh_users(self, now: datetime) -> None:
        if self._users_at is not None and now - self._users_at < self.users_ttl:
            return
        self.calls += 1
        self._users = {str(u["id"]): u for u in await self.client.list_users() if u.get("id")}
        self._users_at = now

    async def _add(self, event_id: str, event_type: int, status: int, link: Link, alert_id: str, user_id: Any,
                   raised: Any, now: datetime, annotation: dict[str, Any] | None = None) -> None:
        user = self._users.get(str(user_id)) if user_id else None
        when = parse_signl4_time(raised) or now
        payload: dict[str, Any] = {
            "id": event_id, "eventType": event_type, "eventRaisedUtc": when.isoformat(),
            "alert": {"statusCode": status, "eventId": link.event_id, "externalEventId": link.external_id,
                      "id": alert_id},
            "user": {"id": user_id, "username": user.get("name"), "mailaddress": user.get("mail")} if user else None,
            "source": "poll",
        }
        if annotation is not None:
            payload["annotation"] = annotation
        # received_at = when it happened in SIGNL4, so the inbox processes a cycle's finds in their real order.
        await self.store.add_inbox(InboxEvent(connector=self.connector, event_id=event_id, payload=payload,
                                              received_at=when))


def _last_user_id(acks: Any) -> str | None:
    if isinstance(acks, list):
        for item in reversed(acks):
            if isinstance(item, dict) and item.get("userId"):
                return str(item["userId"])
            if isinstance(item, str):
                return item
    return None
