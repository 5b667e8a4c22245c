"""One connector's engine on in-memory fakes and a SQLite store in the test's directory: the forward path, the
reverse path, the SIGNL4 poll and the outbox, wired as ``bootstrap`` wires them, with a clock that moves only when
the test says so."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from engine_fakes import FakePager, FakeSignl4Changes, FakeSource

from sentinel_signl4.domain import (
    Classification,
    Incident,
    IncidentFilter,
    IncidentStatus,
    Severity,
    external_id_for,
)
from sentinel_signl4.domain.render import RenderContext
from sentinel_signl4.domain.signl4_events import EventKind, Signl4Event, Signl4User
from sentinel_signl4.domain.sync import ClassificationChoice
from sentinel_signl4.engine.connector import ConnectorRuntime
from sentinel_signl4.engine.forward import ForwardPath
from sentinel_signl4.engine.owners import OwnerDirectory
from sentinel_signl4.engine.report import PollReport
from sentinel_signl4.engine.reverse import ReversePath, ReverseSettings
from sentinel_signl4.engine.signl4_poll import Signl4Poller
from sentinel_signl4.metrics import Metrics
from sentinel_signl4.store import InboxEvent, Link, StateStore

__all__ = ["CONNECTOR", "START", "EngineWorld"]

CONNECTOR = "contoso"
START = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
WORKSPACE = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/w"


@dataclass
class EngineWorld:
    store: StateStore
    now: datetime = START
    settings: ReverseSettings = field(default_factory=lambda: ReverseSettings(
        close_choice=ClassificationChoice(Classification.UNDETERMINED, None)))
    pager: FakePager = field(default_factory=FakePager)
    changes: FakeSignl4Changes = field(default_factory=FakeSignl4Changes)
    poll_signl4: bool = False

    def __post_init__(self) -> None:
        self.source = FakeSource(lambda: self.now)
        self.metrics = Metrics()
        self.render = RenderContext(connector=CONNECTOR, display_name="Contoso")
        self.forward = ForwardPath(CONNECTOR, source=self.source, pager=self.pager, store=self.store,
                                   flt=IncidentFilter(statuses=frozenset({IncidentStatus.NEW})),
                                   render=self.render, tag="SIGNL4", skip_already_tagged=True, metrics=self.metrics)
        self.reverse = ReversePath(CONNECTOR, source=self.source, pager=self.pager, store=self.store,
                                   sync=self.settings, owners=OwnerDirectory({}, None), render=self.render,
                                   metrics=self.metrics, max_age=timedelta(hours=24))
        self.poller = (Signl4Poller(CONNECTOR, changes=self.changes, store=self.store,
                                    interval=timedelta(seconds=30)) if self.poll_signl4 else None)
        self.runtime = ConnectorRuntime(CONNECTOR, store=self.store, forward=self.forward, metrics=self.metrics,
                                        reverse=self.reverse, signl4_poller=self.poller)

    # -- the world ----------------------------------------------------------------------------------------------
    def incident(self, number: int, *, status: IncidentStatus = IncidentStatus.NEW,
                 severity: Severity = Severity.HIGH, title: str = "Suspicious sign-in") -> Incident:
        name = f"inc-{number}"
        created = self.now - timedelta(minutes=1)
        return self.source.add(Incident(
            resource_id=f"{WORKSPACE}/providers/Microsoft.SecurityInsights/incidents/{name}", name=name,
            number=number, title=title, severity=severity, status=status, created=created, last_modified=created,
            url=f"https://portal.example/incidents/{name}"))

    def external_id(self, incident: Incident, generation: int = 1) -> str:
        return external_id_for(CONNECTOR, incident.resource_id, generation)

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    async def cycle(self, **delta: float) -> PollReport:
        """One connector cycle at the current time (after moving the clock by ``delta``)."""
        if delta:
            self.advance(**delta)
        return await self.runtime.run_once(self.now)

    async def link(self, incident: Incident) -> Link | None:
        return await self.store.get_link(CONNECTOR, incident.resource_id)

    # -- SIGNL4 events as the webhook delivers them ---------------------------------------------------------------
    def event(self, incident: Incident, kind: EventKind, *, event_id: str, annotation: str | None = None,
              user: Signl4User | None = None, alert_id: str = "alert-1") -> Signl4Event:
        event_type = {EventKind.ACKNOWLEDGED: 201, EventKind.CLOSED: 201, EventKind.ANNOTATED: 203}.get(kind, 202)
        return Signl4Event(event_id=event_id, kind=kind, event_type=event_type, raised_at=self.now,
                           external_id=self.external_id(incident), alert_id=alert_id,
                           user=user or Signl4User(id="u1", name="Adele", mail="adele@contoso.test"),
                           annotation=annotation, annotation_id=f"note-{event_id}" if annotation else None)

    async def deliver(self, event: Signl4Event) -> None:
        await self.store.add_inbox(InboxEvent(connector=CONNECTOR, event_id=event.event_id,
                                              payload=event.to_record(), received_at=self.now))
