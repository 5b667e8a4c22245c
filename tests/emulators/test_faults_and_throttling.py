"""Fault injection through the emulator app (status, delay-after, reset-after) and ARM's token-bucket throttling."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from emulators_world import Arm
from fake_clock import FakeClock
from sentinel_signl4_emulators.app import EmulatorState
from sentinel_signl4_emulators.common.faults import FaultRule
from sentinel_signl4_emulators.common.throttle import BucketPolicy, TokenBuckets
from spec_validation import assert_valid


async def test_injected_429_carries_retry_after_and_leaves_state_alone(arm: Arm, state: EmulatorState) -> None:
    state.faults.add(FaultRule(path="/incidents$", method="GET", status=429, retry_after=7, count=1))
    throttled = await arm.get(arm.incidents_url)
    assert throttled.status_code == 429 and throttled.headers["retry-after"] == "7"
    assert_valid(throttled.json(), "CloudError")
    assert (await arm.get(arm.incidents_url)).status_code == 200  # count=1: the next one passes


async def test_injected_503_does_not_apply_the_write(arm: Arm, state: EmulatorState) -> None:
    name = arm.world.incident_names[0]
    state.faults.add(FaultRule(path="/comments/", method="PUT", status=503))
    response = await arm.put(f"{arm.incident_url(name)}/comments/{uuid.uuid4()}", {"properties": {"message": "x"}})
    assert response.status_code == 503
    assert state.sentinel.comments(arm.world.workspace, name) == []


async def test_delay_after_applies_the_write_before_the_caller_times_out(arm: Arm, state: EmulatorState) -> None:
    name = arm.world.incident_names[0]
    state.faults.add(FaultRule(path="/comments/", method="PUT", kind="delay", delay=0.5, phase="after", count=1))
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(
            arm.put(f"{arm.incident_url(name)}/comments/slow", {"properties": {"message": "late"}}), timeout=0.1)
    assert [c["name"] for c in state.sentinel.comments(arm.world.workspace, name)] == ["slow"]


async def test_reset_after_is_a_transport_error_in_process_while_the_state_changed(
    arm: Arm, state: EmulatorState
) -> None:
    name = arm.world.incident_names[0]
    state.faults.add(FaultRule(path="/comments/", method="PUT", kind="reset", phase="after", count=1))
    with pytest.raises(httpx.RemoteProtocolError):
        await arm.put(f"{arm.incident_url(name)}/comments/lost-answer", {"properties": {"message": "done"}})
    assert [c["name"] for c in state.sentinel.comments(arm.world.workspace, name)] == ["lost-answer"]


async def test_control_plane_is_never_faulted(http: httpx.AsyncClient, state: EmulatorState) -> None:
    state.faults.add(FaultRule(path=".*", status=500))
    assert (await http.get("/_control/state")).status_code == 200


async def test_arm_throttles_per_subscription_principal_and_operation_with_retry_after(
    arm: Arm, state: EmulatorState
) -> None:
    state.sentinel.throttle.configure("reads", BucketPolicy(capacity=3, refill_per_second=0.25))
    remaining = [int((await arm.get(arm.incidents_url)).headers["x-ms-ratelimit-remaining-subscription-reads"])
                 for _ in range(3)]
    assert remaining == [2, 1, 0]
    throttled = await arm.get(arm.incidents_url)
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "SubscriptionRequestsThrottled"
    assert_valid(throttled.json(), "CloudError")
    assert throttled.headers["retry-after"] == "4"
    assert throttled.headers["x-ms-ratelimit-remaining-subscription-reads"] == "0"
    # Writes have their own bucket.
    name = arm.world.incident_names[0]
    write = await arm.put(f"{arm.incident_url(name)}/comments/c1", {"properties": {"message": "m"}})
    assert write.status_code == 201 and "x-ms-ratelimit-remaining-subscription-writes" in write.headers


def test_token_bucket_refills_over_time_and_reports_the_wait() -> None:
    clock = FakeClock()
    buckets = TokenBuckets({"reads": BucketPolicy(2, 0.5)}, monotonic=clock.monotonic)
    assert [buckets.take("k", "reads").allowed for _ in range(3)] == [True, True, False]
    assert buckets.take("k", "reads").retry_after == 2
    assert buckets.take("other", "reads").allowed  # separate key, separate bucket
    clock.advance(2.0)
    decision = buckets.take("k", "reads")
    assert decision.allowed and decision.remaining == 0
    buckets.reset()
    assert buckets.take("k", "reads").remaining == 1


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "explode"},
        {"phase": "during"},
        {"status": 42},
        {"status": "503"},
        {"rate": 2},
        {"delay": -1},
        {"count": -1},
        {"path": "("},
        {"surprise": True},
        {"body": "not an object"},
    ],
)
async def test_control_plane_rejects_bad_fault_rules_with_400(http: httpx.AsyncClient, rule: dict[str, object]) -> None:
    response = await http.post("/_control/faults", json=rule)
    assert response.status_code == 400, response.text
    assert (await http.get("/_control/faults")).json() == {"rules": []}


async def test_control_plane_adds_lists_and_clears_fault_rules(http: httpx.AsyncClient) -> None:
    created = await http.post("/_control/faults", json={"path": "/token$", "status": 503, "count": 2})
    assert created.status_code == 201 and created.json()["status"] == 503
    assert len((await http.get("/_control/faults")).json()["rules"]) == 1
    assert (await http.delete("/_control/faults")).status_code == 204
    assert (await http.get("/_control/faults")).json() == {"rules": []}
