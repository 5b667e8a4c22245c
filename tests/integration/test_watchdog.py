"""The dead-man's switch, through the SIGNL4 emulator: a separate team is paged once per outage and the Signl is
resolved on recovery, across a restart; a stalled event loop pages from the watcher thread; an expiring
credential degrades the connector and then pages."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from integration_harness import Harness
from sentinel_signl4.engine.health import HealthState
from sentinel_signl4.engine.loop_watch import LoopWatcher
from sentinel_signl4.engine.watchdog import WATCHDOG_SERVICE
from sentinel_signl4.runner import serve_until_stopped
from sentinel_signl4.watchdog_wiring import SyncWebhookSender, build_watchdog
from sentinel_signl4_emulators.signl4.model import AlertStatus

WATCHDOG_SECRET = "platform-team-watchdog-secret"
UNKNOWN_SECRET = "not-yet-our-team-secret"
ONLY_BURST = {"severities": ["High"], "max_age": "15m"}


def platform_team(harness: Harness) -> str:
    team = harness.state.signl4.create_team(harness.world.signl4_subscription_id, "Platform",
                                            secret=WATCHDOG_SECRET)
    return team.id


def watchdog_table(harness: Harness, **values: str) -> str:
    lines = [f'webhook_url = "{harness.server.base_url}/webhook/{WATCHDOG_SECRET}"']
    lines += [f'{key} = "{value}"' for key, value in values.items()]
    return "[watchdog]\n" + "\n".join(lines) + "\n"


def bad_secret(harness: Harness) -> dict[str, Any]:
    return {"signl4": {"webhook_url": f"{harness.server.base_url}/webhook/{UNKNOWN_SECRET}"}, "filter": ONLY_BURST}


def seed_one(harness: Harness) -> None:
    harness.state.sentinel.create_incident(harness.world.workspace, title="Watchdog probe", severity="High",
                                           created=datetime.now(UTC) - timedelta(minutes=2))


async def test_an_outage_pages_once_survives_a_restart_and_is_resolved_on_recovery(harness: Harness) -> None:
    team = platform_team(harness)
    seed_one(harness)
    table = watchdog_table(harness, after="10m")
    runtime = await harness.runtime(overrides=bad_secret(harness), extra_tables=table)
    assert runtime.config.watchdog is not None
    watchdog = build_watchdog(runtime, runtime.config.watchdog, replica="replica-a")
    connector = runtime.connectors["contoso"].runtime
    start = datetime.now(UTC)
    for minutes in (0, 5, 9):  # in error, but not for 10 minutes yet
        await connector.run_once(start + timedelta(minutes=minutes))
        await watchdog.check(start + timedelta(minutes=minutes))
    assert connector.health.state is HealthState.ERROR
    assert harness.state.signl4.list_alerts(team_id=team) == []
    for minutes in (10.5, 11, 12):
        await connector.run_once(start + timedelta(minutes=minutes))
        await watchdog.check(start + timedelta(minutes=minutes))
    [alert] = harness.state.signl4.list_alerts(team_id=team)
    assert alert.external_id is not None and alert.external_id.startswith("s4s-watchdog:connector:contoso:")
    assert alert.title == "sentinel-signl4: connector contoso in error for 10 min"
    assert "3004" in alert.text and UNKNOWN_SECRET not in alert.text + alert.title
    assert alert.status is AlertStatus.OPEN

    # Restart: a new process on the same store, the outage still there. It neither pages again nor resolves.
    restarted = await harness.runtime(overrides=bad_secret(harness), extra_tables=table)
    assert restarted.config.watchdog is not None
    watchdog2 = build_watchdog(restarted, restarted.config.watchdog, replica="replica-b")
    connector2 = restarted.connectors["contoso"].runtime
    await watchdog2.check(start + timedelta(minutes=13))  # starting: says nothing about the outage
    for minutes in (13, 20, 24, 25):
        await connector2.run_once(start + timedelta(minutes=minutes))
        await watchdog2.check(start + timedelta(minutes=minutes))
    assert [a.id for a in harness.state.signl4.list_alerts(team_id=team)] == [alert.id]
    assert harness.state.signl4.get_alert(alert.id).status is AlertStatus.OPEN

    # The operator fixes the secret: the page goes out, the connector is ok, the watchdog's Signl is resolved.
    harness.state.signl4.add_team_secret(harness.world.signl4_team_id, UNKNOWN_SECRET)
    # (at minute 31 the queued page is due whatever its backoff: the outbox waits at most 5 min between attempts)
    await connector2.run_once(start + timedelta(minutes=31))
    assert connector2.health.state is HealthState.OK
    await watchdog2.check(start + timedelta(minutes=31))
    assert harness.state.signl4.get_alert(alert.id).status is AlertStatus.CLOSED
    await watchdog2.check(start + timedelta(minutes=32))
    assert len(harness.state.signl4.list_alerts(team_id=team)) == 1


async def test_run_starts_the_watchdog(harness: Harness) -> None:
    team = platform_team(harness)
    seed_one(harness)
    runtime = await harness.runtime(overrides=bad_secret(harness),
                                    extra_tables=watchdog_table(harness, after="1s", check_interval="0.2s"))
    stop = asyncio.Event()
    serving = asyncio.create_task(serve_until_stopped(runtime, stop, web=False))
    deadline = time.monotonic() + 60
    while not harness.state.signl4.list_alerts(team_id=team):
        assert time.monotonic() < deadline and not serving.done(), "the watchdog never paged"
        await asyncio.sleep(0.1)
    stop.set()
    await serving
    [alert] = harness.state.signl4.list_alerts(team_id=team)
    assert alert.external_id is not None and alert.external_id.startswith("s4s-watchdog:connector:contoso:")


async def test_a_stalled_event_loop_pages_from_the_watcher_thread_and_resolves(harness: Harness) -> None:
    team = platform_team(harness)
    sender = SyncWebhookSender(f"{harness.server.base_url}/webhook/{WATCHDOG_SECRET}",
                               ca_bundle=str(harness.server.ca_path))
    watcher = LoopWatcher(sender, stall_after=0.3, replica="replica-a", service=WATCHDOG_SERVICE)
    stop = asyncio.Event()
    watcher.start()
    beating = asyncio.create_task(watcher.heartbeat(stop))
    try:
        await asyncio.sleep(0.05)
        assert harness.state.signl4.list_alerts(team_id=team) == []
        deadline = time.monotonic() + 60
        while not harness.state.signl4.list_alerts(team_id=team):  # the loop is blocked: no await in here
            assert time.monotonic() < deadline, "the stall was never paged"
            time.sleep(0.05)  # noqa: ASYNC251 - blocking the event loop is the point of this test
        [alert] = harness.state.signl4.list_alerts(team_id=team)
        assert alert.external_id is not None
        assert alert.external_id.startswith("s4s-watchdog:event-loop:replica-a:")
        assert "stalled" in alert.title
        while harness.state.signl4.get_alert(alert.id).status is not AlertStatus.CLOSED:  # the loop runs again
            assert time.monotonic() < deadline, "the stall was never resolved"
            await asyncio.sleep(0.05)
        assert len(harness.state.signl4.list_alerts(team_id=team)) == 1
    finally:
        stop.set()
        await beating
        await asyncio.to_thread(watcher.stop)
        sender.close()


async def test_an_expiring_client_secret_degrades_then_pages(harness: Harness) -> None:
    team = platform_team(harness)
    today = datetime.now(UTC).date()

    async def cycle_with_expiry(expires: date) -> tuple[Any, Any]:
        runtime = await harness.runtime(overrides={"credential": {"expires": expires.isoformat()},
                                                   "filter": ONLY_BURST},
                                        extra_tables=watchdog_table(harness))
        assert runtime.config.watchdog is not None
        watchdog = build_watchdog(runtime, runtime.config.watchdog, replica="replica-a")
        connector = runtime.connectors["contoso"].runtime
        now = datetime.now(UTC)
        await connector.run_once(now)
        await watchdog.check(now)
        return connector.health, harness.state.signl4.list_alerts(team_id=team)

    health, alerts = await cycle_with_expiry(today + timedelta(days=60))
    assert health.state is HealthState.OK and alerts == []
    health, alerts = await cycle_with_expiry(today + timedelta(days=20))
    assert health.state is HealthState.DEGRADED
    assert health.reason == f"client secret expires on {today + timedelta(days=20)} (in 19 days): renew it"
    assert alerts == []
    health, alerts = await cycle_with_expiry(today + timedelta(days=5))
    assert health.state is HealthState.DEGRADED
    [alert] = alerts
    assert alert.external_id is not None and alert.external_id.startswith("s4s-watchdog:credential:contoso:")
    assert alert.title == "sentinel-signl4: client secret of connector contoso expires in 4 day(s)"
    # Renewed: the Signl is resolved.
    health, alerts = await cycle_with_expiry(today + timedelta(days=700))
    assert health.state is HealthState.OK
    assert harness.state.signl4.get_alert(alert.id).status is AlertStatus.CLOSED
