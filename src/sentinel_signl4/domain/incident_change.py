"""What a write changes on an incident, decided from the incident as just read. Vendor-neutral and pure.

An adapter (``sources/sentinel.py``, ``sources/graph.py``) reads the incident, asks one of the functions here for the
:class:`IncidentChange`, and maps that to its own wire format (Sentinel: the full writable set, PUT with the etag;
Graph: a PATCH of only what changes). Whenever it reads again (Sentinel's re-apply after a 409), it decides again.

Rules, whatever order events arrive in (duplicates and late deliveries are normal):

* **Acknowledge** moves **New → Active** only and assigns the responder when the incident is not already theirs. A
  closed incident is never reopened and its owner is left alone; only labels still missing are added to it.
* **Close** sets **Closed** with the classification in force and its comment, and assigns the responder only when
  nobody is assigned. An incident that is closed already gets nothing at all (an analyst's verdict is kept, and no
  label is written either).
* **Tag** adds the labels that are missing, compared case-insensitively.

Owners: each source assigns by one identifier (Sentinel: object id, else UPN; Graph's free-text ``assignedTo``: UPN,
else e-mail), so the adapter narrows the :class:`OwnerRef` with :meth:`OwnerRef.only` before deciding. The incident
is already the wanted owner's when that identifier equals the same identifier of its owner, or its owner's name (a
source that keeps only free text). Somebody is assigned when the owner has an identifier or a name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from sentinel_signl4.domain.enums import IncidentStatus
from sentinel_signl4.domain.incident import Incident, Owner
from sentinel_signl4.domain.sync import ClassificationChoice

__all__ = [
    "IncidentChange",
    "OwnerRef",
    "acknowledge_change",
    "close_change",
    "is_assigned",
    "is_owner",
    "missing_labels",
    "tag_change",
]

OwnerKind = Literal["object_id", "upn", "email"]


@dataclass(frozen=True, slots=True)
class OwnerRef:
    """Who to assign: an Entra object id and/or a user principal name / e-mail address."""

    object_id: str | None = None
    upn: str | None = None
    email: str | None = None

    def only(self, *kinds: OwnerKind) -> OwnerRef | None:
        """This owner by the first of ``kinds`` it has (the identifier a source assigns by); ``None`` if none."""
        for kind in kinds:
            if kind == "object_id" and self.object_id:
                return OwnerRef(object_id=self.object_id)
            if kind == "upn" and self.upn:
                return OwnerRef(upn=self.upn)
            if kind == "email" and self.email:
                return OwnerRef(email=self.email)
        return None

    @property
    def identifier(self) -> str | None:
        """The object id, else the UPN, else the e-mail address."""
        return self.object_id or self.upn or self.email or None


@dataclass(frozen=True, slots=True)
class IncidentChange:
    """The properties a write sets; ``None`` / empty leaves a property as it is."""

    status: IncidentStatus | None = None
    owner: OwnerRef | None = None
    classification: ClassificationChoice | None = None
    classification_comment: str = ""
    labels: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when nothing is to be written."""
        return self.status is None and self.owner is None and self.classification is None and not self.labels


def _same(value: str | None, wanted: str) -> bool:
    return isinstance(value, str) and value.casefold() == wanted.casefold()


def is_owner(owner: Owner, wanted: OwnerRef) -> bool:
    """True when ``owner`` already is ``wanted``: an identifier of ``wanted`` equals the same identifier of
    ``owner``, or ``owner``'s name (compared case-insensitively)."""
    pairs = ((wanted.object_id, owner.object_id), (wanted.upn, owner.upn), (wanted.email, owner.email))
    return any(want and (_same(have, want) or _same(owner.name, want)) for want, have in pairs)


def is_assigned(owner: Owner) -> bool:
    """True when somebody is assigned: an identifier, or a name that is not blank."""
    return owner.is_set or bool(owner.name and owner.name.strip())


def missing_labels(incident: Incident, tags: Iterable[str]) -> tuple[str, ...]:
    """``tags`` that ``incident`` does not carry yet (case-insensitive), each once, in the order given."""
    missing: list[str] = []
    for tag in tags:
        if not incident.has_label(tag) and all(tag.casefold() != m.casefold() for m in missing):
            missing.append(tag)
    return tuple(missing)


def acknowledge_change(incident: Incident, owner: OwnerRef | None, tags: Iterable[str] = ()) -> IncidentChange:
    """New → Active and ``owner`` (narrowed by the adapter) when it differs; only labels on a closed incident."""
    labels = missing_labels(incident, tags)
    if incident.status is IncidentStatus.CLOSED:
        return IncidentChange(labels=labels)
    return IncidentChange(
        status=IncidentStatus.ACTIVE if incident.status is IncidentStatus.NEW else None,
        owner=owner if owner is not None and not is_owner(incident.owner, owner) else None,
        labels=labels,
    )


def close_change(incident: Incident, choice: ClassificationChoice, comment: str, owner: OwnerRef | None,
                 tags: Iterable[str] = ()) -> IncidentChange:
    """Closed with ``choice`` and ``comment``; ``owner`` only if nobody is assigned. Nothing when closed already."""
    if incident.status is IncidentStatus.CLOSED:
        return IncidentChange()
    return IncidentChange(
        status=IncidentStatus.CLOSED,
        owner=owner if owner is not None and not is_assigned(incident.owner) else None,
        classification=choice,
        classification_comment=comment,
        labels=missing_labels(incident, tags),
    )


def tag_change(incident: Incident, tag: str) -> IncidentChange:
    """The label ``tag``, unless the incident carries it already (any case)."""
    return IncidentChange(labels=missing_labels(incident, (tag,)))
