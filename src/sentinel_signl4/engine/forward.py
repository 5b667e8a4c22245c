"""Forward path: poll the source, queue one Signl per matching incident, raise it, tag the incident."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog

from sentinel_signl4.domain import (
    ActionKind,
    Incident,
    IncidentFilter,
    SkipReason,
    external_id_for,
    skip_reason,
)
from sentinel_signl4.domain.actions import RaiseSignl, TagIncident
from sentinel_signl4.domain.minimal_signl import minimal_signl
from sentinel_signl4.domain.render import RenderContext, render_signl
from sentinel_signl4.engine.keys import raise_key, tag_key
from sentinel_signl4.engine.outbox import Done, payload
from sentinel_signl4.engine.pausing import covering, enqueue_time, paused_action
from sentinel_signl4.engine.ports import Enricher, IncidentSource, Pager
from sentinel_signl4.engine.report import PollReport
from sentinel_signl4.errors import PermanentError
from sentinel_signl4.metrics import Metrics
from sentinel_signl4.store import Link, OutboxAction, StateStore

__all__ = ["ForwardPath"]

log = structlog.get_logger("sentinel_signl4.forward")

# SIGNL4 refused the body itself (400: "not in the format specified", 413: too large): nothing was raised, so a
# smaller Signl with the same ExternalID can be sent without risking a second page.
_BODY_REJECTED = frozenset({400, 413})


class ForwardPath:
    """Sentinel → SIGNL4 for one connector: ``poll`` enqueues, the handlers perform."""

    def __init__(self, connector: str, *, source: IncidentSource, pager: Pager, store: StateStore,
                 flt: IncidentFilter, render: RenderContext, tag: str, skip_already_tagged: bool,
                 metrics: Metrics, enricher: Enricher | None = None) -> None:
        self.connector = connector
        self.source = source
        self.pager = pager
        self.store = store
        self.flt = flt
        self.render = render
        self.tag = tag
        self.skip_already_tagged = skip_already_tagged
        self.metrics = metrics
        self.enricher = enricher

    async def poll(self, now: datetime, report: PollReport) -> None:
        """One list query (all pages); for each matching incident without a Signl, write a raise row."""
        await self.consider([incident async for incident in self.source.list_matching(self.flt, now)], now, report)

    async def consider(self, incidents: list[Incident], now: datetime, report: PollReport) -> None:
        """For each incident of ``incidents`` that matches the filter and has no Signl (nor a queued one), write a
        raise row. ``incidents`` comes from the full filtered scan or from the incremental read of changes."""
        report.seen += len(incidents)
        self.metrics.incidents_seen.labels(self.connector).inc(len(incidents))
        links = await self.store.links_for(self.connector, [i.resource_id for i in incidents])
        fresh: list[Incident] = []
        for incident in incidents:
            reason = self._skip(incident, links, now)
            if reason is None and await self.store.get_action(
                    raise_key(self.connector, self._external_id(incident))) is not None:
                continue  # queued by an earlier poll, not yet linked
            if reason is not None:
                report.skipped.append((incident, reason))
                if reason is not SkipReason.ALREADY_LINKED:
                    self.metrics.incidents_skipped.labels(self.connector, reason.value).inc()
                continue
            fresh.append(incident)
        # Enrichment is batched over the whole poll (one Log Analytics query, not one per incident).
        enrichments = await self.enricher.enrich(fresh, now) if (self.enricher and fresh) else {}
        # Maintenance windows and pauses (store/pauses.py): read once per poll, applied per incident below.
        pauses = await self.store.pauses(now, connector=self.connector) if fresh else []
        for incident in fresh:
            request = render_signl(incident, self.render, enrichments.get(incident.resource_id))
            raise_ = RaiseSignl(request=request, incident_number=incident.number, incident_created=incident.created,
                                severity=incident.severity.value, incident_url=incident.url)
            action = OutboxAction(
                key=raise_key(self.connector, request.external_id), connector=self.connector,
                kind=ActionKind.RAISE_SIGNL, incident_id=incident.resource_id, payload=raise_.to_record(),
            )
            pause = covering(pauses, self.connector, incident.severity.value, now)
            if pause is not None:
                action = paused_action(action, pause, now)
                log.warning("incident_paused", connector=self.connector, incident=incident.number,
                            severity=incident.severity.value, pause=pause.id, mode=pause.mode,
                            until=pause.ends_at.isoformat(), reason=pause.reason)
                if pause.mode == "skip":
                    if await self.store.enqueue(action, now):
                        self.metrics.incidents_skipped.labels(self.connector, "paused").inc()
                    continue
            if await self.store.enqueue(action, enqueue_time(action, now)):
                report.enqueued.append(incident)
                self.metrics.incidents_forwarded.labels(self.connector).inc()
                log.info("incident_queued", connector=self.connector, incident=incident.number,
                         incident_id=incident.name, external_id=request.external_id,
                         severity=incident.severity.value)

    def _external_id(self, incident: Incident) -> str:
        return external_id_for(self.connector, incident.resource_id, self.render.generation)

    def _skip(self, incident: Incident, links: dict[str, Link], now: datetime) -> SkipReason | None:
        reason = skip_reason(incident, self.flt, now)
        if reason is not None:
            return reason
        if incident.resource_id in links:
            return SkipReason.ALREADY_LINKED
        if self.tag and self.skip_already_tagged and incident.has_label(self.tag):
            # Tagged by someone else (e.g. SIGNL4's hosted connector before a switch): do not page again.
            return SkipReason.ALREADY_TAGGED
        return None

    # -- handlers ---------------------------------------------------------------------------------------------------
    async def raise_signl(self, row: OutboxAction, now: datetime) -> Done:
        action = payload(row, RaiseSignl)
        request = action.request
        if row.in_doubt and self.pager.can_lookup:
            # Only an alert created with exactly this ExternalID proves the page went out (docs/decisions.md).
            found = [alert for alert in await self.pager.find_by_external_id(request.external_id)
                     if alert.raw.get("externalId") == request.external_id]
            if found:
                alert = found[0]
                log.info("in_doubt_send_found", connector=self.connector, external_id=request.external_id,
                         alert_id=alert.alert_id)
                return self._raised(row, action, now, event_id=alert.event_id, alert_id=alert.alert_id,
                                    reconciled=True)
        try:
            event_id = await self.pager.send(request)
        except PermanentError as exc:
            if exc.status not in _BODY_REJECTED:
                raise
            return await self._raise_minimal(row, action, now, exc)
        return self._raised(row, action, now, event_id=event_id, alert_id=None, reconciled=False)

    async def _raise_minimal(self, row: OutboxAction, action: RaiseSignl, now: datetime,
                             rejection: PermanentError) -> Done:
        """SIGNL4 refused the rich Signl's body: page with the minimal one (same ExternalID) instead.

        Only a rejection of the minimal Signl too gives up on the page (the row is dead-lettered, with both
        reasons). Any other failure of the minimal send takes the normal path: retried, and reconciled first when
        its outcome is unknown.
        """
        status = int(rejection.status or 0)
        number = action.incident_number
        minimal = minimal_signl(action.request, rejected_status=status, incident_number=number,
                                severity=action.severity, link=action.incident_url)
        log.warning("signl_fallback_minimal", connector=self.connector, incident=number, status=status,
                    error=rejection.message)
        self.metrics.signl_fallbacks.labels(self.connector).inc()
        try:
            event_id = await self.pager.send(minimal)
        except PermanentError as exc:
            if exc.status not in _BODY_REJECTED:
                raise
            raise PermanentError(
                f"SIGNL4 rejected the Signl (HTTP {status}) and the minimal fallback Signl too "
                f"(HTTP {exc.status}): {exc.message}", status=exc.status, code=exc.code) from exc
        return self._raised(row, action, now, event_id=event_id, alert_id=None, reconciled=False,
                            fallback={"fallback": "minimal", "rejected_status": status,
                                      "rejected_error": rejection.message})

    def _raised(self, row: OutboxAction, action: RaiseSignl, now: datetime, *, event_id: str | None,
                alert_id: str | None, reconciled: bool, fallback: dict[str, Any] | None = None) -> Done:
        number = action.incident_number
        request = action.request
        generation = action.generation if action.generation is not None else self.render.generation
        link = Link(connector=self.connector, incident_id=row.incident_id, external_id=request.external_id,
                    incident_number=number, event_id=event_id, alert_id=alert_id, generation=generation)
        follow_ups: list[OutboxAction] = []
        if self.tag:
            follow_ups.append(OutboxAction(
                key=tag_key(self.connector, request.external_id, self.tag), connector=self.connector,
                kind=ActionKind.TAG_INCIDENT, incident_id=row.incident_id,
                payload=TagIncident(self.tag).to_record(),
            ))
        self.metrics.signls_raised.labels(self.connector).inc()
        if action.incident_created is not None:
            latency = (now - action.incident_created).total_seconds()
            self.metrics.page_latency.labels(self.connector).observe(max(0.0, latency))
        log.info("signl_raised", connector=self.connector, incident=number, event_id=event_id,
                 reconciled=reconciled, minimal=fallback is not None)
        result: dict[str, Any] = {"event_id": event_id, "alert_id": alert_id, "reconciled": reconciled,
                                  **(fallback or {})}
        return Done(result=result, link=link, follow_ups=follow_ups)

    async def tag_incident(self, row: OutboxAction, now: datetime) -> Done:
        tag = payload(row, TagIncident).tag
        written = await self.source.add_tag(row.incident_id, tag)
        log.info("incident_tagged", connector=self.connector, incident_id=row.incident_id.rsplit("/", 1)[-1],
                 tag=tag, written=written)
        return Done(result={"written": written})
