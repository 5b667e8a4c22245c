"""Property: any sequence of outbox operations keeps one row per key, follows the state machine, and never
changes a row once it is DONE (or DEAD)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentinel_signl4.domain.enums import ActionState
from sentinel_signl4.store.base import ActionClosedError, OutboxAction
from sentinel_signl4.store.sql import SqlStateStore
from store_fixtures import make_action

KEYS = ("a", "b", "c", "d")
_OPEN = (ActionState.PENDING, ActionState.IN_FLIGHT)


@dataclass(frozen=True)
class Op:
    name: str
    key: str
    other: str = ""
    flag: bool = False


_ops = st.one_of(
    st.builds(Op, st.just("enqueue"), st.sampled_from(KEYS), flag=st.booleans()),
    st.builds(Op, st.just("in_flight"), st.sampled_from(KEYS)),
    st.builds(Op, st.just("retry"), st.sampled_from(KEYS), flag=st.booleans()),
    st.builds(Op, st.just("dead"), st.sampled_from(KEYS)),
    st.builds(Op, st.just("complete"), st.sampled_from(KEYS), other=st.sampled_from(KEYS)),
)


async def _apply(store: SqlStateStore, op: Op, key: str, other: str, connector: str, now: datetime,
                 model: dict[str, ActionState]) -> None:
    """Run ``op`` and update ``model`` (key → expected state) by the contract, checking what the store says."""
    known, state = key in model, model.get(key)
    if op.name == "enqueue":
        inserted = await store.enqueue(make_action(key, connector, payload={"flag": op.flag}), now)
        assert inserted is not known
        model.setdefault(key, ActionState.PENDING)
        return
    if not known:
        with pytest.raises(KeyError):
            await _mark(store, op, key, other, connector, now)
        return
    if op.name == "in_flight" and state not in _OPEN:
        with pytest.raises(ActionClosedError):
            await _mark(store, op, key, other, connector, now)
        return
    await _mark(store, op, key, other, connector, now)
    if state in _OPEN:
        model[key] = {"in_flight": ActionState.IN_FLIGHT, "retry": ActionState.PENDING,
                      "dead": ActionState.DEAD, "complete": ActionState.DONE}[op.name]
        if op.name == "complete":
            model.setdefault(other, ActionState.PENDING)


async def _mark(store: SqlStateStore, op: Op, key: str, other: str, connector: str, now: datetime) -> None:
    if op.name == "in_flight":
        await store.mark_in_flight(key, now)
    elif op.name == "retry":
        await store.mark_retry(key, now, now, f"error at {now.isoformat()}", in_doubt=op.flag)
    elif op.name == "dead":
        await store.mark_dead(key, now, "gave up")
    else:
        await store.complete(key, now, {"at": now.isoformat()}, follow_ups=[make_action(other, connector)])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(_ops, min_size=1, max_size=20))
async def test_outbox_invariants_hold_for_any_sequence(store: SqlStateStore, now: datetime, ops: list[Op]) -> None:
    # The store fixture is shared by all examples of this test: each example gets its own connector and keys.
    run = uuid.uuid4().hex[:8]
    connector = f"c-{run}"
    model: dict[str, ActionState] = {}
    finished: dict[str, OutboxAction] = {}
    for step, op in enumerate(ops):
        at = now + timedelta(seconds=step)
        await _apply(store, op, f"{run}-{op.key}", f"{run}-{op.other}", connector, at, model)

        rows = await store.list_actions(connector, limit=100)
        keys = [row.key for row in rows]
        assert len(keys) == len(set(keys)), "at most one row per key"
        assert {row.key: row.state for row in rows} == model
        for row in rows:
            if row.key in finished:
                assert row == finished[row.key], "a DONE or DEAD row never changes"
            elif row.state not in _OPEN:
                finished[row.key] = row
