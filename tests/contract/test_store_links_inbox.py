"""Links (incident ⇄ Signl) and inbox (SIGNL4 events, each processed to completion once) contracts."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy.exc

from sentinel_signl4.domain.enums import ActionKind, ActionState
from sentinel_signl4.store.base import InboxState
from sentinel_signl4.store.sql import SqlStateStore
from store_fixtures import make_action, make_event, make_link

S = timedelta(seconds=1)


# -- links -----------------------------------------------------------------------------------------------------
async def test_put_link_then_read_it_back_every_way(store: SqlStateStore, now: datetime) -> None:
    link = make_link("i1", external_id="ws1:i1", incident_number=4711, event_id="e1", alert_id="a1",
                     data={"title": "Ärger 🚨"})
    await store.put_link(link, now)

    expected = make_link("i1", external_id="ws1:i1", incident_number=4711, event_id="e1", alert_id="a1",
                         data={"title": "Ärger 🚨"}, created_at=now, updated_at=now)
    assert await store.get_link("c1", "i1") == expected
    assert await store.get_link_by_external_id("c1", "ws1:i1") == expected
    assert await store.get_link("c2", "i1") is None
    assert await store.get_link("c1", "nope") is None
    assert await store.get_link_by_external_id("c2", "ws1:i1") is None


async def test_put_link_replaces_but_keeps_created_at(store: SqlStateStore, now: datetime) -> None:
    await store.put_link(make_link("i1", event_id="e1"), now)
    await store.put_link(make_link("i1", event_id="e2", generation=2, open=False, data={"why": "closed"}),
                         now + S)
    link = await store.get_link("c1", "i1")
    assert link is not None
    assert (link.event_id, link.generation, link.open, link.data) == ("e2", 2, False, {"why": "closed"})
    assert (link.created_at, link.updated_at) == (now, now + S)


async def test_external_id_is_unique_per_connector(store: SqlStateStore, now: datetime) -> None:
    await store.put_link(make_link("i1", external_id="x"), now)
    with pytest.raises(sqlalchemy.exc.IntegrityError):
        await store.put_link(make_link("i2", external_id="x"), now)
    await store.put_link(make_link("i2", connector="c2", external_id="x"), now)  # other connector: fine
    assert (await store.get_link_by_external_id("c1", "x")) == await store.get_link("c1", "i1")


async def test_links_for_returns_only_linked_incidents_of_the_connector(
        store: SqlStateStore, now: datetime) -> None:
    await store.put_link(make_link("i1"), now)
    await store.put_link(make_link("i3"), now)
    await store.put_link(make_link("i2", connector="c2"), now)
    found = await store.links_for("c1", ["i1", "i2", "i3", "i4", "i1"])
    assert set(found) == {"i1", "i3"}
    assert found["i3"].incident_id == "i3"
    assert await store.links_for("c1", []) == {}


async def test_links_for_a_page_larger_than_one_query_chunk(store: SqlStateStore, now: datetime) -> None:
    for i in range(0, 1200, 10):
        await store.put_link(make_link(f"i{i}", incident_number=i), now)
    found = await store.links_for("c1", [f"i{i}" for i in range(1200)])
    assert set(found) == {f"i{i}" for i in range(0, 1200, 10)}


async def test_open_links_are_oldest_first_and_limited(store: SqlStateStore, now: datetime) -> None:
    await store.put_link(make_link("late"), now + 2 * S)
    await store.put_link(make_link("early"), now)
    await store.put_link(make_link("closed", open=False), now + S)
    await store.put_link(make_link("mid"), now + S)
    await store.put_link(make_link("elsewhere", connector="c2"), now)
    assert [link.incident_id for link in await store.open_links("c1")] == ["early", "mid", "late"]
    assert [link.incident_id for link in await store.open_links("c1", limit=1)] == ["early"]


async def test_move_link_rekeys_the_signl_to_another_incident_with_its_follow_ups(
        store: SqlStateStore, now: datetime) -> None:
    await store.put_link(make_link("merged", external_id="sig-1", incident_number=7, event_id="e1",
                                   data={"classification": {"classification": "TruePositive"}}), now)
    moved = make_link("survivor", external_id="sig-1", incident_number=5, event_id="e1",
                      data={"merged_from": ["merged"]})
    note = make_action("c1:merge:sig-1", kind=ActionKind.ADD_COMMENT, incident_id="survivor")
    await store.move_link(moved, from_incident_id="merged", now=now + S, follow_ups=[note])
    assert await store.get_link("c1", "merged") is None
    link = await store.get_link_by_external_id("c1", "sig-1")
    assert link is not None and (link.incident_id, link.incident_number) == ("survivor", 5)
    assert link.data == {"merged_from": ["merged"]}
    assert (link.created_at, link.updated_at) == (now, now + S)  # linked when the Signl was raised
    queued = await store.get_action("c1:merge:sig-1")
    assert queued is not None and queued.state is ActionState.PENDING


async def test_move_link_onto_a_linked_incident_writes_nothing(store: SqlStateStore, now: datetime) -> None:
    await store.put_link(make_link("merged", external_id="sig-1"), now)
    await store.put_link(make_link("survivor", external_id="sig-2"), now)
    with pytest.raises(sqlalchemy.exc.IntegrityError):
        await store.move_link(make_link("survivor", external_id="sig-1"), from_incident_id="merged", now=now,
                              follow_ups=[make_action("c1:merge:x", incident_id="survivor")])
    assert (await store.get_link("c1", "merged")) is not None
    assert (await store.get_link_by_external_id("c1", "sig-2")) is not None
    assert await store.get_action("c1:merge:x") is None


async def test_move_link_needs_the_link_it_moves(store: SqlStateStore, now: datetime) -> None:
    await store.put_link(make_link("merged", external_id="sig-1"), now)
    with pytest.raises(KeyError):
        await store.move_link(make_link("b", external_id="sig-1"), from_incident_id="nope", now=now)
    with pytest.raises(KeyError):
        await store.move_link(make_link("b", external_id="sig-other"), from_incident_id="merged", now=now)
    assert await store.get_link("c1", "b") is None


# -- inbox -----------------------------------------------------------------------------------------------------
async def test_add_inbox_absorbs_duplicates_without_changing_the_first(
        store: SqlStateStore, now: datetime) -> None:
    assert await store.add_inbox(make_event("ev1", now, payload={"status": 2, "user": "Zoë"})) is True
    assert await store.add_inbox(make_event("ev1", now + S, payload={"status": 4})) is False
    assert await store.add_inbox(make_event("ev1", now, connector="c2")) is True  # keyed per connector

    (event,) = await store.pending_inbox("c1", 10)
    assert (event.payload, event.received_at, event.state, event.attempts) == (
        {"status": 2, "user": "Zoë"}, now, InboxState.PENDING, 0)


async def test_pending_inbox_is_oldest_first_and_pending_only(store: SqlStateStore, now: datetime) -> None:
    await store.add_inbox(make_event("late", now + 2 * S))
    await store.add_inbox(make_event("b-early", now))
    await store.add_inbox(make_event("a-early", now))
    await store.add_inbox(make_event("finished", now - S))
    await store.add_inbox(make_event("elsewhere", now - S, connector="c2"))
    await store.finish_inbox("c1", "finished", now, state=InboxState.DONE)

    assert [e.event_id for e in await store.pending_inbox("c1", 10)] == ["a-early", "b-early", "late"]
    assert [e.event_id for e in await store.pending_inbox("c1", 1)] == ["a-early"]


async def test_pending_inbox_pages_by_key_past_events_that_stay_pending(store: SqlStateStore, now: datetime) -> None:
    for event_id, at in (("late", now + 2 * S), ("b-early", now), ("a-early", now), ("c-early", now)):
        await store.add_inbox(make_event(event_id, at))
    first = await store.pending_inbox("c1", 2)
    assert [e.event_id for e in first] == ["a-early", "b-early"]
    rest = await store.pending_inbox("c1", 2, after=(first[-1].received_at, first[-1].event_id))
    assert [e.event_id for e in rest] == ["c-early", "late"]
    assert await store.pending_inbox("c1", 2, after=(rest[-1].received_at, rest[-1].event_id)) == []


async def test_finish_inbox_done_enqueues_follow_ups_in_the_same_transaction(
        store: SqlStateStore, now: datetime) -> None:
    await store.add_inbox(make_event("ev1", now))
    await store.enqueue(make_action("comment:ev1", kind=ActionKind.ADD_COMMENT, payload={"first": True}), now)
    follow_ups = [
        make_action("comment:ev1", kind=ActionKind.ADD_COMMENT, payload={"second": True}),
        make_action("update:ev1", kind=ActionKind.UPDATE_INCIDENT),
    ]
    await store.finish_inbox("c1", "ev1", now + S, state=InboxState.DONE, follow_ups=follow_ups)

    assert await store.pending_inbox("c1", 10) == []
    comment = await store.get_action("comment:ev1")
    assert comment is not None
    assert comment.payload == {"first": True}
    update = await store.get_action("update:ev1")
    assert update is not None
    assert (update.state, update.created_at) == (ActionState.PENDING, now + S)


async def test_finish_inbox_pending_counts_an_attempt_and_keeps_the_event(
        store: SqlStateStore, now: datetime) -> None:
    await store.add_inbox(make_event("ev1", now))
    await store.finish_inbox("c1", "ev1", now + S, state=InboxState.PENDING, error="Graph 503")
    await store.finish_inbox("c1", "ev1", now + 2 * S, state=InboxState.PENDING, error="Graph 504")
    (event,) = await store.pending_inbox("c1", 10)
    assert (event.attempts, event.last_error, event.processed_at) == (2, "Graph 504", None)


async def test_finish_inbox_dead_and_then_never_again(store: SqlStateStore, now: datetime) -> None:
    await store.add_inbox(make_event("ev1", now))
    await store.finish_inbox("c1", "ev1", now + S, state=InboxState.DEAD, error="unknown user")
    await store.finish_inbox("c1", "ev1", now + 2 * S, state=InboxState.DONE,
                             follow_ups=[make_action("late-follow-up")])
    assert await store.pending_inbox("c1", 10) == []
    assert await store.get_action("late-follow-up") is None
    # The id stays absorbed: a redelivery of the same event is not processed again.
    assert await store.add_inbox(make_event("ev1", now + 3 * S)) is False


async def test_finish_inbox_rejects_unknown_events_and_states(store: SqlStateStore, now: datetime) -> None:
    with pytest.raises(KeyError):
        await store.finish_inbox("c1", "nope", now, state=InboxState.DONE)
    await store.add_inbox(make_event("ev1", now))
    with pytest.raises(ValueError, match="unknown inbox state"):
        await store.finish_inbox("c1", "ev1", now, state="finished")
