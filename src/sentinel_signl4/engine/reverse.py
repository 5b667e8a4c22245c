"""Reverse path: SIGNL4 events (webhook or polled) → inbox → outbox actions → the incident source; and the incident
lifecycle (closed in the source → Signl resolved; reopened → new Signl when configured; merged by Defender → the
Signl follows the incident that survived).

Defender merges (docs/decisions.md, "Defender merges"). When the lifecycle pass (or the reconciliation sweep) sees a
linked incident that was merged (``Incident.merged``), it asks the source which incident survived
(``IncidentSource.follow_merge``) and:

* the survivor has no Signl of ours → the link *moves* to the survivor (same ExternalID, so SIGNL4's correlation
  holds; acknowledge, close and annotations of that Signl go to the survivor from now on);
* the survivor has its own Signl (or one is queued) → the merged incident's Signl is resolved; its later events
  still go to the survivor;
* the source cannot tell (Sentinel's stable API) → the Signl is resolved like any closed incident.

Either way a note says "merged into #N": an annotation on the Signl when the SIGNL4 API key is configured (our own
annotations are recognised and never mirrored back) and a comment on the surviving incident.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import structlog

from sentinel_signl4.domain import (
    ActionKind,
    ActionState,
    Incident,
    IncidentStatus,
    SignlRequest,
    SignlStatus,
    external_id_for,
    external_id_prefix,
)
from sentinel_signl4.domain.actions import (
    AddComment,
    AnnotateSignl,
    RaiseSignl,
    ResolveSignl,
    UpdateIncident,
    UpdateOp,
)
from sentinel_signl4.domain.link_state import ClosedBy
from sentinel_signl4.domain.render import RenderContext, render_signl
from sentinel_signl4.domain.signl4_events import EventKind, Signl4Event
from sentinel_signl4.domain.spans import span_text
from sentinel_signl4.domain.sync import (
    ClassificationChoice,
    MergeOutcome,
    ack_comment,
    annotation_comment,
    close_comment,
    comment_id_for,
    escalation_comment,
    is_connector_note,
    merge_annotation,
    merge_comment,
    parse_keywords,
)
from sentinel_signl4.engine.keys import comment_key, merge_key, raise_key, resolve_key, tag_key
from sentinel_signl4.engine.leases import current_fence
from sentinel_signl4.engine.outbox import Done, payload
from sentinel_signl4.engine.owners import OwnerDirectory
from sentinel_signl4.engine.ports import IncidentSource, Pager
from sentinel_signl4.engine.report import PollReport
from sentinel_signl4.errors import NotFoundError
from sentinel_signl4.metrics import Metrics
from sentinel_signl4.store import InboxEvent, InboxState, Link, OutboxAction, StateStore

__all__ = ["ReversePath", "ReverseSettings"]

log = structlog.get_logger("sentinel_signl4.reverse")

#: The lifecycle pass's own cursor before the incremental poll (``engine/incident_poll.py``) replaced it: read once,
#: as the starting point, when the incremental poll has no cursor of its own yet.
LIFECYCLE_CURSOR = "lifecycle_since"
#: Who closed a link first when its SIGNL4 "closed" echo is ours and must not close the incident.
_OUR_CLOSES = (ClosedBy.SOURCE, ClosedBy.MERGE)


@dataclass(frozen=True, slots=True)
class ReverseSettings:
    """What the reverse path is told to do (built from ``[connectors.sync]`` by the bootstrap)."""

    close_choice: ClassificationChoice
    assign_owner_on: frozenset[str] = frozenset({"acknowledged", "closed"})
    comment_on_escalation: bool = False
    resolve_signl_on_close: bool = True
    reraise_on_reopen: bool = False
    #: How long an event for a Signl of this connector waits in the inbox for its link before it is finished DEAD.
    unmatched_event_limit: timedelta = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class _Skip:
    """The event is finished without any action, for ``reason`` (recorded with it and logged)."""

    reason: str


class _Wait:
    """The event names a Signl of this connector that is not linked yet: it stays in the inbox."""


_WAIT = _Wait()


class ReversePath:
    def __init__(self, connector: str, *, source: IncidentSource, pager: Pager, store: StateStore,
                 sync: ReverseSettings, owners: OwnerDirectory, render: RenderContext, metrics: Metrics,
                 max_age: timedelta, tag: str | None = None) -> None:
        self.connector = connector
        #: The forward path's tag: a tag row still pending for an incident goes with its acknowledge or close.
        self.tag = tag
        self.source = source
        self.pager = pager
        self.store = store
        self.sync = sync
        self.owners = owners
        self.render = render
        self.metrics = metrics
        self.max_age = max_age
        self.unmatched_event_limit = sync.unmatched_event_limit

    # -- inbox → outbox -------------------------------------------------------------------------------------------
    async def process_inbox(self, now: datetime, report: PollReport, *, limit: int = 500) -> None:
        """Turn pending SIGNL4 events into outbox actions, each event in one transaction with its actions.

        An event for a Signl of this connector that is not linked yet (its send is in flight, or in doubt until the
        next pass reconciles it) stays PENDING, untouched, and is applied in a later cycle once the link exists;
        only after ``sync.unmatched_event_limit`` is it finished DEAD (logged and counted). Waiting events are
        skipped by key, so a backlog of them never hides the events received after them.
        """
        after: tuple[datetime, str] | None = None
        while True:
            batch = await self.store.pending_inbox(self.connector, limit, after=after)
            report.inbox_events += len(batch)
            for item in batch:
                await self._process_event(item, now)
            if len(batch) < limit:
                return
            after = (batch[-1].received_at, batch[-1].event_id)

    async def _process_event(self, item: InboxEvent, now: datetime) -> None:
        try:
            event = Signl4Event.from_inbox(item.payload)
        except ValueError as exc:
            await self.store.finish_inbox(self.connector, item.event_id, now, state=InboxState.DEAD,
                                          error=str(exc), fence=current_fence())
            return
        plan = await self._plan(event, now)
        if isinstance(plan, _Wait):
            waited = now - item.received_at
            if waited < self.unmatched_event_limit:
                return  # PENDING as it is (no attempt is counted): the link may be recorded by the next pass
            reason = (f"no Signl of this connector has ExternalID {event.external_id!r} after "
                      f"{_describe(waited)} (limit {_describe(self.unmatched_event_limit)}): its send was never "
                      "recorded as done, or the Signl was raised by another installation with this connector name")
            await self.store.finish_inbox(self.connector, item.event_id, now, state=InboxState.DEAD, error=reason,
                                          fence=current_fence())
            self.metrics.inbox_unmatched.labels(self.connector).inc()
            log.warning("signl4_event_unmatched", connector=self.connector, event_id=item.event_id,
                        kind=event.kind.value, external_id=event.external_id, reason=reason)
            return
        if isinstance(plan, _Skip):
            log.info("signl4_event_skipped", connector=self.connector, event_id=item.event_id,
                     kind=event.kind.value, reason=plan.reason)
            await self.store.finish_inbox(self.connector, item.event_id, now, state=InboxState.DONE,
                                          error=plan.reason, fence=current_fence())
            return
        await self.store.finish_inbox(self.connector, item.event_id, now, state=InboxState.DONE, follow_ups=plan,
                                      fence=current_fence())

    def _is_ours(self, external_id: str) -> bool:
        """Whether ``external_id`` has the form of the ExternalIDs this connector gives its Signls."""
        return external_id.startswith(external_id_prefix(self.connector))

    async def _plan(self, event: Signl4Event, now: datetime) -> list[OutboxAction] | _Skip | _Wait:
        if event.kind in (EventKind.CREATED, EventKind.OTHER) or not event.external_id:
            return []
        if event.kind is EventKind.ANNOTATED and not event.annotation:
            # A 203 without text (a picture, or a malformed event): an empty "[SIGNL4] name: " comment helps nobody.
            return _Skip("annotation event without a message: nothing to write to the incident")
        link = await self.store.get_link_by_external_id(self.connector, event.external_id)
        if link is None:
            if self._is_ours(event.external_id):
                return _WAIT  # our Signl, but its send's outcome is not recorded yet
            return []  # an alert this connector did not raise (another integration of the same team)
        if event.kind is EventKind.ANNOTATED and is_connector_note(event.annotation):
            return []  # our own note (e.g. "merged into #N"), not a responder's
        actions: list[OutboxAction] = []
        target = _target_of(link)
        state = link.state

        def action(purpose: str, payload: UpdateIncident | AddComment) -> None:
            actions.append(OutboxAction(key=comment_key(self.connector, event.intent_id, purpose),
                                        connector=self.connector, kind=payload.KIND, incident_id=target,
                                        payload=payload.to_record()))

        def comment(purpose: str, message: str) -> None:
            action(purpose, AddComment(comment_id_for(self.connector, event.intent_id, purpose), message, event))

        if event.kind is EventKind.ACKNOWLEDGED:
            action("ack", UpdateIncident(UpdateOp.ACKNOWLEDGE, event))
            comment("ack-comment", ack_comment(event))
        elif event.kind is EventKind.CLOSED:
            if state.closed_by in _OUR_CLOSES:
                return []  # the echo of our own resolve: the incident was closed (or merged) in the source first
            # The link records which row applies the close: until that row is done, the incident is not closed
            # *yet*, and a lifecycle pass must not take it for a reopen (``_close_not_applied``).
            close_action = comment_key(self.connector, event.intent_id, "close")
            await self.store.put_link(link.with_state(replace(state, closed_by=ClosedBy.SIGNL4,
                                                              close_action=close_action), open=False), now)
            # The classification is decided when the close is applied, so an annotation keyword processed in the
            # same cycle (even if delivered after the close) still counts.
            action("close", UpdateIncident(UpdateOp.CLOSE, event))
        elif event.kind is EventKind.ANNOTATED:
            comment("annotation", annotation_comment(event))
            keyword = parse_keywords(event.annotation or "")
            if keyword is not None and keyword.choice is not None:
                await self.store.put_link(link.with_state(replace(state, classification=keyword.choice)), now)
            elif keyword is not None and keyword.error:
                comment("keyword-help", f"[SIGNL4] {keyword.error}")
        elif event.kind is EventKind.ESCALATED and self.sync.comment_on_escalation:
            comment("escalation", escalation_comment(event))
        return actions

    def _choice(self, link: Link | None) -> ClassificationChoice:
        annotated = link.state.classification if link else None
        return annotated or self.sync.close_choice

    # -- handlers ---------------------------------------------------------------------------------------------------
    async def _link_of(self, row: OutboxAction, event: Signl4Event) -> Link | None:
        if event.external_id:
            return await self.store.get_link_by_external_id(self.connector, event.external_id)
        return await self.store.get_link(self.connector, row.incident_id)

    async def _target(self, row: OutboxAction, event: Signl4Event) -> str:
        """Where the row's write goes now: the incident its Signl follows (it may have been merged since the row
        was queued), else the incident the row names."""
        link = await self._link_of(row, event)
        return _target_of(link) if link is not None else row.incident_id

    async def update_incident(self, row: OutboxAction, now: datetime) -> Done:
        update = payload(row, UpdateIncident)
        event, op = update.event, update.op
        wants_owner = (op is UpdateOp.ACKNOWLEDGE and "acknowledged" in self.sync.assign_owner_on) or (
            op is UpdateOp.CLOSE and "closed" in self.sync.assign_owner_on)
        owner, why = await self.owners.resolve(event.user) if wants_owner else (None, None)
        link = await self._link_of(row, event)
        target = _target_of(link) if link is not None else row.incident_id
        pending_tag = await self._pending_tag(link, target)
        tags = (pending_tag[1],) if pending_tag else ()
        if op is UpdateOp.ACKNOWLEDGE:
            written = await self.source.acknowledge(target, owner, tags=tags)
        else:
            choice = self._choice(link)
            message = close_comment(event, choice)
            written = await self.source.close(target, choice, message, owner, tags=tags)
            await self.source.add_comment(target, comment_id_for(self.connector, event.intent_id, "close-comment"),
                                          message)
        if pending_tag and written:
            # The tag went with this write: its own row is done (one write instead of two). A crash before this
            # line leaves the row pending; it then finds the label and writes nothing.
            await self.store.complete(pending_tag[0], now, {"written": True, "coalesced_into": row.key},
                                      fence=current_fence())
        if why and wants_owner:
            await self.source.add_comment(target, comment_id_for(self.connector, event.intent_id, "owner"),
                                          f"[SIGNL4] Owner not assigned: {why}.")
        if event.raised_at is not None:
            self.metrics.sync_latency.labels(self.connector).observe(max(0.0, (now - event.raised_at).total_seconds()))
        log.info("incident_synced", connector=self.connector, op=op.value, written=written,
                 incident_id=target.rsplit("/", 1)[-1])
        applied = None
        if op is UpdateOp.CLOSE and link is not None and link.state.close_action == row.key:
            # The close reached the incident: from now on an open incident means someone reopened it. Dropping the
            # marker with the row's completion also lets old outbox rows be pruned without losing that fact.
            applied = link.with_state(replace(link.state, close_action=None))
        return Done(result={"written": written, "owner_unresolved": why}, link=applied)

    async def _pending_tag(self, link: Link | None, target: str) -> tuple[str, str] | None:
        """(row key, tag) of the tag row still open for the incident ``target`` of ``link``, if any."""
        if self.tag is None or link is None:
            return None
        key = tag_key(self.connector, link.external_id, self.tag)
        tag_row = await self.store.get_action(key)
        if tag_row is None or tag_row.state not in (ActionState.PENDING, ActionState.IN_FLIGHT):
            return None
        if tag_row.incident_id != target:
            return None  # the Signl follows a surviving incident now: the tag row names the merged one
        return key, self.tag

    async def add_comment(self, row: OutboxAction, now: datetime) -> Done:
        note = payload(row, AddComment)
        target = row.incident_id
        if note.event is not None:  # a responder's note: it follows the Signl's incident
            target = await self._target(row, note.event)
        await self.source.add_comment(target, note.comment_id, note.message)
        return Done(result={"comment_id": note.comment_id})

    async def resolve_signl(self, row: OutboxAction, now: datetime) -> Done:
        external_id = payload(row, ResolveSignl).external_id
        await self.pager.send(SignlRequest(external_id=external_id, status=SignlStatus.RESOLVED))
        link = await self.store.get_link(self.connector, row.incident_id)
        new_link = None
        if link is not None and link.external_id == external_id:
            state = link.state
            closed_by = ClosedBy.MERGE if state.closed_by is ClosedBy.MERGE else ClosedBy.SOURCE
            new_link = link.with_state(replace(state, closed_by=closed_by), open=False)
        log.info("signl_resolved", connector=self.connector, external_id=external_id)
        return Done(result={"resolved": external_id}, link=new_link)

    async def annotate_signl(self, row: OutboxAction, now: datetime) -> Done:
        """Annotate the Signl of ``payload.external_id`` with ``payload.text`` (SIGNL4 REST API).

        An annotation is not idempotent, so an in-doubt row first looks for its text among the annotations."""
        note = payload(row, AnnotateSignl)
        external_id, text = note.external_id, note.text
        found = await self.pager.find_by_external_id(external_id)
        if not found:
            log.warning("annotation_target_missing", connector=self.connector, external_id=external_id)
            return Done(result={"annotated": False, "reason": "no SIGNL4 alert with this ExternalID"})
        alert_id = found[0].alert_id
        if row.in_doubt and text in await self.pager.list_annotation_texts(alert_id):
            return Done(result={"annotated": True, "reconciled": True})
        await self.pager.annotate(alert_id, text)
        return Done(result={"annotated": True, "alert_id": alert_id})

    # -- lifecycle: source → SIGNL4 -------------------------------------------------------------------------------
    async def apply_lifecycle(self, incidents: list[Incident], now: datetime, report: PollReport) -> None:
        """Lifecycle decisions for incidents read as changed (``engine/incident_poll.py``, one list read per poll).

        Besides closes and reopens (each optional) it follows Defender merges, which every linked Signl needs so
        that its later actions reach an incident that still exists. Every action it queues is keyed, so an incident
        read again (the overlap of the next read) queues nothing twice.
        """
        links = await self.store.links_for(self.connector, [i.resource_id for i in incidents])
        for incident in incidents:
            link = links.get(incident.resource_id)
            if link is None:
                continue
            if incident.merged:
                await self._follow_merge(incident, link, now, report)
                continue
            closed = incident.status is IncidentStatus.CLOSED
            if closed and link.open and self.sync.resolve_signl_on_close:
                await self._enqueue_resolve(link, now)
            elif (not closed and not link.open and self.sync.reraise_on_reopen
                  and not await self._close_not_applied(link)):
                await self._enqueue_reraise(incident, link, now, report)

    async def _close_not_applied(self, link: Link) -> bool:
        """Whether ``link`` was closed from SIGNL4 and that close has not reached the incident: its row is queued,
        retrying, in doubt after a crash, dead, or not even written yet (a crash between the link and the inbox
        transaction). The incident is then open because it was never closed, not because someone reopened it."""
        key = link.state.close_action
        if not key:
            return False
        row = await self.store.get_action(key)
        return row is None or row.state is not ActionState.DONE

    async def _enqueue_resolve(self, link: Link, now: datetime) -> None:
        await self.store.enqueue(self._resolve_action(link), now)

    async def _enqueue_reraise(self, incident: Any, link: Link, now: datetime, report: PollReport) -> None:
        ctx = replace(self.render, generation=link.generation + 1)
        request = render_signl(incident, ctx)
        inserted = await self.store.enqueue(OutboxAction(
            key=raise_key(self.connector, request.external_id), connector=self.connector,
            kind=ActionKind.RAISE_SIGNL, incident_id=incident.resource_id,
            payload=RaiseSignl(request=request, incident_number=incident.number, incident_created=now,
                               generation=ctx.generation).to_record(),
        ), now)
        if inserted:
            report.enqueued.append(incident)
            log.info("incident_reopened", connector=self.connector, incident=incident.number,
                     generation=ctx.generation)

    async def resolve_closed_links(self, now: datetime, *, limit: int = 100) -> int:
        """Reconciliation sweep: GET each open link's incident (bounded) and repair drift the list query missed."""
        repaired = 0
        for link in await self.store.open_links(self.connector, limit):
            try:
                incident = await self.source.get(link.incident_id)
            except NotFoundError as exc:
                # Deleted, or past the source's retention: nothing to repair, and no reason to fail the sweep (and
                # the connector's health) on every cycle, or to leave the links after it unchecked.
                log.warning("reconcile_incident_missing", connector=self.connector,
                            incident=link.incident_number, error=exc.message)
                continue
            if incident.merged:
                repaired += await self._follow_merge(incident, link, now, None)
            elif incident.status is IncidentStatus.CLOSED and self.sync.resolve_signl_on_close:
                await self._enqueue_resolve(link, now)
                repaired += 1
        return repaired

    # -- Defender merges --------------------------------------------------------------------------------------------
    async def _follow_merge(self, incident: Incident, link: Link, now: datetime, report: PollReport | None) -> int:
        """Follow the merge of ``incident`` (linked by ``link``); 1 if something was done, 0 if it was done before.

        Every side effect is keyed by (ExternalID, survivor). A moved link is written in one transaction with its
        notes; otherwise the notes are queued before the link records the outcome. Either way a crash in between
        repeats nothing (the keys exist) and loses nothing (the link does not say "done" yet).
        """
        if link.state.merge_followed:
            return 0  # followed before (and the survivor already had its own Signl, or was unknown)
        survivor = await self.source.follow_merge(incident)
        if survivor is None:
            outcome = MergeOutcome.UNKNOWN_SURVIVOR
        elif await self._has_signl(survivor):
            outcome = MergeOutcome.RESOLVED
        else:
            outcome = MergeOutcome.RELINKED
        survivor_id = survivor.resource_id if survivor is not None else ""
        number = survivor.number if survivor is not None else None
        url = (survivor.provider_url or survivor.url) if survivor is not None else (incident.provider_url or
                                                                                     incident.url)
        notes: list[OutboxAction] = []
        if self.pager.can_annotate:
            notes.append(OutboxAction(
                key=merge_key(self.connector, link.external_id, survivor_id, "annotation"), connector=self.connector,
                kind=ActionKind.ANNOTATE_SIGNL, incident_id=survivor_id or link.incident_id,
                payload=AnnotateSignl(link.external_id,
                                      merge_annotation(outcome, incident.number, number, url)).to_record(),
            ))
        notes.append(OutboxAction(
            key=merge_key(self.connector, link.external_id, survivor_id, "comment"), connector=self.connector,
            kind=ActionKind.ADD_COMMENT, incident_id=survivor_id or link.incident_id,
            payload=AddComment(comment_id_for(self.connector, f"merge|{link.external_id}|{survivor_id}"),
                               merge_comment(outcome, incident.number, number)).to_record(),
        ))
        if outcome is MergeOutcome.RELINKED:
            assert survivor is not None
            closed = survivor.status is IncidentStatus.CLOSED
            state = link.state
            moved = link.with_state(replace(state, merged_from=(*state.merged_from, incident.resource_id)),
                                    incident_id=survivor.resource_id, incident_number=survivor.number)
            if closed and link.open and self.sync.resolve_signl_on_close:
                notes.append(self._resolve_action(moved))
            await self.store.move_link(moved, from_incident_id=link.incident_id, now=now, follow_ups=notes)
        else:
            # The merged incident is closed for good: its Signl is resolved (for RESOLVED even when closes are not
            # synced, since the survivor pages on its own Signl). The link stays, pointing at the survivor.
            resolve = link.open and (outcome is MergeOutcome.RESOLVED or self.sync.resolve_signl_on_close)
            if resolve:
                notes.append(self._resolve_action(link))
            state = replace(link.state, merged_into=survivor_id)
            if resolve:
                state = replace(state, closed_by=ClosedBy.MERGE)
            for note in notes:
                await self.store.enqueue(note, now)
            await self.store.put_link(link.with_state(state, open=link.open and not resolve), now)
        self.metrics.actions.labels(self.connector, f"merge_{outcome.value}", "done").inc()
        log.info("incident_merged", connector=self.connector, incident=incident.number, into=number,
                 outcome=outcome.value)
        if report is not None:
            report.merged.append((incident, survivor, outcome.value))
        return 1

    async def _has_signl(self, incident: Incident) -> bool:
        """Whether ``incident`` has a Signl of ours, or one is queued for it."""
        if await self.store.get_link(self.connector, incident.resource_id) is not None:
            return True
        queued = raise_key(self.connector, external_id_for(self.connector, incident.resource_id,
                                                           self.render.generation))
        return await self.store.get_action(queued) is not None

    def _resolve_action(self, link: Link) -> OutboxAction:
        return OutboxAction(
            key=resolve_key(self.connector, link.external_id), connector=self.connector,
            kind=ActionKind.RESOLVE_SIGNL, incident_id=link.incident_id,
            payload=ResolveSignl(link.external_id).to_record(),
        )


def _describe(span: timedelta) -> str:
    return span_text(span.total_seconds(), parts=2)


def _target_of(link: Link) -> str:
    """The incident a Signl's actions go to: the survivor when its incident was merged into one that has its own
    Signl, else the linked incident (a link that followed a merge already names the survivor)."""
    return link.state.merged_into or link.incident_id
