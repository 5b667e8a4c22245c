"""Maintenance windows in the store: listed until they end or are cleared, cleared once, and held rows released."""

from __future__ import annotations

from datetime import datetime, timedelta

from sentinel_signl4.domain.enums import ActionState
from sentinel_signl4.store.pauses import Pause, covering
from sentinel_signl4.store.sql import SqlStateStore
from store_fixtures import make_action

H = timedelta(hours=1)


def pause(pid: str, now: datetime, *, connector: str = "c1", ends: timedelta = H, severities: tuple[str, ...] = (),
          mode: str = "skip", starts: timedelta = timedelta(0)) -> Pause:
    return Pause(id=pid, connector=connector, severities=severities, starts_at=now + starts, ends_at=now + ends,
                 mode="hold" if mode == "hold" else "skip", reason=f"why {pid}", created_by="ada", created_at=now)


async def test_pauses_are_listed_until_they_end_soonest_first(store: SqlStateStore, now: datetime) -> None:
    await store.add_pause(pause("late", now, ends=3 * H, severities=("High", "Medium")))
    await store.add_pause(pause("soon", now, ends=H))
    await store.add_pause(pause("all", now, connector="*", ends=2 * H))
    await store.add_pause(pause("other", now, connector="c2", ends=2 * H))
    await store.add_pause(pause("future", now, starts=4 * H, ends=5 * H))
    listed = await store.pauses(now, connector="c1")
    assert [p.id for p in listed] == ["soon", "all", "late", "future"]
    assert listed[2].severities == ("High", "Medium") and listed[2].reason == "why late"
    assert listed[2].ends_at == now + 3 * H and listed[2].created_by == "ada"
    assert [p.id for p in await store.pauses(now + H)] == ["all", "other", "late", "future"]  # "soon" ended
    assert covering(listed, "c1", "high", now).id == "late"  # type: ignore[union-attr]
    assert covering(listed, "c1", "Low", now).id == "all"  # type: ignore[union-attr]
    assert covering(listed, "c1", "Low", now + 3 * H) is None  # "future" has not started


async def test_clearing_ends_a_pause_once(store: SqlStateStore, now: datetime) -> None:
    await store.add_pause(pause("p1", now))
    cleared = await store.clear_pause("p1", now + timedelta(minutes=5), by="bob")
    assert cleared is not None and cleared.cleared_by == "bob" and cleared.cleared_at == now + timedelta(minutes=5)
    assert await store.clear_pause("p1", now + timedelta(minutes=6), by="bob") is None
    assert await store.clear_pause("nosuch", now, by="bob") is None
    assert await store.pauses(now) == []


async def test_release_held_makes_only_rows_held_until_that_end_due(store: SqlStateStore, now: datetime) -> None:
    end = now + H
    await store.enqueue(make_action("held", "c1", next_attempt_at=end), end)
    await store.enqueue(make_action("backoff", "c1", next_attempt_at=end + timedelta(seconds=1)), now)
    await store.enqueue(make_action("other", "c2", next_attempt_at=end), end)
    assert await store.due_actions("c1", now, 10) == []
    assert await store.release_held("c1", end, now) == ["held"]
    [due] = await store.due_actions("c1", now, 10)
    assert due.key == "held" and due.state is ActionState.PENDING and due.created_at == now
