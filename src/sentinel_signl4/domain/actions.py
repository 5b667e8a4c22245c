"""What each outbox row asks for, typed: one frozen dataclass per ``ActionKind``, each with its record codec.

The store keeps a row's payload as JSON (``to_record``). Records carry ``"v"``, the version of their form; records
written before versions existed have none and are read as version 1, whose keys they already use. A record of a
later version than this code knows, or one that lacks what its kind needs, raises ``PayloadError`` (the outbox
dead-letters such a row with that message instead of guessing; ``outbox retry`` brings it back).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sentinel_signl4.domain.enums import ActionKind
from sentinel_signl4.domain.signl import SignlRequest
from sentinel_signl4.domain.signl4_events import Signl4Event

__all__ = [
    "RECORD_VERSION",
    "ActionPayload",
    "AddComment",
    "AnnotateSignl",
    "PayloadError",
    "RaiseSignl",
    "ResolveSignl",
    "TagIncident",
    "UpdateIncident",
    "UpdateOp",
    "payload_of",
]

RECORD_VERSION = 1


class PayloadError(ValueError):
    """A row's payload is not one this version can read (a later version wrote it, or it was edited by hand)."""


class UpdateOp(StrEnum):
    """What an ``update_incident`` row does to the incident."""

    ACKNOWLEDGE = "acknowledge"
    CLOSE = "close"


def _version(record: Mapping[str, Any], kind: ActionKind) -> None:
    version = record.get("v", 1)
    if version != RECORD_VERSION:
        raise PayloadError(f"{kind.value} record version {version!r} is not known (this version reads "
                         f"{RECORD_VERSION})")


def _required(record: Mapping[str, Any], key: str, kind: ActionKind) -> Any:
    if record.get(key) is None:
        raise PayloadError(f"{kind.value} record has no {key!r}")
    return record[key]


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class RaiseSignl:
    """Send one Signl. ``generation`` counts re-raises of a reopened incident (None: the connector's current)."""

    KIND = ActionKind.RAISE_SIGNL

    request: SignlRequest
    incident_number: int = 0
    incident_created: datetime | None = None
    severity: str | None = None
    incident_url: str | None = None
    generation: int | None = None

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "v": RECORD_VERSION, "request": self.request.to_record(), "incident_number": self.incident_number,
            "incident_created": self.incident_created.isoformat() if self.incident_created else None,
        }
        # Written only when known, as before versions existed (readers of old rows find the same keys).
        for key, value in (("severity", self.severity), ("incident_url", self.incident_url),
                           ("generation", self.generation)):
            if value is not None:
                record[key] = value
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> RaiseSignl:
        _version(record, cls.KIND)
        request = _required(record, "request", cls.KIND)
        if not isinstance(request, Mapping):
            raise PayloadError("raise_signl record's 'request' is not an object")
        created = record.get("incident_created")
        number, generation = record.get("incident_number", 0), record.get("generation")
        return cls(
            request=SignlRequest.from_record(request),
            incident_number=number if isinstance(number, int) else 0,
            incident_created=datetime.fromisoformat(created) if isinstance(created, str) and created else None,
            severity=_opt_str(record.get("severity")), incident_url=_opt_str(record.get("incident_url")),
            generation=generation if isinstance(generation, int) else None,
        )


@dataclass(frozen=True, slots=True)
class TagIncident:
    KIND = ActionKind.TAG_INCIDENT

    tag: str

    def to_record(self) -> dict[str, Any]:
        return {"v": RECORD_VERSION, "tag": self.tag}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> TagIncident:
        _version(record, cls.KIND)
        return cls(tag=str(_required(record, "tag", cls.KIND)))


@dataclass(frozen=True, slots=True)
class UpdateIncident:
    """Apply a SIGNL4 acknowledgement or close to the incident (its owner, status, classification)."""

    KIND = ActionKind.UPDATE_INCIDENT

    op: UpdateOp
    event: Signl4Event

    def to_record(self) -> dict[str, Any]:
        return {"v": RECORD_VERSION, "op": self.op.value, "event": self.event.to_record()}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> UpdateIncident:
        _version(record, cls.KIND)
        op = _required(record, "op", cls.KIND)
        try:
            parsed = UpdateOp(op)
        except ValueError:
            raise PayloadError(f"unknown update op {op!r}") from None
        return cls(op=parsed, event=Signl4Event.from_record(record.get("event", {})))


@dataclass(frozen=True, slots=True)
class AddComment:
    """Write a comment under a caller-chosen id. ``event``: the SIGNL4 event it reports, whose Signl's incident
    it goes to (that incident may have been merged since); None for the connector's own notes."""

    KIND = ActionKind.ADD_COMMENT

    comment_id: str
    message: str
    event: Signl4Event | None = None

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"v": RECORD_VERSION, "comment_id": self.comment_id, "message": self.message}
        if self.event is not None:
            record["event"] = self.event.to_record()
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> AddComment:
        _version(record, cls.KIND)
        event = record.get("event")
        return cls(comment_id=str(_required(record, "comment_id", cls.KIND)),
                   message=str(_required(record, "message", cls.KIND)),
                   event=Signl4Event.from_record(event) if event is not None else None)


@dataclass(frozen=True, slots=True)
class ResolveSignl:
    KIND = ActionKind.RESOLVE_SIGNL

    external_id: str

    def to_record(self) -> dict[str, Any]:
        return {"v": RECORD_VERSION, "external_id": self.external_id}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ResolveSignl:
        _version(record, cls.KIND)
        return cls(external_id=str(_required(record, "external_id", cls.KIND)))


@dataclass(frozen=True, slots=True)
class AnnotateSignl:
    KIND = ActionKind.ANNOTATE_SIGNL

    external_id: str
    text: str

    def to_record(self) -> dict[str, Any]:
        return {"v": RECORD_VERSION, "external_id": self.external_id, "text": self.text}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> AnnotateSignl:
        _version(record, cls.KIND)
        return cls(external_id=str(_required(record, "external_id", cls.KIND)),
                   text=str(_required(record, "text", cls.KIND)))


ActionPayload = RaiseSignl | TagIncident | UpdateIncident | AddComment | ResolveSignl | AnnotateSignl

_BY_KIND: dict[ActionKind, type[ActionPayload]] = {
    cls.KIND: cls for cls in (RaiseSignl, TagIncident, UpdateIncident, AddComment, ResolveSignl, AnnotateSignl)
}


def payload_of(kind: ActionKind, record: Mapping[str, Any]) -> ActionPayload:
    """The typed payload of a row of ``kind``. ``PayloadError`` when ``record`` is not one this version reads."""
    try:
        return _BY_KIND[kind].from_record(record)
    except PayloadError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise PayloadError(f"{kind.value} record cannot be read: {exc}") from None
