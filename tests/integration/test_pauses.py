"""Maintenance windows through the real connector, the emulated Sentinel and SIGNL4: a "skip" window records its
incidents and never pages them; a "hold" window pages them when it ends, or at once when it is cleared early; a
window for some severities leaves the others alone; a cleared window pages nothing held by it twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from integration_harness import Harness
from sentinel_signl4.domain import ActionState, external_id_for
from sentinel_signl4.pause_ops import clear_pause, new_pause
from sentinel_signl4.store.pauses import ALL_CONNECTORS

ONLY_SEEDED = {"filter": {"severities": ["High", "Low"], "max_age": "15m"}}


def seed(harness: Harness, severity: str, title: str) -> str:
    incident = harness.state.sentinel.create_incident(harness.world.workspace, title=title, severity=severity,
                                                      created=datetime.now(UTC) - timedelta(minutes=2))
    return external_id_for("contoso", incident["id"])


def paged(harness: Harness, external_id: str) -> int:
    return sum(1 for alert in harness.alerts() if alert.external_id == external_id)


async def test_a_skip_window_records_incidents_and_never_pages_them(harness: Harness) -> None:
    runtime = await harness.runtime(overrides=ONLY_SEEDED)
    connector = runtime.connectors["contoso"].runtime
    now = datetime.now(UTC)
    pause = new_pause(runtime.config, connector="contoso", severities=["high"], ends_at=now + timedelta(minutes=30),
                      mode="skip", reason="patching the SIEM", by="ada", now=now)
    await runtime.store.add_pause(pause)
    high, low = seed(harness, "High", "Paused high"), seed(harness, "Low", "Not paused low")
    await connector.run_once(now)
    assert paged(harness, high) == 0 and paged(harness, low) == 1
    [row] = [r for r in await runtime.store.list_actions("contoso") if r.payload.get("request", {}).get(
        "external_id") == high]
    assert row.state is ActionState.DISCARDED
    assert row.result is not None and pause.id in row.result["discarded_reason"]
    assert "patching the SIEM" in row.result["discarded_reason"]
    # After the window, later polls see the incident again and still do not page it.
    await connector.run_once(now + timedelta(minutes=31))
    assert paged(harness, high) == 0
    assert connector.health.dead_letters == 0


async def test_a_hold_window_pages_when_it_ends(harness: Harness) -> None:
    runtime = await harness.runtime(overrides=ONLY_SEEDED)
    connector = runtime.connectors["contoso"].runtime
    now = datetime.now(UTC)
    end = now + timedelta(minutes=20)
    await runtime.store.add_pause(new_pause(runtime.config, connector=ALL_CONNECTORS, severities=[], ends_at=end,
                                            mode="hold", reason="", by="ada", now=now))
    held = seed(harness, "High", "Held high")
    await connector.run_once(now)
    assert paged(harness, held) == 0
    await connector.run_once(now + timedelta(minutes=10))  # a held page during the window is not "stuck"
    assert paged(harness, held) == 0
    assert connector.health.state.value in ("ok", "degraded"), connector.health.reason
    await connector.run_once(end + timedelta(seconds=1))
    assert paged(harness, held) == 1
    await connector.run_once(end + timedelta(minutes=2))
    assert paged(harness, held) == 1


async def test_clearing_a_hold_window_early_pages_its_incidents_at_once(harness: Harness) -> None:
    runtime = await harness.runtime(overrides=ONLY_SEEDED)
    connector = runtime.connectors["contoso"].runtime
    now = datetime.now(UTC)
    pause = new_pause(runtime.config, connector="contoso", severities=[], ends_at=now + timedelta(hours=2),
                      mode="hold", reason="", by="ada", now=now)
    await runtime.store.add_pause(pause)
    held = seed(harness, "High", "Held then released")
    await connector.run_once(now)
    assert paged(harness, held) == 0
    cleared, released = await clear_pause(runtime.store, runtime.config, pause.id, now=now + timedelta(minutes=1),
                                          by="ada")
    assert cleared is not None and cleared.cleared_by == "ada" and len(released) == 1
    await connector.run_once(now + timedelta(minutes=1, seconds=1))
    assert paged(harness, held) == 1
    assert await runtime.store.pauses(now + timedelta(minutes=2)) == []
