"""Leases and fencing on fakes: a replica whose lease was taken over while it was paused starts no send and
records nothing; the replica holding the lease pages once."""

from __future__ import annotations

import pytest
from engine_world import CONNECTOR, EngineWorld

from sentinel_signl4.domain import ActionKind, ActionState
from sentinel_signl4.engine.keys import raise_key
from sentinel_signl4.engine.leases import claim_lease, fence_for, fenced
from sentinel_signl4.store import LeaseLostError, StateStore

TTL = 30.0


async def test_a_replica_that_lost_its_lease_is_refused_before_its_send(store: StateStore) -> None:
    old = EngineWorld(store)
    incident = old.incident(1)
    paused = await claim_lease(store, CONNECTOR, "replica-a", old.now, TTL)
    assert paused is not None
    old.advance(seconds=TTL + 1)  # replica-a was paused past its TTL; replica-b takes the connector over
    taken = await claim_lease(store, CONNECTOR, "replica-b", old.now, TTL)
    assert taken is not None and taken.epoch == paused.epoch + 1
    with fenced(fence_for(paused, lambda: old.now)), pytest.raises(LeaseLostError):
        await old.runtime.run_once(old.now)
    assert old.pager.requests == [], "a send started under a lost lease"
    row = await store.get_action(raise_key(CONNECTOR, old.external_id(incident)))
    assert row is None or (row.state is ActionState.PENDING and row.attempts == 0)

    new = EngineWorld(store, now=old.now)
    new.source.incidents = old.source.incidents
    with fenced(fence_for(taken, lambda: new.now)):
        report = await new.runtime.run_once(new.now)
    assert report.done[ActionKind.RAISE_SIGNL] == 1 and len(new.pager.alerts) == 1


async def test_a_renewed_lease_keeps_its_fence_valid_across_cycles(store: StateStore) -> None:
    world = EngineWorld(store)
    world.incident(1)
    lease = await claim_lease(store, CONNECTOR, "replica-a", world.now, TTL)
    assert lease is not None
    fence = fence_for(lease, lambda: world.now)
    with fenced(fence):
        await world.runtime.run_once(world.now)
    world.advance(seconds=TTL / 2)
    renewed = await claim_lease(store, CONNECTOR, "replica-a", world.now, TTL)
    assert renewed is not None and renewed.epoch == lease.epoch
    world.incident(2)
    with fenced(fence):
        report = await world.runtime.run_once(world.now)
    assert report.done[ActionKind.RAISE_SIGNL] == 1 and len(world.pager.alerts) == 2
