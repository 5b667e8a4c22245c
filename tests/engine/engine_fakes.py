"""In-memory implementations of the engine's ports, for fast engine tests (no HTTP, no emulator).

Each fake keeps the contract its port documents (``engine/ports.py``), including the awkward parts a real remote
system has: a send that reached SIGNL4 and then failed with ``OutcomeUnknownError`` (the alert exists, the caller
does not know it), a body SIGNL4 refuses (400/413), an incident that is already closed, a comment written twice
under one id. Failures are scripted per call with :meth:`Faults.fail_next`.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TypeVar

from sentinel_signl4.domain import Incident, IncidentFilter, SignlRequest, SignlStatus
from sentinel_signl4.domain.incident_change import (
    IncidentChange,
    OwnerRef,
    acknowledge_change,
    close_change,
    tag_change,
)
from sentinel_signl4.domain.signl4_events import Signl4Event
from sentinel_signl4.domain.sync import ClassificationChoice
from sentinel_signl4.engine.ports import AlertEvents, ChangedAlert, FoundAlert
from sentinel_signl4.errors import NotFoundError, PermanentError, RemoteError

_T = TypeVar("_T")

__all__ = ["FakePager", "FakeSignl4Changes", "FakeSource", "Faults", "SentAlert"]


class Faults:
    """Scripted failures: ``fail_next("send", exc)`` makes the next ``send`` raise ``exc``. With ``after=True``
    the call takes effect first and then raises (a response lost after the remote side acted)."""

    def __init__(self) -> None:
        self._queued: dict[str, deque[tuple[RemoteError, bool]]] = defaultdict(deque)

    def fail_next(self, method: str, exc: RemoteError, *, after: bool = False, times: int = 1) -> None:
        for _ in range(times):
            self._queued[method].append((exc, after))

    def before(self, method: str) -> RemoteError | None:
        """The failure to raise before acting, if one is queued for ``method`` (and not an after-the-fact one)."""
        queue = self._queued.get(method)
        if queue and not queue[0][1]:
            return queue.popleft()[0]
        return None

    def after(self, method: str) -> RemoteError | None:
        queue = self._queued.get(method)
        if queue and queue[0][1]:
            return queue.popleft()[0]
        return None


@dataclass
class _Comment:
    comment_id: str
    message: str


class FakeSource:
    """An incident source (``IncidentSource``) holding its incidents in memory.

    Writes move ``last_modified`` to the clock's time, as Sentinel and Graph do, so the lifecycle query sees them.
    What a write changes is decided by the domain (``domain/incident_change.py``), as the real adapters do; owners
    are assigned by object id.
    """

    kind = "fake"

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.incidents: dict[str, Incident] = {}
        self.comments: dict[str, dict[str, _Comment]] = defaultdict(dict)
        #: Ids the next read of changes lists twice (then once again).
        self.listed_twice: set[str] = set()
        self.merged_into: dict[str, str] = {}
        self.faults = Faults()
        self.writes = 0

    # -- test side --------------------------------------------------------------------------------------------------
    def add(self, incident: Incident) -> Incident:
        self.incidents[incident.resource_id] = incident
        return incident

    def change(self, incident_id: str, **changes: object) -> Incident:
        """Someone else edits the incident (a reopen, a close in the portal, a merge)."""
        changed = replace(self.incidents[incident_id], last_modified=self.clock(), **changes)  # type: ignore[arg-type]
        self.incidents[incident_id] = changed
        return changed

    def comment_texts(self, incident_id: str) -> list[str]:
        return [c.message for c in self.comments[incident_id].values()]

    # -- the port ---------------------------------------------------------------------------------------------------
    async def list_matching(self, flt: IncidentFilter, now: datetime) -> AsyncIterator[Incident]:
        self._raise_before("list_matching")
        for incident in list(self.incidents.values()):
            if (incident.status in flt.statuses and incident.severity in flt.severities
                    and incident.created >= flt.oldest(now)):
                yield incident

    async def list_modified_since(self, since: datetime) -> AsyncIterator[Incident]:
        self._raise_before("list_modified_since")
        for incident in list(self.incidents.values()):
            if incident.last_modified >= since:
                yield incident
                if incident.resource_id in self.listed_twice:
                    # As a server that pages by offset does when the item changes between two page reads.
                    self.listed_twice.discard(incident.resource_id)
                    yield incident

    async def get(self, incident_id: str) -> Incident:
        self._raise_before("get")
        return self._incident(incident_id)

    async def check_access(self) -> None:
        self._raise_before("check_access")

    async def add_tag(self, incident_id: str, tag: str) -> bool:
        self._raise_before("add_tag")
        incident = self._incident(incident_id)
        return self._after("add_tag", self._apply(incident, tag_change(incident, tag)))

    async def acknowledge(self, incident_id: str, owner: OwnerRef | None, *, tags: Sequence[str] = ()) -> bool:
        self._raise_before("acknowledge")
        incident = self._incident(incident_id)
        change = acknowledge_change(incident, owner.only("object_id") if owner else None, tags)
        return self._after("acknowledge", self._apply(incident, change, owner))

    async def close(self, incident_id: str, choice: ClassificationChoice, comment: str,
                    owner: OwnerRef | None, *, tags: Sequence[str] = ()) -> bool:
        self._raise_before("close")
        incident = self._incident(incident_id)
        change = close_change(incident, choice, comment, owner.only("object_id") if owner else None, tags)
        return self._after("close", self._apply(incident, change, owner))

    async def add_comment(self, incident_id: str, comment_id: str, message: str) -> None:
        self._raise_before("add_comment")
        self._incident(incident_id)
        self.comments[incident_id][comment_id] = _Comment(comment_id, message)
        self._after("add_comment", None)

    async def follow_merge(self, incident: Incident) -> Incident | None:
        self._raise_before("follow_merge")
        seen = {incident.resource_id}
        current = incident.resource_id
        while current in self.merged_into:
            current = self.merged_into[current]
            if current in seen:
                return None
            seen.add(current)
        return None if current == incident.resource_id else self.incidents.get(current)

    # -- internals --------------------------------------------------------------------------------------------------
    def _incident(self, incident_id: str) -> Incident:
        try:
            return self.incidents[incident_id]
        except KeyError:
            raise NotFoundError(f"fake source: no incident {incident_id}", status=404) from None

    def _apply(self, incident: Incident, change: IncidentChange, owner: OwnerRef | None = None) -> bool:
        """Write ``change`` (assigning by object id, as Sentinel does; ``owner`` fills the rest of the owner)."""
        if change.is_empty:
            return False
        changes: dict[str, object] = {}
        if change.status is not None:
            changes["status"] = change.status
        if change.classification is not None:
            changes["classification"] = change.classification.classification
            changes["classification_reason"] = change.classification.reason
        if change.owner is not None:
            changes["owner"] = replace(incident.owner, object_id=change.owner.object_id,
                                       upn=owner.upn if owner else None, email=owner.email if owner else None)
        if change.labels:
            changes["labels"] = (*incident.labels, *change.labels)
        self._write(incident, **changes)
        return True

    def _write(self, incident: Incident, **changes: object) -> None:
        self.writes += 1
        self.incidents[incident.resource_id] = replace(incident, last_modified=self.clock(),
                                                       **changes)  # type: ignore[arg-type]

    def _raise_before(self, method: str) -> None:
        exc = self.faults.before(method)
        if exc is not None:
            raise exc

    def _after(self, method: str, value: _T) -> _T:
        exc = self.faults.after(method)
        if exc is not None:
            raise exc
        return value


@dataclass
class SentAlert:
    """An alert the fake SIGNL4 holds: one per accepted ``new`` event."""

    alert_id: str
    event_id: str
    request: SignlRequest
    open: bool = True
    annotations: list[str] = field(default_factory=list)


class FakePager:
    """SIGNL4 as the ``Pager`` port sees it. Every ``new`` event creates an alert (a second send with the same
    ExternalID is a second page, which is what the engine must never cause); ``resolved`` closes its alerts."""

    def __init__(self, *, api_key: bool = True, reject_body_over: int | None = None) -> None:
        self.api_key = api_key
        #: Bodies whose JSON is longer than this are refused with 413, like SIGNL4's size limit.
        self.reject_body_over = reject_body_over
        self.alerts: list[SentAlert] = []
        self.requests: list[SignlRequest] = []  # every request that reached SIGNL4
        self.faults = Faults()

    @property
    def can_lookup(self) -> bool:
        return self.api_key

    @property
    def can_annotate(self) -> bool:
        return self.api_key

    def pages(self, external_id: str) -> list[SentAlert]:
        return [a for a in self.alerts if a.request.external_id == external_id]

    async def send(self, request: SignlRequest) -> str:
        exc = self.faults.before("send")
        if exc is not None:
            raise exc
        if self.reject_body_over is not None and len(str(request.to_payload())) > self.reject_body_over:
            raise _body_too_large()
        self.requests.append(request)
        event_id = f"event-{len(self.requests)}"
        if request.status is SignlStatus.NEW:
            self.alerts.append(SentAlert(alert_id=f"alert-{len(self.alerts) + 1}", event_id=event_id,
                                         request=request))
        elif request.status is SignlStatus.RESOLVED:
            for alert in self.pages(request.external_id):
                alert.open = False
        exc = self.faults.after("send")
        if exc is not None:
            raise exc
        return event_id

    async def find_by_external_id(self, external_id: str) -> list[FoundAlert]:
        exc = self.faults.before("find_by_external_id")
        if exc is not None:
            raise exc
        return [FoundAlert(alert_id=a.alert_id, event_id=a.event_id, status=1 if a.open else 4,
                           raw={"id": a.alert_id, "eventId": a.event_id, "externalId": external_id})
                for a in self.pages(external_id)]

    async def annotate(self, alert_id: str, text: str) -> None:
        exc = self.faults.before("annotate")
        if exc is not None:
            raise exc
        self._alert(alert_id).annotations.append(text)
        exc = self.faults.after("annotate")
        if exc is not None:
            raise exc

    async def list_annotation_texts(self, alert_id: str) -> list[str]:
        return list(self._alert(alert_id).annotations)

    async def check_access(self) -> None:
        exc = self.faults.before("check_access")
        if exc is not None:
            raise exc

    def _alert(self, alert_id: str) -> SentAlert:
        for alert in self.alerts:
            if alert.alert_id == alert_id:
                return alert
        raise NotFoundError(f"fake SIGNL4: no alert {alert_id}", status=404)


def _body_too_large() -> RemoteError:
    return PermanentError("fake SIGNL4: request body too large", status=413)


class FakeSignl4Changes:
    """The ``Signl4Changes`` port: alerts changed in SIGNL4 and the events found on each.

    ``annotations_path`` behaves like the adapter's: unknown values are ignored; reading annotations sets it to
    the path that answered (``"v1"`` here) unless ``annotations_unreadable`` says none does.
    """

    KNOWN_PATHS = ("v1", "v2_timeline")

    def __init__(self) -> None:
        self._path: str | None = None
        self.changed: list[tuple[ChangedAlert, datetime, list[Signl4Event]]] = []
        self.annotations_unreadable: str | None = None
        self.reads: list[str] = []  # alert ids whose events were read, in order

    @property
    def annotations_path(self) -> str | None:
        return self._path

    @annotations_path.setter
    def annotations_path(self, path: str | None) -> None:
        if path is None or path in self.KNOWN_PATHS:
            self._path = path

    def publish(self, alert_id: str, external_id: str, modified: datetime, events: list[Signl4Event]) -> None:
        """SIGNL4 changed ``alert_id`` at ``modified``; reading it yields ``events``. A later publish replaces it."""
        self.changed = [c for c in self.changed if c[0].alert_id != alert_id]
        revision = f"{modified.isoformat()}|{len(events)}"
        self.changed.insert(0, (ChangedAlert(alert_id, external_id, revision), modified, events))

    async def changed_since(self, since: datetime) -> list[ChangedAlert]:
        return [alert for alert, modified, _events in self.changed if modified >= since]

    async def events_of(self, alert: ChangedAlert, now: datetime) -> AlertEvents:
        self.reads.append(alert.alert_id)
        if self._path is None and self.annotations_unreadable is None:
            self._path = "v1"
        events = next(e for a, _m, e in self.changed if a.alert_id == alert.alert_id)
        return AlertEvents(events=list(events), annotations_unreadable=self.annotations_unreadable)
