"""Forward path under realistic conditions: paging, each filter, races with analysts, throttling and failures."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

from integration_harness import Harness
from sentinel_signl4.domain import ActionKind, ActionState, external_id_for
from sentinel_signl4_emulators.common.faults import FaultRule

INCIDENTS_PATH = r"/providers/Microsoft\.SecurityInsights/incidents$"
WEBHOOK_PATH = r"^/webhook/"
# Selects only incidents seeded by the test (High, a few minutes old), not the demo world's.
ONLY_BURST = {"severities": ["High"], "max_age": "15m"}


def seed(harness: Harness, count: int, *, severity: str = "High", minutes_ago: int = 5) -> list[str]:
    now = datetime.now(UTC)
    return [harness.state.sentinel.create_incident(
        harness.world.workspace, title=f"Burst incident {n}", severity=severity,
        created=now - timedelta(minutes=minutes_ago, seconds=n))["name"] for n in range(count)]


def assert_one_signl_each(harness: Harness, names: list[str]) -> None:
    incidents = {i["name"]: i for i in harness.incidents()}
    counts = Counter(a.external_id for a in harness.alerts())
    for name in names:
        ext = external_id_for("contoso", incidents[name]["id"])
        assert counts[ext] == 1, f"incident {name}: {counts[ext]} Signls"


async def test_listing_follows_every_page(harness: Harness) -> None:
    names = seed(harness, 9)
    counter = harness.state.faults.add(FaultRule(path=INCIDENTS_PATH, method="GET", kind="delay", delay=0.0))
    runtime = await harness.runtime(overrides={"azure": {"page_size": 3}})
    report = await runtime.connectors["contoso"].runtime.run_once(datetime.now(UTC))
    assert counter.fired >= 4  # 9 burst + the seeded matching ones, 3 per page
    assert report.seen >= 9
    assert_one_signl_each(harness, names)


async def test_severity_filter_is_applied(harness: Harness) -> None:
    high, low = seed(harness, 2, severity="High"), seed(harness, 2, severity="Low")
    runtime = await harness.runtime(overrides={"filter": {"severities": ["High"]}})
    await runtime.connectors["contoso"].runtime.run_once(datetime.now(UTC))
    raised = {a.external_id for a in harness.alerts()}
    incidents = {i["name"]: i for i in harness.incidents()}
    assert all(external_id_for("contoso", incidents[n]["id"]) in raised for n in high)
    assert not any(external_id_for("contoso", incidents[n]["id"]) in raised for n in low)
    assert all(incidents[n]["properties"]["severity"] == "High" for n in incidents
               if external_id_for("contoso", incidents[n]["id"]) in raised)


async def test_status_filter_can_include_active(harness: Harness) -> None:
    runtime = await harness.runtime(overrides={"filter": {"statuses": ["Active"]}})
    report = await runtime.connectors["contoso"].runtime.run_once(datetime.now(UTC))
    assert report.enqueued, "the demo world has Active incidents younger than 24 h"
    assert {i.status.value for i in report.enqueued} == {"Active"}


async def test_max_age_filter_excludes_older_incidents(harness: Harness) -> None:
    fresh, old = seed(harness, 1, minutes_ago=5), seed(harness, 1, minutes_ago=120)
    runtime = await harness.runtime(overrides={"filter": {"max_age": "1h"}})
    report = await runtime.connectors["contoso"].runtime.run_once(datetime.now(UTC))
    names = {i.name for i in report.enqueued}
    assert fresh[0] in names and old[0] not in names
    assert all(datetime.now(UTC) - i.created <= timedelta(hours=1) for i in report.enqueued)


async def test_tag_write_racing_an_analyst_edit_clobbers_nothing(harness: Harness) -> None:
    [name] = seed(harness, 1)
    analyst = harness.world.users[2]
    # Hold our PUT for a moment, after our GET: the analyst edits the incident in between.
    harness.state.faults.add(FaultRule(path=rf"/incidents/{name}$", method="PUT", kind="delay", delay=0.6,
                                       count=1))
    runtime = await harness.runtime(overrides={"filter": {"severities": ["High"]}})
    cycle = asyncio.create_task(runtime.connectors["contoso"].runtime.run_once(datetime.now(UTC)))
    await asyncio.sleep(0.3)
    harness.state.sentinel.update_incident_as_analyst(
        harness.world.workspace, name, owner=analyst.object_id, add_labels=["Escalated"],
        description="Analyst notes: checking with HR")
    await cycle
    props = harness.incident(name)["properties"]
    labels = {label["labelName"] for label in props["labels"]}
    assert {"SIGNL4", "Escalated"} <= labels
    assert props["owner"]["objectId"] == analyst.object_id
    assert props["description"] == "Analyst notes: checking with HR"


async def test_throttled_signl4_is_retried_after_retry_after_without_duplicates(harness: Harness) -> None:
    names = seed(harness, 3)
    harness.state.faults.add(FaultRule(path=WEBHOOK_PATH, method="POST", kind="status", status=429,
                                       retry_after=2, count=3))
    runtime = await harness.runtime()
    await runtime.connectors["contoso"].runtime.run_once(datetime.now(UTC))
    assert_one_signl_each(harness, names)
    assert runtime.metrics.throttled.labels("signl4")._value.get() >= 3


async def test_sentinel_5xx_then_success(harness: Harness) -> None:
    names = seed(harness, 2)
    harness.state.faults.add(FaultRule(path=INCIDENTS_PATH, method="GET", kind="status", status=503, count=2))
    runtime = await harness.runtime()
    connector = runtime.connectors["contoso"].runtime
    await connector.run_once(datetime.now(UTC))
    assert connector.health.error is None
    assert_one_signl_each(harness, names)


async def test_persistent_signl4_outage_is_queued_and_delivered_later(harness: Harness) -> None:
    names = seed(harness, 2)
    rule = harness.state.faults.add(FaultRule(path=WEBHOOK_PATH, method="POST", kind="status", status=503))
    runtime = await harness.runtime(overrides={"filter": {"severities": ["High"]}})
    connector = runtime.connectors["contoso"].runtime
    now = datetime.now(UTC)
    report = await connector.run_once(now)
    assert report.retried[ActionKind.RAISE_SIGNL] >= 2 and harness.alerts() == []
    counts = await runtime.store.count_actions("contoso")
    assert counts.get(ActionState.PENDING, 0) >= 2 and counts.get(ActionState.DEAD, 0) == 0
    harness.state.faults.clear()
    assert rule.fired > 0
    await connector.run_once(now + timedelta(minutes=10))
    assert_one_signl_each(harness, names)


async def test_in_doubt_send_is_looked_up_by_external_id_before_resending(harness: Harness) -> None:
    [name] = seed(harness, 1)
    # SIGNL4 takes the event, then the connection drops before the answer: outcome unknown to us.
    harness.state.faults.add(FaultRule(path=WEBHOOK_PATH, method="POST", kind="reset", phase="after", count=1))
    runtime = await harness.runtime(overrides={"filter": ONLY_BURST})
    connector = runtime.connectors["contoso"].runtime
    now = datetime.now(UTC)
    first = await connector.run_once(now)
    assert first.retried[ActionKind.RAISE_SIGNL] == 1
    second = await connector.run_once(now + timedelta(minutes=5))
    assert second.done[ActionKind.RAISE_SIGNL] >= 1
    assert_one_signl_each(harness, [name])
    link = await runtime.store.get_link("contoso", harness.incident(name)["id"])
    assert link is not None and link.alert_id is not None  # found by the lookup, not re-sent


async def test_without_api_key_an_in_doubt_send_is_resent_the_documented_duplicate_window(
        harness: Harness) -> None:
    [name] = seed(harness, 1)
    harness.state.faults.add(FaultRule(path=WEBHOOK_PATH, method="POST", kind="reset", phase="after", count=1))
    runtime = await harness.runtime(api_key=False, overrides={"filter": ONLY_BURST})
    connector = runtime.connectors["contoso"].runtime
    now = datetime.now(UTC)
    await connector.run_once(now)
    await connector.run_once(now + timedelta(minutes=5))
    ext = external_id_for("contoso", harness.incident(name)["id"])
    # docs/decisions.md: without an API key the connector cannot ask SIGNL4, so it re-sends (never a missed page).
    assert len(harness.alerts(ext)) == 2


async def test_wrong_client_secret_is_reported_precisely_and_nothing_is_lost(harness: Harness) -> None:
    seed(harness, 1)
    runtime = await harness.runtime(overrides={"credential": {"client_secret": "wrong-secret-value"}})
    connector = runtime.connectors["contoso"].runtime
    await connector.run_once(datetime.now(UTC))
    assert connector.health.error is not None and "AADSTS7000215" in connector.health.error
    assert "wrong-secret-value" not in connector.health.error


async def test_wrong_team_secret_keeps_pages_queued_until_fixed(harness: Harness) -> None:
    names = seed(harness, 1)
    bad = {"signl4": {"webhook_url": f"{harness.server.base_url}/webhook/not-our-team"}}
    runtime = await harness.runtime(overrides={**bad, "filter": {"severities": ["High"]}})
    connector = runtime.connectors["contoso"].runtime
    now = datetime.now(UTC)
    await connector.run_once(now)
    assert connector.health.error is not None and "3004" in connector.health.error
    assert "not-our-team" not in connector.health.error
    counts = await runtime.store.count_actions("contoso")
    assert counts.get(ActionState.DEAD, 0) == 0 and counts.get(ActionState.PENDING, 0) >= 1
    # The operator fixes the secret; the same store delivers what was queued.
    fixed = await harness.runtime(overrides={"filter": {"severities": ["High"]}})
    await fixed.connectors["contoso"].runtime.run_once(now + timedelta(minutes=5))
    assert_one_signl_each(harness, names)


async def test_metrics_count_done_and_failed_actions_by_kind(harness: Harness) -> None:
    seed(harness, 2)
    harness.state.faults.add(FaultRule(path=WEBHOOK_PATH, method="POST", kind="status", status=503, count=50))
    runtime = await harness.runtime(overrides={"filter": ONLY_BURST})
    connector = runtime.connectors["contoso"].runtime
    await connector.run_once(datetime.now(UTC))
    harness.state.faults.clear()
    await connector.run_once(datetime.now(UTC) + timedelta(minutes=10))
    text = runtime.metrics.exposition().decode()
    assert 's4s_actions_total{connector="contoso",kind="raise_signl",outcome="retry"} 2.0' in text
    assert 's4s_actions_total{connector="contoso",kind="raise_signl",outcome="done"} 2.0' in text
    assert 's4s_actions_total{connector="contoso",kind="tag_incident",outcome="done"} 2.0' in text
    assert 's4s_signls_raised_total{connector="contoso"} 2.0' in text
    assert 's4s_page_latency_seconds_count{connector="contoso"} 2.0' in text


async def test_in_doubt_lookup_runs_as_the_configured_signl4_user(harness: Harness) -> None:
    [name] = seed(harness, 1)
    harness.state.faults.add(FaultRule(path=WEBHOOK_PATH, method="POST", kind="reset", phase="after", count=1))
    runtime = await harness.runtime(overrides={"filter": ONLY_BURST,
                                               "signl4": {"api_user": harness.world.users[2].mail}})
    connector = runtime.connectors["contoso"].runtime
    now = datetime.now(UTC)
    await connector.run_once(now)
    await connector.run_once(now + timedelta(minutes=5))
    assert_one_signl_each(harness, [name])


async def test_old_done_actions_are_pruned_and_nothing_is_paged_again(harness: Harness) -> None:
    names = seed(harness, 2)
    runtime = await harness.runtime(overrides={"filter": ONLY_BURST})
    connector = runtime.connectors["contoso"].runtime
    now = datetime.now(UTC)
    await connector.run_once(now)
    assert (await runtime.store.count_actions("contoso"))[ActionState.DONE] >= 4
    # Forty days on: the 15-minute sweep deletes what the 30-day retention no longer needs …
    await connector.run_once(now + timedelta(days=40))
    assert (await runtime.store.count_actions("contoso"))[ActionState.DONE] == 0
    # … and the links still say these incidents were paged, even to a filter that would match them again.
    wide = await harness.runtime(overrides={"filter": {"severities": ["High"], "max_age": "60d"}})
    await wide.connectors["contoso"].runtime.run_once(now + timedelta(days=40, minutes=1))
    assert_one_signl_each(harness, names)


async def test_a_step_that_breaks_unexpectedly_does_not_keep_pages_from_going_out(harness: Harness) -> None:
    names = seed(harness, 2)
    runtime = await harness.runtime(overrides={"filter": ONLY_BURST})
    # A corrupt value in the store (a hand edit, a bug) makes the reconcile step fail with a plain ValueError.
    await runtime.store.set_cursor("contoso", "reconciled_at", "not-a-timestamp")
    connector = runtime.connectors["contoso"].runtime
    report = await connector.run_once(datetime.now(UTC))
    assert_one_signl_each(harness, names)
    assert any(e.startswith("reconcile: ValueError") for e in report.errors)
    assert connector.health.error is not None and "reconcile failed" in connector.health.error
