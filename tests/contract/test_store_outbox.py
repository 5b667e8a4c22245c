"""Outbox contract: written before attempted, never overwritten, DONE only once, in doubt stays in doubt."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import MappingProxyType

import pytest
import sqlalchemy.exc

from sentinel_signl4.domain.enums import ActionKind, ActionState
from sentinel_signl4.store.base import ActionClosedError, InboxState
from sentinel_signl4.store.sql import SqlStateStore
from store_fixtures import make_action, make_event, make_link

S = timedelta(seconds=1)


async def test_enqueue_inserts_once_and_never_overwrites(store: SqlStateStore, now: datetime) -> None:
    assert await store.enqueue(make_action("k1", payload={"v": 1}), now) is True
    clash = make_action("k1", kind=ActionKind.ADD_COMMENT, payload={"v": 2}, state=ActionState.DONE,
                        attempts=7, in_doubt=True)
    assert await store.enqueue(clash, now + S) is False

    row = await store.get_action("k1")
    assert row is not None
    assert (row.kind, row.payload, row.state, row.attempts, row.in_doubt) == (
        ActionKind.RAISE_SIGNL, {"v": 1}, ActionState.PENDING, 0, False)
    assert row.created_at == row.updated_at == now


async def test_enqueue_of_a_finished_key_does_not_reopen_it(store: SqlStateStore, now: datetime) -> None:
    await store.enqueue(make_action("k1"), now)
    await store.complete("k1", now, {"eventId": "e1"})
    assert await store.enqueue(make_action("k1"), now + S) is False
    row = await store.get_action("k1")
    assert row is not None
    assert row.state is ActionState.DONE


async def test_get_action_of_unknown_key_is_none(store: SqlStateStore) -> None:
    assert await store.get_action("nope") is None


async def test_due_actions_selects_due_pending_and_in_flight_of_the_connector(
        store: SqlStateStore, now: datetime) -> None:
    await store.enqueue(make_action("no-time"), now)
    await store.enqueue(make_action("past", next_attempt_at=now - S), now)
    await store.enqueue(make_action("exactly-now", next_attempt_at=now), now)
    await store.enqueue(make_action("future", next_attempt_at=now + S), now)
    await store.enqueue(make_action("other-connector", connector="c2"), now)
    for key in ("done", "dead", "flying"):
        await store.enqueue(make_action(key), now)
    await store.complete("done", now, {})
    await store.mark_dead("dead", now, "gave up")
    await store.mark_in_flight("flying", now)

    due = {row.key for row in await store.due_actions("c1", now, 100)}
    assert due == {"no-time", "past", "exactly-now", "flying"}
    later = {row.key for row in await store.due_actions("c1", now + S, 100)}
    assert "future" in later


async def test_due_actions_are_oldest_first_then_by_key_and_limited(store: SqlStateStore, now: datetime) -> None:
    await store.enqueue(make_action("b-late"), now + 2 * S)
    await store.enqueue(make_action("z-early"), now)
    await store.enqueue(make_action("b-mid"), now + S)
    await store.enqueue(make_action("a-mid"), now + S)

    due = await store.due_actions("c1", now + 3 * S, 100)
    assert [row.key for row in due] == ["z-early", "a-mid", "b-mid", "b-late"]
    assert [row.key for row in await store.due_actions("c1", now + 3 * S, 2)] == ["z-early", "a-mid"]


async def test_rows_left_in_flight_come_back_in_doubt(store: SqlStateStore, now: datetime) -> None:
    await store.enqueue(make_action("k1"), now)
    await store.mark_in_flight("k1", now)
    # A crash here: the next pass finds the row IN_FLIGHT and must treat the send as possibly done.
    (row,) = await store.due_actions("c1", now + S, 10)
    assert row.state is ActionState.IN_FLIGHT
    assert row.in_doubt is True


async def test_mark_in_flight_counts_attempts_and_returns_the_row(store: SqlStateStore, now: datetime) -> None:
    await store.enqueue(make_action("k1"), now)
    started = await store.mark_in_flight("k1", now + S)
    assert (started.state, started.attempts, started.in_doubt, started.updated_at) == (
        ActionState.IN_FLIGHT, 1, False, now + S)
    await store.mark_retry("k1", now + S, now + 2 * S, "timeout", in_doubt=False)
    again = await store.mark_in_flight("k1", now + 2 * S)
    assert again.attempts == 2
    assert again == await store.get_action("k1")


async def test_starting_over_an_unfinished_attempt_marks_the_row_in_doubt(
        store: SqlStateStore, now: datetime) -> None:
    await store.enqueue(make_action("k1"), now)
    await store.mark_in_flight("k1", now)
    restarted = await store.mark_in_flight("k1", now + S)  # after a crash: outcome of attempt 1 unknown
    assert restarted.attempts == 2
    assert restarted.in_doubt is True
    await store.mark_retry("k1", now + S, now + S, "503", in_doubt=False)
    row = await store.get_action("k1")
    assert row is not None
    assert row.in_doubt is True


@pytest.mark.parametrize("finish", ["done", "dead"])
async def test_mark_in_flight_refuses_a_finished_row(store: SqlStateStore, now: datetime, finish: str) -> None:
    await store.enqueue(make_action("k1"), now)
    if finish == "done":
        await store.complete("k1", now, {"eventId": "e1"})
    else:
        await store.mark_dead("k1", now, "permanent")
    before = await store.get_action("k1")

    with pytest.raises(ActionClosedError) as raised:
        await store.mark_in_flight("k1", now + S)
    assert raised.value.key == "k1"
    assert raised.value.state is ActionState(finish)
    assert await store.get_action("k1") == before


async def test_marking_an_unknown_key_raises_key_error(store: SqlStateStore, now: datetime) -> None:
    with pytest.raises(KeyError):
        await store.mark_in_flight("nope", now)
    with pytest.raises(KeyError):
        await store.mark_retry("nope", now, now, "x", in_doubt=False)
    with pytest.raises(KeyError):
        await store.mark_dead("nope", now, "x")
    with pytest.raises(KeyError):
        await store.complete("nope", now, {})


async def test_mark_retry_makes_the_row_pending_until_its_next_attempt(
        store: SqlStateStore, now: datetime) -> None:
    await store.enqueue(make_action("k1"), now)
    await store.mark_in_flight("k1", now)
    await store.mark_retry("k1", now + S, now + 30 * S, "RateLimitedError: 429", in_doubt=False)

    row = await store.get_action("k1")
    assert row is not None
    assert (row.state, row.next_attempt_at, row.last_error, row.updated_at) == (
        ActionState.PENDING, now + 30 * S, "RateLimitedError: 429", now + S)
    assert await store.due_actions("c1", now + 29 * S, 10) == []
    assert [r.key for r in await store.due_actions("c1", now + 30 * S, 10)] == ["k1"]


async def test_mark_retry_ors_in_doubt(store: SqlStateStore, now: datetime) -> None:
    await store.enqueue(make_action("k1"), now)
    await store.mark_in_flight("k1", now)
    await store.mark_retry("k1", now, now, "timeout after send", in_doubt=True)
    await store.mark_in_flight("k1", now + S)
    await store.mark_retry("k1", now + S, now + S, "503 before send", in_doubt=False)
    row = await store.get_action("k1")
    assert row is not None
    assert row.in_doubt is True


async def test_complete_writes_result_link_and_follow_ups_together(store: SqlStateStore, now: datetime) -> None:
    await store.enqueue(make_action("raise:i1", incident_id="i1"), now)
    await store.enqueue(make_action("tag:i1", kind=ActionKind.TAG_INCIDENT, payload={"first": True}), now)
    await store.mark_in_flight("raise:i1", now)
    follow_ups = [
        make_action("tag:i1", kind=ActionKind.TAG_INCIDENT, payload={"second": True}),
        make_action("comment:i1", kind=ActionKind.ADD_COMMENT, next_attempt_at=now + S),
    ]
    await store.complete("raise:i1", now + S, {"eventId": "e1"},
                         link=make_link("i1", event_id="e1"), follow_ups=follow_ups)

    done = await store.get_action("raise:i1")
    assert done is not None
    assert (done.state, done.result, done.updated_at) == (ActionState.DONE, {"eventId": "e1"}, now + S)
    link = await store.get_link("c1", "i1")
    assert link is not None
    assert link.event_id == "e1"
    tag = await store.get_action("tag:i1")
    assert tag is not None
    assert tag.payload == {"first": True}
    comment = await store.get_action("comment:i1")
    assert comment is not None
    assert (comment.state, comment.created_at, comment.next_attempt_at) == (ActionState.PENDING, now + S, now + S)


async def test_complete_is_all_or_nothing(store: SqlStateStore, now: datetime) -> None:
    await store.put_link(make_link("other", external_id="ext-taken"), now)
    await store.enqueue(make_action("raise:i1", incident_id="i1"), now)
    await store.mark_in_flight("raise:i1", now)

    with pytest.raises(sqlalchemy.exc.IntegrityError):
        await store.complete("raise:i1", now, {"eventId": "e1"},
                             link=make_link("i1", external_id="ext-taken"),
                             follow_ups=[make_action("tag:i1", kind=ActionKind.TAG_INCIDENT)])

    row = await store.get_action("raise:i1")
    assert row is not None
    assert row.state is ActionState.IN_FLIGHT
    assert await store.get_link("c1", "i1") is None
    assert await store.get_action("tag:i1") is None


async def test_a_finished_row_never_changes(store: SqlStateStore, now: datetime) -> None:
    await store.enqueue(make_action("k1", incident_id="i1"), now)
    await store.complete("k1", now, {"eventId": "first"}, link=make_link("i1", event_id="first"))
    before = await store.get_action("k1")

    await store.complete("k1", now + S, {"eventId": "second"}, link=make_link("i1", event_id="second"),
                         follow_ups=[make_action("follow")])
    await store.mark_retry("k1", now + S, now + S, "late", in_doubt=True)
    await store.mark_dead("k1", now + S, "late")

    assert await store.get_action("k1") == before
    link = await store.get_link("c1", "i1")
    assert link is not None
    assert link.event_id == "first"
    assert await store.get_action("follow") is None


async def test_mark_dead_records_the_reason_and_stops_the_row(store: SqlStateStore, now: datetime) -> None:
    await store.enqueue(make_action("k1"), now)
    await store.mark_in_flight("k1", now)
    await store.mark_dead("k1", now + S, "PermanentError: 400 bad payload")
    row = await store.get_action("k1")
    assert row is not None
    assert (row.state, row.last_error) == (ActionState.DEAD, "PermanentError: 400 bad payload")
    assert await store.due_actions("c1", now + 100 * S, 10) == []
    await store.mark_retry("k1", now + 2 * S, now + 2 * S, "late retry", in_doubt=False)
    assert await store.get_action("k1") == row


async def test_count_actions_has_every_state(store: SqlStateStore, now: datetime) -> None:
    assert await store.count_actions("c1") == dict.fromkeys(ActionState, 0)
    for key in ("p1", "p2", "f", "d", "x", "y"):
        await store.enqueue(make_action(key), now)
    await store.enqueue(make_action("elsewhere", connector="c2"), now)
    await store.mark_in_flight("f", now)
    await store.complete("d", now, {})
    await store.mark_dead("x", now, "no")
    await store.discard_actions(now, "not wanted", keys=["y"])
    assert await store.count_actions("c1") == {
        ActionState.PENDING: 2, ActionState.IN_FLIGHT: 1, ActionState.DONE: 1, ActionState.DEAD: 1,
        ActionState.DISCARDED: 1}


async def test_list_actions_filters_by_state_newest_update_first(store: SqlStateStore, now: datetime) -> None:
    for i, key in enumerate(("a", "b", "c", "d")):
        await store.enqueue(make_action(key), now + i * S)
    await store.enqueue(make_action("elsewhere", connector="c2"), now)
    await store.mark_dead("a", now + 10 * S, "x")
    await store.mark_dead("c", now + 11 * S, "y")

    assert [r.key for r in await store.list_actions("c1")] == ["c", "a", "d", "b"]
    assert [r.key for r in await store.list_actions("c1", states=[ActionState.DEAD])] == ["c", "a"]
    assert [r.key for r in await store.list_actions("c1", states=[ActionState.PENDING], limit=1)] == ["d"]
    assert await store.list_actions("c1", states=[]) == []


async def test_payloads_round_trip_unicode_and_nesting(store: SqlStateStore, now: datetime) -> None:
    payload = {
        "title": "Ungewöhnliche Anmeldung — 東京 🚨 مرحبا",
        "nested": {"list": [1, 2.5, None, True, "ß"], "empty": {}},
        "quote": 'it\'s "quoted" \\ back\nslash',
    }
    await store.enqueue(make_action("k1", payload=MappingProxyType(payload)), now)
    await store.complete("k1", now, {"emoji": "✅"})
    row = await store.get_action("k1")
    assert row is not None
    assert row.payload == payload
    assert row.result == {"emoji": "✅"}


async def test_prune_deletes_only_old_done_rows_and_finished_events(store: SqlStateStore, now: datetime) -> None:
    old = now - timedelta(days=40)
    for key in ("done-old", "pending-old", "dead-old", "done-new"):
        await store.enqueue(make_action(key), old if key.endswith("old") else now)
    await store.mark_in_flight("done-old", old)
    await store.complete("done-old", old, {"ok": True}, link=make_link("inc-old"))
    await store.mark_in_flight("dead-old", old)
    await store.mark_dead("dead-old", old, "gave up")
    await store.mark_in_flight("done-new", now)
    await store.complete("done-new", now, {"ok": True})
    await store.add_inbox(make_event("e-old", received_at=old))
    await store.finish_inbox("c1", "e-old", old, state=InboxState.DONE)
    await store.add_inbox(make_event("e-pending-old", received_at=old))
    await store.add_inbox(make_event("e-new", received_at=now))
    await store.finish_inbox("c1", "e-new", now, state=InboxState.DONE)

    assert await store.prune("c1", now - timedelta(days=30)) == (1, 1)
    assert await store.get_action("done-old") is None
    for kept in ("pending-old", "dead-old", "done-new"):
        assert await store.get_action(kept) is not None
    assert await store.get_link("c1", "inc-old") is not None  # links are kept for good
    assert [e.event_id for e in await store.pending_inbox("c1", 10)] == ["e-pending-old"]
    assert await store.add_inbox(make_event("e-new", received_at=now)) is False  # still remembered
    assert await store.prune("c1", now - timedelta(days=30)) == (0, 0)
