"""Reverse path: SIGNL4 events (webhook or polled) → inbox → outbox actions → Sentinel; and the incident
lifecycle (closed in Sentinel → Signl resolved; reopened → new Signl when configured)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import structlog

from sentinel_signl4.config import SyncConfig
from sentinel_signl4.domain import ActionKind, IncidentStatus, SignlRequest, SignlStatus
from sentinel_signl4.domain.render import RenderContext, render_signl
from sentinel_signl4.domain.signl4_events import EventKind, Signl4Event, Signl4User, parse_event
from sentinel_signl4.domain.sync import (
    ClassificationChoice,
    ack_comment,
    annotation_comment,
    close_comment,
    comment_id_for,
    escalation_comment,
    parse_keywords,
)
from sentinel_signl4.engine.keys import comment_key, raise_key, resolve_key
from sentinel_signl4.engine.outbox import Done
from sentinel_signl4.engine.owners import OwnerDirectory
from sentinel_signl4.engine.ports import IncidentSource, Pager
from sentinel_signl4.engine.report import PollReport
from sentinel_signl4.metrics import Metrics
from sentinel_signl4.store import InboxState, Link, OutboxAction, StateStore

__all__ = ["ReversePath"]

log = structlog.get_logger("sentinel_signl4.reverse")

LIFECYCLE_CURSOR = "lifecycle_since"
# Sentinel's lastModifiedTimeUtc and our clock can disagree by a little; re-reading a short overlap is cheap and
# the actions it produces are keyed, so nothing is done twice.
LIFECYCLE_OVERLAP = timedelta(minutes=5)


class ReversePath:
    def __init__(self, connector: str, *, source: IncidentSource, pager: Pager, store: StateStore,
                 sync: SyncConfig, owners: OwnerDirectory, render: RenderContext, metrics: Metrics,
                 max_age: timedelta) -> None:
        self.connector = connector
        self.source = source
        self.pager = pager
        self.store = store
        self.sync = sync
        self.owners = owners
        self.render = render
        self.metrics = metrics
        self.max_age = max_age

    # -- inbox → outbox -------------------------------------------------------------------------------------------
    async def process_inbox(self, now: datetime, report: PollReport, *, limit: int = 500) -> None:
        for item in await self.store.pending_inbox(self.connector, limit):
            try:
                event = parse_event(item.payload)
            except ValueError as exc:
                await self.store.finish_inbox(self.connector, item.event_id, now, state=InboxState.DEAD,
                                              error=str(exc))
                continue
            follow_ups = await self._plan(event, now)
            await self.store.finish_inbox(self.connector, item.event_id, now, state=InboxState.DONE,
                                          follow_ups=follow_ups)

    async def _plan(self, event: Signl4Event, now: datetime) -> list[OutboxAction]:
        if event.kind in (EventKind.CREATED, EventKind.OTHER) or not event.external_id:
            return []
        link = await self.store.get_link_by_external_id(self.connector, event.external_id)
        if link is None:
            return []  # an alert this connector did not raise (another integration of the same team)
        record = _event_record(event)
        actions: list[OutboxAction] = []

        def action(kind: ActionKind, purpose: str, payload: dict[str, Any]) -> None:
            actions.append(OutboxAction(key=comment_key(self.connector, event.event_id, purpose),
                                        connector=self.connector, kind=kind, incident_id=link.incident_id,
                                        payload={**payload, "event": record}))

        def comment(purpose: str, message: str) -> None:
            action(ActionKind.ADD_COMMENT, purpose,
                   {"comment_id": comment_id_for(self.connector, event.event_id, purpose), "message": message})

        if event.kind is EventKind.ACKNOWLEDGED:
            action(ActionKind.UPDATE_INCIDENT, "ack", {"op": "acknowledge"})
            comment("ack-comment", ack_comment(event))
        elif event.kind is EventKind.CLOSED:
            if link.data.get("closed_by") == "sentinel":
                return []  # the echo of our own resolve: the incident was closed in Sentinel first
            await self.store.put_link(replace(link, open=False, data={**link.data, "closed_by": "signl4"}), now)
            # The classification is decided when the close is applied, so an annotation keyword processed in the
            # same cycle (even if delivered after the close) still counts.
            action(ActionKind.UPDATE_INCIDENT, "close", {"op": "close"})
        elif event.kind is EventKind.ANNOTATED:
            comment("annotation", annotation_comment(event))
            keyword = parse_keywords(event.annotation or "")
            if keyword is not None and keyword.choice is not None:
                await self.store.put_link(replace(link, data={**link.data,
                                                               "classification": keyword.choice.to_json()}), now)
            elif keyword is not None and keyword.error:
                comment("keyword-help", f"[SIGNL4] {keyword.error}")
        elif event.kind is EventKind.ESCALATED and self.sync.comment_on_escalation:
            comment("escalation", escalation_comment(event))
        return actions

    def _choice(self, link: Link | None) -> ClassificationChoice:
        annotated = ClassificationChoice.from_json(link.data.get("classification")) if link else None
        return annotated or ClassificationChoice(self.sync.close_classification, self.sync.close_classification_reason)

    # -- handlers ---------------------------------------------------------------------------------------------------
    async def update_incident(self, row: OutboxAction, now: datetime) -> Done:
        event = _event_from_record(row.payload.get("event", {}))
        op = row.payload.get("op")
        wants_owner = (op == "acknowledge" and "acknowledged" in self.sync.assign_owner_on) or (
            op == "close" and "closed" in self.sync.assign_owner_on)
        owner, why = await self.owners.resolve(event.user) if wants_owner else (None, None)
        if op == "acknowledge":
            written = await self.source.acknowledge(row.incident_id, owner)
        elif op == "close":
            link = await self.store.get_link(self.connector, row.incident_id)
            choice = self._choice(link)
            message = close_comment(event, choice)
            written = await self.source.close(row.incident_id, choice, message, owner)
            await self.source.add_comment(row.incident_id, comment_id_for(self.connector, event.event_id,
                                                                          "close-comment"), message)
        else:
            raise ValueError(f"unknown update op {op!r}")
        if why and wants_owner:
            await self.source.add_comment(row.incident_id, comment_id_for(self.connector, event.event_id, "owner"),
                                          f"[SIGNL4] Owner not assigned: {why}.")
        if event.raised_at is not None:
            self.metrics.sync_latency.labels(self.connector).observe(max(0.0, (now - event.raised_at).total_seconds()))
        self.metrics.actions.labels(self.connector, f"sync_{op}", "done").inc()
        log.info("incident_synced", connector=self.connector, op=op, written=written,
                 incident_id=row.incident_id.rsplit("/", 1)[-1])
        return Done(result={"written": written, "owner_unresolved": why})

    async def add_comment(self, row: OutboxAction, now: datetime) -> Done:
        await self.source.add_comment(row.incident_id, str(row.payload["comment_id"]), str(row.payload["message"]))
        self.metrics.actions.labels(self.connector, "comment", "done").inc()
        return Done(result={"comment_id": row.payload["comment_id"]})

    async def resolve_signl(self, row: OutboxAction, now: datetime) -> Done:
        external_id = str(row.payload["external_id"])
        await self.pager.send(SignlRequest(external_id=external_id, status=SignlStatus.RESOLVED))
        link = await self.store.get_link(self.connector, row.incident_id)
        new_link = None
        if link is not None and link.external_id == external_id:
            new_link = replace(link, open=False, data={**link.data, "closed_by": "sentinel"})
        log.info("signl_resolved", connector=self.connector, external_id=external_id)
        return Done(result={"resolved": external_id}, link=new_link)

    # -- lifecycle: Sentinel → SIGNL4 -------------------------------------------------------------------------------
    async def detect_lifecycle(self, now: datetime, report: PollReport) -> None:
        """One list query over incidents modified since the last poll (minus an overlap)."""
        if not (self.sync.resolve_signl_on_close or self.sync.reraise_on_reopen):
            return
        stored = await self.store.get_cursor(self.connector, LIFECYCLE_CURSOR)
        since = datetime.fromisoformat(stored) if stored else now - self.max_age
        incidents = [i async for i in self.source.list_modified_since(since - LIFECYCLE_OVERLAP)]
        links = await self.store.links_for(self.connector, [i.resource_id for i in incidents])
        for incident in incidents:
            link = links.get(incident.resource_id)
            if link is None:
                continue
            closed = incident.status is IncidentStatus.CLOSED
            if closed and link.open and self.sync.resolve_signl_on_close:
                await self._enqueue_resolve(link, now)
            elif not closed and not link.open and self.sync.reraise_on_reopen:
                await self._enqueue_reraise(incident, link, now, report)
        await self.store.set_cursor(self.connector, LIFECYCLE_CURSOR, now.isoformat())

    async def _enqueue_resolve(self, link: Link, now: datetime) -> None:
        await self.store.enqueue(OutboxAction(
            key=resolve_key(self.connector, link.external_id), connector=self.connector,
            kind=ActionKind.RESOLVE_SIGNL, incident_id=link.incident_id, payload={"external_id": link.external_id},
        ), now)

    async def _enqueue_reraise(self, incident: Any, link: Link, now: datetime, report: PollReport) -> None:
        ctx = replace(self.render, generation=link.generation + 1)
        request = render_signl(incident, ctx)
        inserted = await self.store.enqueue(OutboxAction(
            key=raise_key(self.connector, request.external_id), connector=self.connector,
            kind=ActionKind.RAISE_SIGNL, incident_id=incident.resource_id,
            payload={"request": request.to_record(), "incident_number": incident.number,
                     "incident_created": now.isoformat(), "generation": ctx.generation},
        ), now)
        if inserted:
            report.enqueued.append(incident)
            log.info("incident_reopened", connector=self.connector, incident=incident.number,
                     generation=ctx.generation)

    async def resolve_closed_links(self, now: datetime, *, limit: int = 100) -> int:
        """Reconciliation sweep: GET each open link's incident (bounded) and repair drift the list query missed."""
        repaired = 0
        for link in await self.store.open_links(self.connector, limit):
            incident = await self.source.get(link.incident_id)
            if incident.status is IncidentStatus.CLOSED and self.sync.resolve_signl_on_close:
                await self._enqueue_resolve(link, now)
                repaired += 1
        return repaired


def _event_record(event: Signl4Event) -> dict[str, Any]:
    user = event.user
    return {
        "id": event.event_id, "kind": event.kind.value, "type": event.event_type,
        "raised_at": event.raised_at.isoformat() if event.raised_at else None,
        "external_id": event.external_id, "alert_id": event.alert_id,
        "user": {"id": user.id, "name": user.name, "mail": user.mail} if user else None,
        "annotation": event.annotation,
    }


def _event_from_record(record: Any) -> Signl4Event:
    user = record.get("user") if isinstance(record, dict) else None
    raised = record.get("raised_at") if isinstance(record, dict) else None
    return Signl4Event(
        event_id=str(record.get("id", "")), kind=EventKind(record.get("kind", "other")),
        event_type=int(record.get("type", 0)), raised_at=datetime.fromisoformat(raised) if raised else None,
        external_id=record.get("external_id"), alert_id=record.get("alert_id"),
        user=Signl4User(id=user.get("id"), name=user.get("name"), mail=user.get("mail")) if user else None,
        annotation=record.get("annotation"), annotation_id=None,
    )
