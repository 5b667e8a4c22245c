"""No-inbound mode: poll the SIGNL4 REST API for the linked Signls' status and annotations.

For networks that take no inbound calls. Each poll turns what it finds into the same event envelope the outbound
webhook would have delivered, with deterministic ids (``poll:<alert>:ack``, ``poll:annotation:<id>``), and puts it
in the same inbox — so a change seen twice (or seen by the webhook too, in ``both`` mode) is processed once.

Call budget per cycle, bounded and documented: at most ``max_alerts`` open Signls are looked at per cycle, least
recently polled first; each costs one ``GET /v2/alerts/{id}`` plus one ``GET /v2/alerts/{id}/annotations`` when the
alert's flags say it has annotations (and, once per Signl, one ``GET /v2/events/{eventId}`` to learn its alert id).
The team's user list (``GET /v2/users``) is fetched at most once every ``users_ttl``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import structlog

from sentinel_signl4.clients.errors import NotFoundError
from sentinel_signl4.clients.signl4 import Signl4Client
from sentinel_signl4.engine.report import PollReport
from sentinel_signl4.store import InboxEvent, Link, StateStore

__all__ = ["Signl4Poller"]

log = structlog.get_logger("sentinel_signl4.signl4_poll")

POLL_CURSOR = "signl4_polled_at"
HAS_ANNOTATIONS = 2  # alert flag bit (reference signl4-api.md §3.3 "Other useful enums")
STATUS_ACKNOWLEDGED, STATUS_CLOSED = 2, 4


class Signl4Poller:
    def __init__(self, connector: str, *, client: Signl4Client, store: StateStore, interval: timedelta,
                 max_alerts: int = 50, users_ttl: timedelta = timedelta(minutes=10)) -> None:
        self.connector = connector
        self.client = client
        self.store = store
        self.interval = interval
        self.max_alerts = max_alerts
        self.users_ttl = users_ttl
        self._users: dict[str, dict[str, Any]] = {}
        self._users_at: datetime | None = None
        self.calls = 0
        self._now = datetime.min

    async def poll(self, now: datetime, report: PollReport) -> None:
        last = await self.store.get_cursor(self.connector, POLL_CURSOR)
        if last is not None and now - datetime.fromisoformat(last) < self.interval:
            return
        self._now = now
        links = await self.store.open_links(self.connector, limit=10_000)
        links.sort(key=lambda link: str(link.data.get("polled_at", "")))
        for link in links[: self.max_alerts]:
            await self._poll_link(link, now)
        await self.store.set_cursor(self.connector, POLL_CURSOR, now.isoformat())

    async def _poll_link(self, link: Link, now: datetime) -> None:
        alert_id = link.alert_id or await self._alert_id(link)
        if alert_id is None:
            return
        try:
            alert = await self._call(self.client.get_alert(alert_id))
        except NotFoundError:
            log.warning("signl_not_found", connector=self.connector, alert_id=alert_id)
            return
        await self._refresh_users(now)
        status = alert.get("status")
        history = alert.get("history") if isinstance(alert.get("history"), dict) else {}
        if status in (STATUS_ACKNOWLEDGED, STATUS_CLOSED):
            acks = history.get("acknowledgements") or []
            ack_user = _last_user_id(acks)
            ack_at = history.get("acknowledgedAt") or now.isoformat()
            if ack_user or status == STATUS_ACKNOWLEDGED:
                await self._add(f"poll:{alert_id}:ack", 201, STATUS_ACKNOWLEDGED, link, alert_id, ack_user, ack_at)
        if status == STATUS_CLOSED:
            closed_by = history.get("closedBy")
            await self._add(f"poll:{alert_id}:close", 201, STATUS_CLOSED, link, alert_id,
                            closed_by if isinstance(closed_by, str) else None,
                            history.get("closedAt") or now.isoformat())
        flags = alert.get("flags")
        if isinstance(flags, int) and flags & HAS_ANNOTATIONS:
            for note in await self._call(self.client.list_annotations(alert_id)):
                note_id = note.get("id")
                if note_id:
                    await self._add(f"poll:annotation:{note_id}", 203, 0, link, alert_id, note.get("userId"),
                                    note.get("timestamp") or now.isoformat(),
                                    annotation={"id": note_id, "message": note.get("text", "")})
        await self.store.put_link(replace(link, alert_id=alert_id, data={**link.data, "polled_at": now.isoformat()}),
                                  now)

    async def _alert_id(self, link: Link) -> str | None:
        if link.event_id:
            event = await self._call(self.client.get_event(link.event_id))
            for target in event.get("targets") or []:
                if isinstance(target, dict) and target.get("alertId"):
                    return str(target["alertId"])
        found = await self._call(self.client.find_alerts_by_external_id(link.external_id))
        return str(found[0]["id"]) if found and found[0].get("id") else None

    async def _refresh_users(self, now: datetime) -> None:
        if self._users_at is not None and now - self._users_at < self.users_ttl:
            return
        users = await self._call(self.client.list_users())
        self._users = {str(u["id"]): u for u in users if u.get("id")}
        self._users_at = now

    async def _add(self, event_id: str, event_type: int, status: int, link: Link, alert_id: str,
                   user_id: Any, raised: Any, annotation: dict[str, Any] | None = None) -> None:
        user = self._users.get(str(user_id)) if user_id else None
        payload: dict[str, Any] = {
            "id": event_id, "eventType": event_type, "eventRaisedUtc": raised,
            "alert": {"statusCode": status, "eventId": link.event_id, "externalEventId": link.external_id,
                      "id": alert_id},
            "user": {"id": user_id, "username": user.get("name"), "mailaddress": user.get("mail")} if user else None,
            "source": "poll",
        }
        if annotation is not None:
            payload["annotation"] = annotation
        await self.store.add_inbox(InboxEvent(connector=self.connector, event_id=event_id, payload=payload,
                                              received_at=self._now))

    async def _call(self, awaitable: Any) -> Any:
        self.calls += 1
        return await awaitable


def _last_user_id(acks: Any) -> str | None:
    if isinstance(acks, list):
        for item in reversed(acks):
            if isinstance(item, dict) and item.get("userId"):
                return str(item["userId"])
            if isinstance(item, str):
                return item
    return None
