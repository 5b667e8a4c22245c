"""Writes within Sentinel's per-workspace limits, through the emulator that enforces them (shrunk window and counts).

A burst of incidents makes one tag PUT each; responders acknowledge while that backlog drains. The connector must
never provoke a 429, page every incident once, tag every incident eventually, and apply the acknowledgements ahead of
the tag backlog (carrying a still-pending tag in the same PUT).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from integration_harness import Harness
from sentinel_signl4.domain import ActionKind, ActionState
from source_sides import side_for
from sync_support import ONLY_FRESH_HIGH, TOKEN, Sync, ext

BURST = 18  # three windows of tags: the budget refills twice, and the acknowledgements meet a backlog
# The emulator allows 12 incident PUTs and 12 comment PUTs per 3 s; the connector budgets 10 of each, 4 of the
# incident writes kept for reverse sync (tags take at most 6 per window).
EMULATOR_LIMITS = {"window": 3, "limits": {"incidents": 12, "comments": 12}}
CONNECTOR_LIMITS: dict[str, Any] = {"incident_writes": 10, "comment_writes": 10, "reverse_reserve": 4, "window": "3s"}


def _labelled(harness: Harness, names: list[str]) -> list[str]:
    side = side_for("sentinel", harness)
    return [name for name in names if "SIGNL4" in side.view(name).labels]


async def _burst(harness: Harness) -> tuple[Sync, list[str]]:
    side = side_for("sentinel", harness)
    harness.state.sentinel.write_limits.configure(window=EMULATOR_LIMITS["window"],
                                                  limits=EMULATOR_LIMITS["limits"])
    names = [side.create(f"Burst incident {i}") for i in range(BURST)]
    overrides: dict[str, Any] = {
        "filter": ONLY_FRESH_HIGH, "limits": CONNECTOR_LIMITS,
        "sync": {"owner_map": {u.mail: u.object_id for u in harness.world.users}, "webhook_token": TOKEN},
    }
    harness.state.signl4.register_webhook(
        harness.world.signl4_subscription_id, f"https://connector.test/webhooks/signl4/contoso/{TOKEN}")
    runtime = await harness.runtime(overrides=overrides)
    s = Sync(harness, side, runtime, names[0])
    await s.cycle()
    await s.deliver()  # the "new Signl" notifications: accepted and ignored
    return s, names


async def _until_all_tagged(s: Sync, names: list[str]) -> None:
    deadline = time.monotonic() + 120.0  # generous: the backlog needs about BURST / 6 windows of 3 s
    while len(_labelled(s.h, names)) < len(names):
        assert time.monotonic() < deadline, f"only {len(_labelled(s.h, names))} of {len(names)} tagged"
        await s.cycle()
        await asyncio.sleep(0.2)


async def test_burst_within_limits_acknowledgements_first_and_all_tagged(harness: Harness) -> None:
    s, names = await _burst(harness)
    assert all(len(harness.alerts(ext(s.side, name))) == 1 for name in names)  # every incident paged, once
    tagged_first = _labelled(harness, names)
    assert len(tagged_first) < BURST  # the budget cannot hold every tag: a backlog remains

    # Responders acknowledge as many incidents as the reserve holds, each with its tag still waiting; the window
    # the tags just spent is not over yet.
    waiting = [name for name in names if name not in tagged_first][:CONNECTOR_LIMITS["reverse_reserve"]]
    adele = harness.world.users[0]
    for name in waiting:
        [alert] = harness.alerts(ext(s.side, name))
        harness.state.signl4.acknowledge(str(alert.id), adele.mail)
    await s.deliver()
    await s.cycle()

    side = s.side
    for name in waiting:
        view = side.view(name)
        assert view.status == "Active"  # applied in this cycle, ahead of the tag backlog
        assert view.owner == adele.object_id
        assert "SIGNL4" in view.labels  # the pending tag went with the acknowledgement's PUT
    assert len(_labelled(harness, names)) < BURST  # ... while other tags still wait

    rows = await s.connector.store.list_actions("contoso", states=[ActionState.DONE])
    coalesced = [row for row in rows if row.kind is ActionKind.TAG_INCIDENT and row.result.get("coalesced_into")]
    assert len(coalesced) == len(waiting)

    await _until_all_tagged(s, names)
    refused = harness.state.sentinel.write_limits.snapshot()["refused"]
    assert refused == {"incidents": 0, "comments": 0, "alerts": 0, "entities": 0}  # no 429 provoked
    assert all(len(harness.alerts(ext(s.side, name))) == 1 for name in names)
    pending = await s.connector.store.list_actions("contoso", states=[ActionState.PENDING, ActionState.DEAD])
    assert pending == []


async def test_emulator_answers_past_the_limit_with_429_and_retry_after(harness: Harness) -> None:
    """The emulator's enforcement itself: with pacing off (a budget above the emulator's limits) the tag burst
    meets 429s, so the test above proves the pacing, not a lenient emulator."""
    side = side_for("sentinel", harness)
    harness.state.sentinel.write_limits.configure(window=60, limits={"incidents": 3})
    names = [side.create(f"Unpaced incident {i}") for i in range(6)]
    runtime = await harness.runtime(overrides={
        "filter": ONLY_FRESH_HIGH, "limits": {"incident_writes": 1000, "reverse_reserve": 0, "window": "60s"}})
    connector = runtime.connectors["contoso"].runtime
    s = Sync(harness, side, runtime, names[0])
    report = await s.cycle()
    snapshot = harness.state.sentinel.write_limits.snapshot()
    assert snapshot["granted"]["incidents"] == 3  # type: ignore[index]
    assert snapshot["refused"]["incidents"] >= 3  # type: ignore[index]
    assert report.retried[ActionKind.TAG_INCIDENT] == 3
    rows = await connector.store.list_actions("contoso", states=[ActionState.PENDING])
    assert any("429" in (row.last_error or "") or "Too many" in (row.last_error or "") for row in rows)
