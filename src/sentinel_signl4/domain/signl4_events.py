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

__all__ = ["EVENT_RECORD_VERSION", "EventKind", "Signl4Event", "Signl4User", "parse_event", "parse_signl4_time",
           "text_or_none"]

#: Version of :meth:`Signl4Event.to_record`'s form. Records written before it existed carry no ``v`` and are v1.
EVENT_RECORD_VERSION = 1

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

    @classmethod
    def of(cls, user_id: Any, name: Any, mail: Any) -> Signl4User | None:
        """A user from loosely typed fields (blank strings are absent); None when nothing identifies anyone."""
        user = cls(id=_str(user_id), name=_str(name), mail=_str(mail))
        return user if (user.id or user.name or user.mail) else None


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

    def to_record(self) -> dict[str, Any]:
        """The JSON form kept in the store (inbox rows of polled events, the ``event`` of outbox payloads)."""
        user = self.user
        return {
            "v": EVENT_RECORD_VERSION, "id": self.event_id, "kind": self.kind.value, "type": self.event_type,
            "raised_at": self.raised_at.isoformat() if self.raised_at else None,
            "external_id": self.external_id, "alert_id": self.alert_id,
            "user": {"id": user.id, "name": user.name, "mail": user.mail} if user else None,
            "annotation": self.annotation, "annotation_id": self.annotation_id,
        }

    @classmethod
    def from_record(cls, record: Any) -> Signl4Event:
        """Read :meth:`to_record`'s form, also as written before it carried ``v``. ``ValueError`` when ``record``
        is not such a record (or of a later version than this code knows)."""
        if not isinstance(record, Mapping):
            raise ValueError("event record is not an object")
        version = record.get("v", 1)
        if version != EVENT_RECORD_VERSION:
            raise ValueError(f"event record version {version!r} is not known (this version reads "
                             f"{EVENT_RECORD_VERSION})")
        user = _obj(record.get("user"))
        raised = record.get("raised_at")
        event_type = record.get("type", 0)
        return cls(
            event_id=str(record.get("id", "")), kind=EventKind(record.get("kind", "other")),
            event_type=event_type if isinstance(event_type, int) else 0,
            raised_at=datetime.fromisoformat(raised) if isinstance(raised, str) and raised else None,
            external_id=_str(record.get("external_id")), alert_id=_str(record.get("alert_id")),
            user=Signl4User.of(user.get("id"), user.get("name"), user.get("mail")),
            annotation=_str(record.get("annotation")), annotation_id=_str(record.get("annotation_id")),
        )

    @classmethod
    def from_inbox(cls, payload: Mapping[str, Any]) -> Signl4Event:
        """An inbox row's event: a webhook envelope as SIGNL4 delivered it (it has ``eventType``, see
        :func:`parse_event`), or a polled event stored as :meth:`to_record`. ``ValueError`` when it is neither."""
        if "eventType" in payload:
            return parse_event(payload)
        event = cls.from_record(payload)
        if not event.event_id:
            raise ValueError("event has no id")
        return event


def parse_event(payload: Mapping[str, Any]) -> Signl4Event:
    """Parse one event. Raises ``ValueError`` only when ``id`` or ``eventType`` is missing or of the wrong type."""
    event_id = payload.get("id")
    event_type = payload.get("eventType")
    if not isinstance(event_id, str | int) or isinstance(event_id, bool) or str(event_id) == "":
        raise ValueError("event has no id")
    if not isinstance(event_type, int) or isinstance(event_type, bool):
        raise ValueError("event has no integer eventType")
    alert = _obj(payload.get("alert"))
    user_obj = _obj(payload.get("user"))
    user = Signl4User.of(user_obj.get("id"), user_obj.get("username"), user_obj.get("mailaddress"))
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


def text_or_none(value: Any) -> str | None:
    """A loosely typed field as text: stripped, None when absent, blank or a boolean."""
    return _str(value)


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
