"""SIGNL4 outbound-webhook events, parsed at the edge into a small typed form.

Envelope (reference signl4-api.md §2.3): ``eventType`` 200 new, 201 status changed (``alert.statusCode`` 2 =
acknowledged, 4 = closed — the docs table says 2 for closed, which is wrong), 202 escalated, 203 annotated;
300–303 duty events; 1 a test ping. Unknown and missing keys and ``null``s are tolerated: live payloads may carry
more fields than the documented samples (Enterprise Alert's richer envelope, an ``annotation`` on a 201).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

__all__ = ["EventKind", "Signl4Event", "Signl4User", "parse_event", "parse_signl4_time"]

STATUS_ACKNOWLEDGED = 2
STATUS_CLOSED = 4


class EventKind(StrEnum):
    CREATED = "created"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"
    ESCALATED = "escalated"
    ANNOTATED = "annotated"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Signl4User:
    id: str | None = None
    name: str | None = None
    mail: str | None = None

    def describe(self) -> str:
        if self.name and self.mail:
            return f"{self.name} ({self.mail})"
        return self.name or self.mail or "an unknown user"


@dataclass(frozen=True, slots=True)
class Signl4Event:
    event_id: str
    kind: EventKind
    event_type: int
    raised_at: datetime | None
    external_id: str | None
    alert_id: str | None
    user: Signl4User | None
    annotation: str | None
    annotation_id: str | None

    @property
    def intent_id(self) -> str:
        """What happened, independent of how we learned it.

        The same acknowledgement reaches us as a webhook notification (its own ``id``) and, in ``both`` mode, as a
        change found by polling the REST API (a different id). Keys derived from the alert, the acting user and the
        annotation make both deliveries one intent, so Sentinel gets one comment, not two.
        """
        user = (self.user.id or self.user.mail or "") if self.user else ""
        if self.kind is EventKind.ACKNOWLEDGED and self.alert_id:
            return f"{self.alert_id}:ack:{user}"
        if self.kind is EventKind.CLOSED and self.alert_id:
            return f"{self.alert_id}:close"
        if self.kind is EventKind.ANNOTATED and self.annotation_id:
            return f"annotation:{self.annotation_id}"
        return f"event:{self.event_id}"


def parse_event(payload: Mapping[str, Any]) -> Signl4Event:
    """Parse one event. Raises ``ValueError`` only when ``id`` or ``eventType`` is missing or of the wrong type."""
    event_id = payload.get("id")
    event_type = payload.get("eventType")
    if not isinstance(event_id, str | int) or isinstance(event_id, bool) or str(event_id) == "":
        raise ValueError("event has no id")
    if not isinstance(event_type, int) or isinstance(event_type, bool):
        raise ValueError("event has no integer eventType")
    alert = _obj(payload.get("alert"))
    user_obj = payload.get("user")
    user = None
    if isinstance(user_obj, Mapping):
        user = Signl4User(id=_str(user_obj.get("id")), name=_str(user_obj.get("username")),
                          mail=_str(user_obj.get("mailaddress")))
        if not (user.id or user.name or user.mail):
            user = None
    annotation = _obj(payload.get("annotation"))
    status = alert.get("statusCode")
    kind = EventKind.OTHER
    if event_type == 200:
        kind = EventKind.CREATED
    elif event_type == 201 and status == STATUS_ACKNOWLEDGED:
        kind = EventKind.ACKNOWLEDGED
    elif event_type == 201 and status == STATUS_CLOSED:
        kind = EventKind.CLOSED
    elif event_type == 202:
        kind = EventKind.ESCALATED
    elif event_type == 203:
        kind = EventKind.ANNOTATED
    return Signl4Event(
        event_id=str(event_id), kind=kind, event_type=event_type,
        raised_at=parse_signl4_time(payload.get("eventRaisedUtc")),
        external_id=_str(alert.get("externalEventId")), alert_id=_str(alert.get("id")), user=user,
        annotation=_str(annotation.get("message")), annotation_id=_str(annotation.get("id")),
    )


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _str(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    return text or None


def parse_signl4_time(value: Any) -> datetime | None:
    """SIGNL4 timestamps: ISO 8601, up to 7 fractional digits (or none), ``Z``; None if unparseable."""
    if not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00")
    # SIGNL4 sends 7 fractional digits; Python's parser takes at most 6.
    if "." in text:
        head, _, tail = text.partition(".")
        digits = "".join(ch for ch in tail if ch.isdigit())
        zone = tail[len(digits):]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
