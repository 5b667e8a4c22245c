"""SIGNL4's REST API as the engine's ``Signl4Changes`` port: which alerts changed, and what happened to each.

This module owns the wire knowledge of polling (reference signl4-api.md §3.3): the alert ``status`` codes, the
``flags`` bit that says an alert carries annotations, the ``history`` object (``acknowledgements``,
``acknowledgedAt``, ``closedBy``, ``closedAt``), the annotation shape ``{id, text, userId, timestamp}`` and the users
list. It turns them into :class:`Signl4Event` values with deterministic ids (``poll:<alert>:ack``,
``poll:<alert>:close``, ``poll:annotation:<id>``), so the same change read twice is one inbox row.

Calls: one paged search per :meth:`changed_since`; per alert with annotations one annotations read; ``GET
/v2/users`` at most once per ``users_ttl``, and only when an alert is read.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import structlog

from sentinel_signl4.clients.signl4 import AnnotationsUnavailableError, Signl4Client
from sentinel_signl4.clients.signl4_reads import ANNOTATION_PATHS
from sentinel_signl4.domain.signl4_events import EventKind, Signl4Event, Signl4User, parse_signl4_time, text_or_none
from sentinel_signl4.engine.ports import AlertEvents, ChangedAlert

__all__ = ["Signl4ChangeFeed"]

log = structlog.get_logger("sentinel_signl4.signl4_poll")

HAS_ANNOTATIONS = 2  # alert flag bit (reference signl4-api.md §3.3 "Other useful enums")
STATUS_ACKNOWLEDGED, STATUS_CLOSED = 2, 4
STATUS_CHANGED = 201  # webhook eventType of a status change; polled events carry the type the webhook would
ANNOTATED = 203


class Signl4ChangeFeed:
    def __init__(self, client: Signl4Client, *, users_ttl: timedelta = timedelta(minutes=10)) -> None:
        self.client = client
        self.users_ttl = users_ttl
        self.calls = 0
        self._alerts: dict[str, dict[str, Any]] = {}  # alert id → the alert as the last search listed it
        self._users: dict[str, dict[str, Any]] = {}
        self._users_at: datetime | None = None

    @property
    def annotations_path(self) -> str | None:
        return self.client.annotations_path

    @annotations_path.setter
    def annotations_path(self, path: str | None) -> None:
        if path is None or path in ANNOTATION_PATHS:
            self.client.annotations_path = path

    async def changed_since(self, since: datetime) -> list[ChangedAlert]:
        self.calls += 1
        changed = await self.client.list_alerts_modified_since(since)
        self._alerts = {}
        found = []
        for alert in changed:
            alert_id, external_id = alert.get("id"), alert.get("externalId")
            if alert_id is None or not isinstance(external_id, str) or not external_id:
                continue  # not raised through the webhook with an ExternalID: never one of ours
            self._alerts[str(alert_id)] = alert
            found.append(ChangedAlert(alert_id=str(alert_id), external_id=external_id,
                                      revision=json.dumps(alert, sort_keys=True, default=str)))
        return found

    async def events_of(self, alert: ChangedAlert, now: datetime) -> AlertEvents:
        raw = self._alerts.get(alert.alert_id)
        if raw is None:
            raise KeyError(f"alert {alert.alert_id} was not listed by the last changed_since")
        await self._refresh_users(now)
        status = raw.get("status")
        raw_history = raw.get("history")
        history: dict[str, Any] = raw_history if isinstance(raw_history, dict) else {}
        acks = history.get("acknowledgements") or []
        events: list[Signl4Event] = []
        unreadable = None
        if status in (STATUS_ACKNOWLEDGED, STATUS_CLOSED) and acks:
            events.append(self._event(f"poll:{alert.alert_id}:ack", EventKind.ACKNOWLEDGED, STATUS_CHANGED, alert,
                                      _last_user_id(acks), history.get("acknowledgedAt"), now))
        flags = raw.get("flags")
        if isinstance(flags, int) and flags & HAS_ANNOTATIONS:
            self.calls += 1
            try:
                notes = await self.client.list_annotations(alert.alert_id)
            except AnnotationsUnavailableError as exc:
                notes, unreadable = [], exc.message
            for note in notes:
                if note.get("id"):
                    events.append(self._event(f"poll:annotation:{note['id']}", EventKind.ANNOTATED, ANNOTATED, alert,
                                              note.get("userId"), note.get("timestamp"), now,
                                              note=(str(note["id"]), note.get("text", ""))))
        if status == STATUS_CLOSED:
            closed_by = history.get("closedBy")
            events.append(self._event(f"poll:{alert.alert_id}:close", EventKind.CLOSED, STATUS_CHANGED, alert,
                                      closed_by if isinstance(closed_by, str) else None, history.get("closedAt"),
                                      now))
        return AlertEvents(events=events, annotations_unreadable=unreadable)

    def _event(self, event_id: str, kind: EventKind, event_type: int, alert: ChangedAlert, user_id: Any,
               raised: Any, now: datetime, note: tuple[str, Any] | None = None) -> Signl4Event:
        # Only a user the team's list knows is named: an id alone says nothing a responder would recognise.
        user = self._users.get(str(user_id)) if user_id else None
        text = note[1] if note else None
        return Signl4Event(
            event_id=event_id, kind=kind, event_type=event_type, raised_at=parse_signl4_time(raised) or now,
            external_id=alert.external_id, alert_id=alert.alert_id,
            user=Signl4User.of(user_id, user.get("name"), user.get("mail")) if user else None,
            annotation=text_or_none(text),
            annotation_id=note[0] if note else None,
        )

    async def _refresh_users(self, now: datetime) -> None:
        if self._users_at is not None and now - self._users_at < self.users_ttl:
            return
        self.calls += 1
        self._users = {str(u["id"]): u for u in await self.client.list_users() if u.get("id")}
        self._users_at = now


def _last_user_id(acks: Any) -> str | None:
    if isinstance(acks, list):
        for item in reversed(acks):
            if isinstance(item, dict) and item.get("userId"):
                return str(item["userId"])
            if isinstance(item, str):
                return item
    return None
