"""Sentinel's per-workspace limits in the emulator: counted per operation, 429 with Retry-After in ARM's error shape
past the limit, reads not counted, and settings and counters through the control plane."""

from __future__ import annotations

import httpx

from emulators_world import Arm
from fake_clock import FakeClock
from sentinel_signl4_emulators.app import EmulatorState
from sentinel_signl4_emulators.sentinel.write_limits import DEFAULT_WRITE_LIMITS, WriteLimits
from spec_validation import assert_valid


async def test_incident_puts_past_the_limit_get_429_with_retry_after(arm: Arm, state: EmulatorState) -> None:
    state.sentinel.write_limits.configure(window=60, limits={"incidents": 2, "comments": 1})
    name = arm.world.incident_names[0]
    for _ in range(2):
        current = (await arm.get(arm.incident_url(name))).json()
        body = {"etag": current["etag"], "properties": current["properties"]}
        assert (await arm.put(arm.incident_url(name), body)).status_code == 200
    current = (await arm.get(arm.incident_url(name))).json()  # reads are not counted
    refused = await arm.put(arm.incident_url(name), {"etag": current["etag"], "properties": current["properties"]})
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json()["error"]["code"] == "TooManyRequests"
    assert_valid(refused.json(), "CloudError")
    # Comments have their own count.
    assert (await arm.put(f"{arm.incident_url(name)}/comments/c1", {"properties": {"message": "m"}})).status_code == 201
    assert (await arm.put(f"{arm.incident_url(name)}/comments/c2", {"properties": {"message": "m"}})).status_code == 429
    snapshot = state.sentinel.write_limits.snapshot()
    assert snapshot["granted"] == {"incidents": 2, "comments": 1, "alerts": 0, "entities": 0}
    assert snapshot["refused"] == {"incidents": 1, "comments": 1, "alerts": 0, "entities": 0}


async def test_alerts_and_entities_calls_are_counted_separately(arm: Arm, state: EmulatorState) -> None:
    state.sentinel.write_limits.configure(limits={"alerts": 1, "entities": 1})
    name = arm.world.incident_names[0]
    assert (await arm.post(f"{arm.incident_url(name)}/alerts")).status_code == 200
    assert (await arm.post(f"{arm.incident_url(name)}/entities")).status_code == 200
    assert (await arm.post(f"{arm.incident_url(name)}/alerts")).status_code == 429
    assert (await arm.post(f"{arm.incident_url(name)}/entities")).status_code == 429


def test_window_slides_and_reset_restores_the_documented_limits() -> None:
    clock = FakeClock()
    limits = WriteLimits(monotonic=clock.monotonic)
    limits.configure(window=10, limits={"incidents": 2})
    assert limits.take("ws", "incidents").allowed
    clock.advance(4)
    assert limits.take("ws", "incidents").allowed
    refused = limits.take("ws", "incidents")
    assert not refused.allowed and refused.retry_after == 6  # the first request leaves the window in 6 s
    assert limits.take("other-ws", "incidents").allowed  # per workspace
    clock.advance(6)
    assert limits.take("ws", "incidents").allowed
    limits.reset()
    assert limits.snapshot()["limits"] == dict(DEFAULT_WRITE_LIMITS) == {
        "incidents": 75, "comments": 75, "alerts": 100, "entities": 100}
    assert limits.snapshot()["window"] == 300.0


async def test_control_plane_sets_and_reports_the_limits(http: httpx.AsyncClient) -> None:
    answer = await http.put("/_control/sentinel/write-limits", json={"window": 5, "limits": {"incidents": 7}})
    assert answer.status_code == 200
    assert answer.json()["window"] == 5 and answer.json()["limits"]["incidents"] == 7
    assert (await http.get("/_control/sentinel/write-limits")).json()["limits"]["comments"] == 75
    for bad in ({"window": "soon"}, {"limits": {"incidents": "many"}}, {"limits": {"bookmarks": 3}},
                {"window": 0}, {"limits": {"incidents": 0}}):
        assert (await http.put("/_control/sentinel/write-limits", json=bad)).status_code == 400, bad
    await http.post("/_control/reset")
    assert (await http.get("/_control/sentinel/write-limits")).json()["window"] == 300.0
