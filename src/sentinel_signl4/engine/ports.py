"""What the engine needs from the outside world. Concrete adapters are built in ``bootstrap``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sentinel_signl4.domain import Incident, IncidentFilter, SignlRequest
from sentinel_signl4.domain.incident_change import OwnerRef
from sentinel_signl4.domain.render import Enrichment
from sentinel_signl4.domain.signl4_events import Signl4Event
from sentinel_signl4.domain.sync import ClassificationChoice

__all__ = ["AlertEvents", "ChangedAlert", "Enricher", "FoundAlert", "IncidentSource", "Pager", "Signl4Changes"]


class IncidentSource(Protocol):
    """Where incidents come from and where their updates go: Sentinel REST (``sources/sentinel.py``) or Microsoft
    Graph security incidents (``sources/graph.py``). The engine never asks which one it has."""

    @property
    def kind(self) -> str: ...

    def list_matching(self, flt: IncidentFilter, now: datetime) -> AsyncIterator[Incident]:
        """Incidents the server selects for ``flt`` at ``now``, following every page."""
        ...

    async def add_tag(self, incident_id: str, tag: str) -> bool:
        """Add ``tag`` without clobbering concurrent edits. True if written, False if it was already there."""
        ...

    async def check_access(self) -> None:
        """Raise a ``RemoteError`` with a precise message when the source cannot be read."""
        ...

    def list_modified_since(self, since: datetime) -> AsyncIterator[Incident]:
        """Incidents modified at or after ``since`` (one query, all pages), for lifecycle detection."""
        ...

    async def get(self, incident_id: str) -> Incident: ...

    async def acknowledge(self, incident_id: str, owner: OwnerRef | None, *, tags: Sequence[str] = ()) -> bool:
        """New → Active (never reopens a closed incident) and owner = ``owner`` when given; ``tags`` (a tag row
        still pending for the incident) go with the same write. True if written. The rules are
        ``domain/incident_change.py``'s; the adapter maps the change to its wire format."""
        ...

    async def close(self, incident_id: str, choice: ClassificationChoice, comment: str,
                    owner: OwnerRef | None, *, tags: Sequence[str] = ()) -> bool:
        """Close with ``choice``; set ``owner`` only if none is set; ``tags`` go with the same write. False if it
        was already closed (then no tag is written either)."""
        ...

    async def add_comment(self, incident_id: str, comment_id: str, message: str) -> None:
        """Write a comment with a caller-chosen id: writing the same id twice leaves one comment."""
        ...

    async def follow_merge(self, incident: Incident) -> Incident | None:
        """The incident a merged ``incident`` (``Incident.merged``) now lives on, following chains of merges.

        ``None`` when the source cannot tell which incident survived (Sentinel's stable API does not say).
        """
        ...


@dataclass(frozen=True, slots=True)
class FoundAlert:
    alert_id: str
    event_id: str | None
    status: int | None
    raw: Mapping[str, Any]


class Pager(Protocol):
    """SIGNL4 as the engine sees it."""

    @property
    def can_lookup(self) -> bool:
        """True when a REST API key is configured, so an in-doubt send can be looked up before re-sending."""
        ...

    async def send(self, request: SignlRequest) -> str:
        """Send one event; return SIGNL4's eventId. Not idempotent: never retried after the request left."""
        ...

    async def find_by_external_id(self, external_id: str) -> list[FoundAlert]: ...

    @property
    def can_annotate(self) -> bool:
        """True when the REST API key is configured, so the connector can annotate its own Signls."""
        ...

    async def annotate(self, alert_id: str, text: str) -> None:
        """Add ``text`` as an annotation to the alert. Not idempotent: a repeat adds a second annotation."""
        ...

    async def list_annotation_texts(self, alert_id: str) -> list[str]:
        """The texts of the alert's annotations (to check whether an in-doubt annotation arrived)."""
        ...

    async def check_access(self) -> None: ...


class Enricher(Protocol):
    """Evidence for the incidents raised in one poll: alerts, entities, Log Analytics rows.

    Called once per poll with every incident about to be queued, so remote calls are batched. Must never raise
    and never take longer than its budget: what it cannot fetch is reported in ``Enrichment.notes``.
    """

    async def enrich(self, incidents: list[Incident], now: datetime) -> dict[str, Enrichment]:
        """Enrichment keyed by incident resource id (missing keys mean: nothing to add)."""
        ...


@dataclass(frozen=True, slots=True)
class ChangedAlert:
    """A SIGNL4 alert that changed, as the poll port lists it."""

    alert_id: str
    external_id: str
    #: Differs whenever anything of the alert does: a catch-up spanning cycles skips an alert read at this revision.
    revision: str


@dataclass(frozen=True, slots=True)
class AlertEvents:
    """What polling one changed alert found: its events (deterministic ids, so a change seen twice, or seen by the
    webhook too, is one inbox row) and, when its annotations could not be read, why."""

    events: list[Signl4Event]
    annotations_unreadable: str | None = None


class Signl4Changes(Protocol):
    """SIGNL4 changes read over its REST API, for networks that take no inbound calls (``sources/signl4_changes.py``).

    ``annotations_path`` names the annotation read that answered (None until one did); the engine keeps it in the
    store and hands it back after a restart, so the adapter does not probe the other one again. A value the adapter
    does not know is ignored.
    """

    annotations_path: str | None

    async def changed_since(self, since: datetime) -> list[ChangedAlert]:
        """Alerts modified at or after ``since`` that carry an ExternalID, newest first, all pages."""
        ...

    async def events_of(self, alert: ChangedAlert, now: datetime) -> AlertEvents:
        """The acknowledgement, annotations and close of ``alert``, each stamped with when it happened in SIGNL4
        (``now`` when SIGNL4 gives no time). An unreadable annotation list is reported in the result, never raised."""
        ...
