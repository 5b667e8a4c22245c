"""Rows written before payloads and link state carried a version (``"v"``) still load, on every store: each
outbox kind's payload, a link's data, a polled event kept in the inbox as a webhook envelope. The literals below
are the exact forms the earlier code wrote."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from sentinel_signl4.domain import Classification, ClassificationReason, SignlStatus
from sentinel_signl4.domain.actions import (
    AddComment,
    AnnotateSignl,
    RaiseSignl,
    ResolveSignl,
    TagIncident,
    UpdateOp,
    payload_of,
)
from sentinel_signl4.domain.enums import ActionKind
from sentinel_signl4.domain.link_state import ClosedBy, LinkState
from sentinel_signl4.domain.signl4_events import EventKind, Signl4Event
from sentinel_signl4.domain.sync import ClassificationChoice
from sentinel_signl4.store.sql import SqlStateStore
from store_fixtures import make_action, make_event, make_link

EVENT = {"id": "e-1", "kind": "closed", "type": 201, "raised_at": "2025-03-01T11:59:00+00:00",
         "external_id": "s4s:c1:abc", "alert_id": "a-1",
         "user": {"id": "u1", "name": "Adele", "mail": "adele@contoso.test"}, "annotation": None,
         "annotation_id": None}
REQUEST = {"external_id": "s4s:c1:abc", "status": "new", "title": "4711 | Sign-in", "message": "m",
           "parameters": {"Severity": "High"}, "service": None, "alerting_scenario": None,
           "source_system": "MicrosoftSentinel"}

OLD_PAYLOADS: dict[ActionKind, tuple[dict[str, Any], object]] = {
    ActionKind.RAISE_SIGNL: (
        {"request": REQUEST, "incident_number": 4711, "incident_created": "2025-03-01T11:58:00+00:00",
         "severity": "High", "incident_url": "https://portal/4711"},
        lambda p: (p.incident_number, p.incident_created, p.severity, p.incident_url, p.generation,
                   p.request.title) == (4711, datetime(2025, 3, 1, 11, 58, tzinfo=UTC), "High",
                                        "https://portal/4711", None, "4711 | Sign-in")),
    ActionKind.TAG_INCIDENT: ({"tag": "SIGNL4"}, lambda p: p == TagIncident("SIGNL4")),
    ActionKind.UPDATE_INCIDENT: (
        {"op": "close", "event": EVENT},
        lambda p: p.op is UpdateOp.CLOSE and p.event.kind is EventKind.CLOSED and p.event.user.mail ==
        "adele@contoso.test"),
    ActionKind.ADD_COMMENT: (
        {"comment_id": "cid", "message": "Acknowledged", "event": EVENT},
        lambda p: (p.comment_id, p.message, p.event.event_id) == ("cid", "Acknowledged", "e-1")),
    ActionKind.RESOLVE_SIGNL: ({"external_id": "s4s:c1:abc"}, lambda p: p == ResolveSignl("s4s:c1:abc")),
    ActionKind.ANNOTATE_SIGNL: ({"external_id": "s4s:c1:abc", "text": "[sentinel-signl4] merged into #2"},
                                lambda p: p == AnnotateSignl("s4s:c1:abc", "[sentinel-signl4] merged into #2")),
}


@pytest.mark.parametrize("kind", list(OLD_PAYLOADS))
async def test_an_outbox_payload_written_without_a_version_loads_typed(store: SqlStateStore, now: datetime,
                                                                       kind: ActionKind) -> None:
    old, expected = OLD_PAYLOADS[kind]
    await store.enqueue(make_action(f"k-{kind.value}", kind=kind, payload=old), now)
    row = await store.get_action(f"k-{kind.value}")
    assert row is not None
    typed = payload_of(row.kind, row.payload)
    assert callable(expected) and expected(typed)
    again = typed.to_record()
    assert again["v"] == 1 and _unversioned(again) == old, "re-encoding lost or changed a key"


def _unversioned(record: Any) -> Any:
    if isinstance(record, dict):
        return {k: _unversioned(v) for k, v in record.items() if k != "v"}
    return record


async def test_a_comment_of_our_own_written_without_a_version_has_no_event(store: SqlStateStore,
                                                                           now: datetime) -> None:
    await store.enqueue(make_action("k", kind=ActionKind.ADD_COMMENT,
                                    payload={"comment_id": "m", "message": "merged into #2"}), now)
    row = await store.get_action("k")
    assert row is not None and payload_of(row.kind, row.payload) == AddComment("m", "merged into #2")


async def test_a_reraise_written_without_a_version_keeps_its_generation(store: SqlStateStore,
                                                                       now: datetime) -> None:
    old = {"request": REQUEST, "incident_number": 4711, "incident_created": now.isoformat(), "generation": 2}
    await store.enqueue(make_action("k", payload=old), now)
    row = await store.get_action("k")
    assert row is not None
    typed = payload_of(row.kind, row.payload)
    assert isinstance(typed, RaiseSignl) and typed.generation == 2 and typed.request.status is SignlStatus.NEW


async def test_link_data_written_without_a_version_loads_as_typed_state(store: SqlStateStore,
                                                                        now: datetime) -> None:
    old = {"closed_by": "signl4", "close_action": "c1:comment:x:close",
           "classification": {"classification": "FalsePositive", "reason": "IncorrectAlertLogic"},
           "merged_into": "", "merged_from": ["inc-0"]}
    await store.put_link(make_link("i1", data=old), now)
    link = await store.get_link("c1", "i1")
    assert link is not None
    assert link.state == LinkState(
        closed_by=ClosedBy.SIGNL4, close_action="c1:comment:x:close",
        classification=ClassificationChoice(Classification.FALSE_POSITIVE,
                                            ClassificationReason.INCORRECT_ALERT_LOGIC),
        merged_into="", merged_from=("inc-0",))
    assert link.state.merge_followed, "an unknown survivor ('') is a merge already followed"
    await store.put_link(link.with_state(link.state), now)
    again = await store.get_link("c1", "i1")
    assert again is not None and again.data == {**old, "v": 1}


async def test_link_data_with_keys_this_version_does_not_know_keeps_them(store: SqlStateStore,
                                                                        now: datetime) -> None:
    await store.put_link(make_link("i1", data={"closed_by": "operator", "note": "kept"}), now)
    link = await store.get_link("c1", "i1")
    assert link is not None and link.state.closed_by is None
    rewritten = link.with_state(link.state)
    assert rewritten.data == {"closed_by": "operator", "note": "kept", "v": 1}


async def test_a_polled_event_stored_as_a_webhook_envelope_still_loads(store: SqlStateStore, now: datetime) -> None:
    envelope = {"id": "poll:a-1:close", "eventType": 201, "eventRaisedUtc": "2025-03-01T11:59:00+00:00",
                "alert": {"statusCode": 4, "eventId": "ev", "externalEventId": "s4s:c1:abc", "id": "a-1"},
                "user": {"id": "u1", "username": "Adele", "mailaddress": "adele@contoso.test"}, "source": "poll"}
    await store.add_inbox(make_event("poll:a-1:close", now, payload=envelope))
    [item] = await store.pending_inbox("c1", 10)
    assert Signl4Event.from_inbox(item.payload) == replace(Signl4Event.from_record(EVENT), event_id="poll:a-1:close")
