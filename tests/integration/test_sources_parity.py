"""The same scenarios against both incident sources: Sentinel REST (``source = "sentinel"``) and Microsoft Graph
security incidents (``source = "graph"``). One engine, one set of promises: first sync exactly once with the tag,
filters, acknowledge/close/annotation mapping through the real receiver, duplicates and shuffled deliveries, loop
prevention, reopen, Defender merges, and the setup check. Graph-only: the tenant's shared 150/min budget.
"""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import pytest

import sync_support
from integration_harness import Harness
from sentinel_signl4.bootstrap import Runtime
from sentinel_signl4.checks import run_checks
from sentinel_signl4.clients.graph import graph_limiter
from sentinel_signl4.clients.retry import set_testing
from sentinel_signl4.domain import ActionState, SkipReason, external_id_for
from sentinel_signl4.logs import configure_logging
from sentinel_signl4.web.app import build_web_app
from sentinel_signl4_emulators.graph.model import Permission
from sentinel_signl4_emulators.signl4.model import AlertStatus
from source_sides import Side, side_for
from sync_support import ONLY_FRESH_HIGH, TOKEN, ext, resolves_sent


@pytest.fixture(params=["sentinel", "graph"])
def source(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def side(harness: Harness, source: str) -> Side:
    return side_for(source, harness)


# Webhook only unless a test sets sync.mode. The config's "auto" would be "both" here (receiver and REST poll), and
# both-at-once is correct now (a polled change and its webhook delivery are one action, keyed by intent: see
# test_reverse_sync.test_both_modes_at_once_write_one_comment_per_action). But the poll would then apply the same
# SIGNL4 changes on a later cycle, so scenarios meant to prove the receiver (duplicated and shuffled deliveries,
# the close echo, actions after a merge) would still pass with the receiver broken.
start = partial(sync_support.start, mode="webhook")


# -- forward path ---------------------------------------------------------------------------------------------------

async def test_first_sync_raises_one_signl_per_matching_incident_and_tags_it(
        harness: Harness, side: Side, source: str) -> None:
    paged_before = side.create("Paged by SIGNL4's hosted connector before the switch", minutes_ago=30)
    side.analyst_tag(paged_before, "SIGNL4")
    now = datetime.now(UTC)
    expected = {name for name, v in side.views().items()
                if v.status == "New" and "SIGNL4" not in v.labels and now - v.created <= timedelta(hours=24)}
    runtime = await harness.runtime(source=source)
    connector = runtime.connectors["contoso"].runtime
    report = await connector.run_once(now)
    assert connector.health.error is None, connector.health.error
    assert {i.name for i in report.enqueued} == expected and len(expected) >= 3
    counts = Counter(a.external_id for a in harness.alerts())
    assert sum(counts.values()) == len(expected)
    for name in expected:
        assert counts[ext(side, name)] == 1
        assert "SIGNL4" in side.view(name).labels
    assert (paged_before, SkipReason.ALREADY_TAGGED) in {(i.name, reason) for i, reason in report.skipped}
    second = await connector.run_once(now + timedelta(minutes=1))
    assert second.enqueued == [] and len(harness.alerts()) == len(expected)


async def test_severity_and_age_filters_run_on_the_server(harness: Harness, side: Side, source: str) -> None:
    wanted = side.create("Fresh high", severity="High", minutes_ago=5)
    low = side.create("Fresh low", severity="Low", minutes_ago=5)
    old = side.create("Old high", severity="High", minutes_ago=120)
    runtime = await harness.runtime(source=source, overrides={"filter": {"severities": ["High"], "max_age": "1h"}})
    report = await runtime.connectors["contoso"].runtime.run_once(datetime.now(UTC))
    names = {i.name for i in report.enqueued}
    assert wanted in names and low not in names and old not in names
    assert all(i.severity.value == "High" for i in report.enqueued)
    assert report.seen == len(report.enqueued) + len(report.skipped)  # nothing outside the filter was listed


async def test_status_filter_can_select_active_incidents(harness: Harness, side: Side, source: str) -> None:
    runtime = await harness.runtime(source=source, overrides={"filter": {"statuses": ["Active"]}})
    report = await runtime.connectors["contoso"].runtime.run_once(datetime.now(UTC))
    assert report.enqueued, "both demo worlds hold an untagged Active incident younger than 24 h"
    assert {i.status.value for i in report.enqueued} == {"Active"}
    assert all(side.view(i.name).status == "Active" for i in report.enqueued)


# -- reverse path through the receiver ------------------------------------------------------------------------------

async def test_acknowledge_sets_owner_in_progress_and_comments(harness: Harness, side: Side) -> None:
    s = await start(harness, side)
    adele = harness.world.users[0]
    harness.state.signl4.acknowledge(s.alert_id, adele.mail)
    await s.deliver()
    await s.cycle()
    view = s.view()
    assert (view.status, view.owner) == ("Active", side.owner_of(adele))
    acked = f"Acknowledged in SIGNL4 by {adele.display_name} ({adele.mail}) at "
    assert any(c.startswith(acked) for c in view.comments)
    assert "SIGNL4" in view.labels  # nothing dropped


async def test_close_uses_the_configured_classification_and_sets_owner_if_unset(harness: Harness, side: Side) -> None:
    s = await start(harness, side, sync={"close_classification": "BenignPositive",
                                         "close_classification_reason": "SuspiciousButExpected"})
    megan = harness.world.users[1]
    harness.state.signl4.close(s.alert_id, megan.mail)
    await s.deliver()
    await s.cycle()
    view = s.view()
    assert (view.status, view.classification, view.reason) == ("Closed", "BenignPositive", "SuspiciousButExpected")
    assert view.owner == side.owner_of(megan)
    assert any(c.startswith(f"Closed in SIGNL4 by {megan.display_name}") for c in view.comments)


async def test_close_keeps_an_owner_an_analyst_set(harness: Harness, side: Side) -> None:
    s = await start(harness, side)
    alex, lee = harness.world.users[2], harness.world.users[3]
    side.analyst_set_owner(s.name, alex)
    harness.state.signl4.close(s.alert_id, lee.mail)
    await s.deliver()
    await s.cycle()
    assert (s.view().status, s.view().owner) == ("Closed", side.owner_of(alex))


#: Keyword → our classification + reason, and what Graph stores (classification + determination).
CLASSIFICATIONS = [
    ("#tp", ("TruePositive", "SuspiciousActivity"), ("truePositive", "other")),
    ("#bp", ("BenignPositive", "SuspiciousButExpected"), ("informationalExpectedActivity", "confirmedActivity")),
    ("#fp:logic", ("FalsePositive", "IncorrectAlertLogic"), ("falsePositive", "notMalicious")),
    ("#fp:data", ("FalsePositive", "InaccurateData"), ("falsePositive", "other")),
    ("#undetermined", ("Undetermined", None), ("unknown", "unknown")),
]


@pytest.mark.parametrize(("keyword", "ours", "graph"), CLASSIFICATIONS)
async def test_annotated_keyword_decides_the_classification_end_to_end(
        harness: Harness, side: Side, keyword: str, ours: tuple[str, str | None], graph: tuple[str, str]) -> None:
    s = await start(harness, side)
    lee = harness.world.users[3]
    harness.state.signl4.annotate(s.alert_id, lee.mail, f"{keyword} checked with the owner")
    await s.deliver()
    await s.cycle()
    assert f"[SIGNL4] {lee.display_name}: {keyword} checked with the owner" in s.view().comments
    harness.state.signl4.close(s.alert_id, lee.mail)
    await s.deliver()
    await s.cycle()
    view = s.view()
    assert (view.status, view.classification, view.reason) == ("Closed", *ours)
    if side.kind == "graph":
        assert (view.raw["classification"], view.raw["determination"]) == graph
    else:
        assert (view.raw["properties"]["classification"], view.raw["properties"].get("classificationReason")) == ours


async def test_invalid_keyword_gets_an_explaining_comment_not_a_failure(harness: Harness, side: Side) -> None:
    s = await start(harness, side)
    harness.state.signl4.annotate(s.alert_id, harness.world.users[0].mail, "#fp:banana")
    await s.deliver()
    await s.cycle()
    assert any("not name a valid reason" in c and "#fp:logic" in c for c in s.view().comments)
    assert s.connector.health.error is None and s.view().status == "New"


async def test_duplicated_and_shuffled_deliveries_end_in_the_right_state_without_duplicate_comments(
        harness: Harness, side: Side) -> None:
    s = await start(harness, side)
    adele, megan = harness.world.users[0], harness.world.users[1]
    harness.state.signl4.acknowledge(s.alert_id, adele.mail)
    harness.state.signl4.annotate(s.alert_id, megan.mail, "#tp confirmed with the user")
    harness.state.signl4.close(s.alert_id, megan.mail)
    await s.deliver(duplicate_rate=1.0, shuffle=True)
    await s.cycle()
    await s.deliver(duplicate_rate=1.0, shuffle=True)
    await s.cycle(minutes=1)
    view = s.view()
    assert (view.status, view.classification, view.reason) == ("Closed", "TruePositive", "SuspiciousActivity")
    assert view.owner in {side.owner_of(adele), side.owner_of(megan)}
    counts = Counter(view.comments)
    assert len(counts) >= 3 and all(n == 1 for n in counts.values()), counts


async def test_replayed_event_after_processing_adds_nothing(harness: Harness, side: Side) -> None:
    s = await start(harness, side)
    harness.state.signl4.acknowledge(s.alert_id, harness.world.users[0].mail)
    notifications = [n for n in harness.state.signl4.notifications() if n.get("eventType") == 201]
    await s.deliver()
    await s.cycle()
    before = s.view().comments
    for body in notifications:  # SIGNL4 re-sends the same notification later
        response = await s.web.post(f"/webhooks/signl4/contoso/{TOKEN}", json=body)
        assert response.status_code in (200, 202)
    await s.cycle()
    assert s.view().comments == before and before


async def test_polling_mode_needs_no_receiver(harness: Harness, side: Side) -> None:
    s = await start(harness, side, webhook=False, sync={"mode": "poll", "poll_signl4_interval": "1s"})
    megan = harness.world.users[1]
    harness.state.signl4.acknowledge(s.alert_id, megan.mail)
    harness.state.signl4.annotate(s.alert_id, megan.mail, "#bp expected admin activity")
    harness.state.signl4.close(s.alert_id, megan.mail)
    await s.cycle(minutes=1)
    view = s.view()
    assert (view.status, view.owner) == ("Closed", side.owner_of(megan))
    assert (view.classification, view.reason) == ("BenignPositive", "SuspiciousButExpected")
    await s.cycle(minutes=2)
    assert all(n == 1 for n in Counter(s.view().comments).values())


async def test_owner_is_looked_up_through_graph_and_an_unknown_responder_gets_a_comment(
        harness: Harness, side: Side) -> None:
    s = await start(harness, side, owner_map=False)
    lee = harness.world.users[3]
    harness.state.signl4.acknowledge(s.alert_id, lee.mail)
    await s.deliver()
    await s.cycle()
    stranger = harness.state.signl4.create_user(harness.world.signl4_subscription_id, "Temp Contractor",
                                                "temp@partner.example", team_ids=[harness.world.signl4_team_id])
    harness.state.signl4.close(s.alert_id, stranger.mail)
    await s.deliver()
    await s.cycle()
    view = s.view()
    assert (view.status, view.owner) == ("Closed", side.owner_of(lee))
    assert any("Owner not assigned: temp@partner.example was not found in Entra ID" in c for c in view.comments)
    assert s.connector.health.error is None


# -- loop prevention and lifecycle ------------------------------------------------------------------------------------

async def test_close_from_signl4_does_not_echo_back_as_a_resolve(harness: Harness, side: Side) -> None:
    s = await start(harness, side)
    harness.state.signl4.close(s.alert_id, harness.world.users[1].mail)
    await s.deliver()
    await s.cycle()
    await s.cycle(minutes=1)
    await s.deliver()
    await s.cycle(minutes=2)
    assert s.view().status == "Closed"
    assert resolves_sent(harness, s.ext) == 0


async def test_analyst_close_resolves_the_signl_and_the_echo_adds_no_comment(harness: Harness, side: Side) -> None:
    s = await start(harness, side)
    side.analyst_close(s.name, "TruePositive", "SuspiciousActivity")
    await s.cycle()
    assert s.alert().status == AlertStatus.CLOSED
    assert resolves_sent(harness, s.ext) == 1
    await s.deliver()  # SIGNL4 tells us the Signl was closed (by our resolve): the echo
    await s.cycle(minutes=1)
    assert resolves_sent(harness, s.ext) == 1
    view = s.view()
    assert not any("Closed in SIGNL4" in c for c in view.comments)
    assert (view.classification, view.reason) == ("TruePositive", "SuspiciousActivity")


@pytest.mark.parametrize("reraise", [True, False])
async def test_reopened_incident_gets_a_new_signl_only_when_configured(
        harness: Harness, side: Side, reraise: bool) -> None:
    s = await start(harness, side, sync={"reraise_on_reopen": reraise})
    side.analyst_close(s.name, "Undetermined")
    await s.cycle()
    side.analyst_reopen(s.name)
    await s.cycle(minutes=1)
    second = external_id_for("contoso", side.resource_id(s.name), 2)
    assert len(harness.alerts(s.ext)) == 1
    assert len(harness.alerts(second)) == (1 if reraise else 0)
    await s.cycle(minutes=2)
    assert len(harness.alerts(second)) == (1 if reraise else 0)


# -- Defender merges ------------------------------------------------------------------------------------------------

def merge_notes(harness: Harness, external_id: str) -> list[str]:
    [alert] = harness.alerts(external_id)
    return [a.text for a in alert.annotations if a.text.startswith("[sentinel-signl4]")]


async def test_graph_merge_into_an_incident_without_a_signl_relinks_the_signl_and_later_actions_follow(
        harness: Harness) -> None:
    side = side_for("graph", harness)
    s = await start(harness, side)
    survivor = side.create("Multi-stage incident on DC01", minutes_ago=1)
    side.merge(s.name, survivor)  # before the connector saw the survivor: no Signl for it yet
    report = await s.cycle()
    await s.cycle(minutes=1)  # the merged incident is listed again (overlap): nothing is repeated
    number = side.view(survivor).number
    assert [(m.name, b.name if b else None, outcome) for m, b, outcome in report.merged] == [
        (s.name, survivor, "relinked")]
    assert harness.alerts(ext(side, survivor)) == [] and s.alert().status == AlertStatus.OPEN
    link = await s.runtime.store.get_link_by_external_id("contoso", s.ext)
    assert link is not None and link.incident_id == side.resource_id(survivor) and link.incident_number == number
    assert merge_notes(harness, s.ext) == [
        f"[sentinel-signl4] Microsoft Defender merged incident #{s.view().number} into #{number}. This Signl now "
        f"follows #{number}: acknowledge, close and annotations go there. "
        f"https://security.microsoft.com/incidents/{survivor}?tid={harness.world.tenant_id}"]
    assert [c for c in side.view(survivor).comments if "was merged into" in c] == [
        f"[SIGNL4] Incident #{s.view().number} was merged into #{number} by Microsoft Defender; the SIGNL4 alert "
        f"raised for #{s.view().number} now follows this incident."]
    assert "SIGNL4" in side.view(survivor).labels  # the tag moved with the merge
    # The responder acts on the same Signl: it lands on the survivor.
    adele = harness.world.users[0]
    harness.state.signl4.acknowledge(s.alert_id, adele.mail)
    harness.state.signl4.annotate(s.alert_id, adele.mail, "#tp lateral movement confirmed")
    await s.deliver()
    await s.cycle(minutes=2)
    after = side.view(survivor)
    assert (after.status, after.owner) == ("Active", side.owner_of(adele))
    assert any(c.startswith("Acknowledged in SIGNL4 by Adele Vance") for c in after.comments)
    assert not any("[sentinel-signl4]" in c for c in after.comments)  # our own annotation is not mirrored back
    # An analyst closes the survivor: the (one) Signl is resolved.
    side.analyst_close(survivor, "TruePositive", "SuspiciousActivity")
    await s.cycle(minutes=3)
    assert s.alert().status == AlertStatus.CLOSED and len(harness.alerts()) == len(set(
        a.external_id for a in harness.alerts()))


async def test_sentinel_merge_resolves_the_signl_and_the_survivor_is_not_paged_again(harness: Harness) -> None:
    """The stable Sentinel API shows the merge (Closed + tag Redirected) but not which incident survived."""
    side = side_for("sentinel", harness)
    s = await start(harness, side)
    survivor = side.create("Multi-stage incident on DC01", minutes_ago=1)
    side.merge(s.name, survivor)
    report = await s.cycle()
    await s.cycle(minutes=1)
    assert [(m.name, b, outcome) for m, b, outcome in report.merged] == [(s.name, None, "unknown_survivor")]
    assert s.alert().status == AlertStatus.CLOSED and resolves_sent(harness, s.ext) == 1
    assert harness.alerts(ext(side, survivor)) == []  # it inherited our tag: not paged a second time
    assert (SkipReason.ALREADY_TAGGED in {reason for i, reason in report.skipped if i.name == survivor})
    [note] = merge_notes(harness, s.ext)
    assert f"merged incident #{s.view().number} into another incident" in note
    assert [c for c in s.view().comments if "merged into" in c] == [
        f"[SIGNL4] Incident #{s.view().number} was merged into another incident by Microsoft Defender; its SIGNL4 "
        "alert was resolved."]
    await s.deliver()  # the echo of our resolve changes nothing
    await s.cycle(minutes=2)
    assert s.view().classification == "Undetermined" and resolves_sent(harness, s.ext) == 1


async def test_merge_into_an_incident_with_its_own_signl_resolves_the_merged_ones_signl(
        harness: Harness, side: Side, source: str) -> None:
    s = await start(harness, side)
    survivor = side.create("Multi-stage incident on DC01", minutes_ago=2)
    await s.cycle()
    survivor_alert = s.alert(ext(side, survivor))
    paged = len(harness.alerts())
    side.merge(s.name, survivor)
    await s.cycle(minutes=1)
    await s.cycle(minutes=2)
    assert s.alert().status == AlertStatus.CLOSED and resolves_sent(harness, s.ext) == 1
    assert s.alert(ext(side, survivor)).status == AlertStatus.OPEN
    assert len(harness.alerts()) == paged and survivor_alert.id == s.alert(ext(side, survivor)).id
    [note] = merge_notes(harness, s.ext)
    merged_number = s.view().number
    # A responder still writes on the resolved Signl: the note reaches the survivor where the source says which.
    megan = harness.world.users[1]
    harness.state.signl4.annotate(s.alert_id, megan.mail, "still beaconing from 10.20.4.17")
    await s.deliver()
    await s.cycle(minutes=3)
    mirrored = f"[SIGNL4] {megan.display_name}: still beaconing from 10.20.4.17"
    if source == "graph":
        number = side.view(survivor).number
        assert f"merged incident #{merged_number} into #{number}, which has its own Signl" in note
        assert mirrored in side.view(survivor).comments and mirrored not in s.view().comments
    else:
        assert "into another incident" in note
        assert mirrored in s.view().comments  # documented limit: the stable API does not name the survivor
    assert resolves_sent(harness, s.ext) == 1 and len(merge_notes(harness, s.ext)) == 1


async def test_merge_without_an_api_key_is_noted_on_the_incident(harness: Harness, side: Side, source: str) -> None:
    s = await start(harness, side, api_key=False)
    survivor = side.create("Multi-stage incident on DC01", minutes_ago=1)
    side.merge(s.name, survivor)
    await s.cycle()
    await s.cycle(minutes=1)
    assert merge_notes(harness, s.ext) == []
    noted = survivor if source == "graph" else s.name
    assert len([c for c in side.view(noted).comments if "was merged into" in c]) == 1


# -- setup check ----------------------------------------------------------------------------------------------------

async def check(harness: Harness, source: str, **kwargs: Any) -> list[str]:
    lines: list[str] = []
    try:
        await run_checks(harness.config(source=source, **kwargs), echo=lines.append)
    finally:
        configure_logging(level="warning", stream=io.StringIO())
    return lines


async def test_check_proves_each_sources_access(harness: Harness, source: str) -> None:
    lines = await check(harness, source, overrides={"sync": {"owner_map": {}}})
    assert lines[-1] == "All connectors OK.", lines
    expected = "Graph security incidents (SecurityIncident.ReadWrite.All): OK" if source == "graph" else (
        "Sentinel workspace access: OK")
    assert f"[contoso] {expected}" in lines
    assert "[contoso] Graph owner lookup (User.Read.All): OK" in lines


async def test_check_names_the_graph_permission_to_grant(harness: Harness) -> None:
    harness.state.graph.revoke(harness.world.client_id, [Permission.SECURITY_INCIDENT_READ_WRITE])
    lines = await check(harness, "graph")
    assert any("Graph security incidents" in line and "ERROR" in line and
               "lacks the Microsoft Graph application permission SecurityIncident.ReadWrite.All" in line
               and "sentinel-signl4 provision apply" in line for line in lines), lines
    harness.state.graph.grant(harness.world.client_id, [Permission.SECURITY_INCIDENT_READ_WRITE])
    harness.state.graph.revoke(harness.world.client_id, [Permission.USER_READ_ALL])
    lines = await check(harness, "sentinel", overrides={"sync": {"owner_map": {}}})
    assert any("owner lookup" in line and "User.Read.All" in line and "ERROR" in line for line in lines), lines


# -- Graph: one tenant, one budget ------------------------------------------------------------------------------------

async def graph_connectors(harness: Harness, names: tuple[str, ...]) -> list[Runtime]:
    return [await harness.runtime(source="graph", name=name, overrides={"filter": ONLY_FRESH_HIGH})
            for name in names]


async def test_connectors_of_one_tenant_share_one_graph_budget_and_cause_no_429(harness: Harness) -> None:
    side = side_for("graph", harness)
    fresh = [side.create(f"Burst {n}") for n in range(2)]
    # The tenant's budget, scaled down from 140 per minute to 6 per second; Graph (emulated) allows 8 per second.
    graph_limiter(harness.world.tenant_id, limit=6, window=1.0)
    harness.state.graph.configure_throttle(8, 1.0)
    runtimes = await graph_connectors(harness, ("contoso", "fabrikam"))
    await asyncio.gather(*(r.connectors[r.config.connectors[0].name].runtime.run_once(datetime.now(UTC))
                           for r in runtimes))
    for runtime in runtimes:
        name = runtime.config.connectors[0].name
        assert runtime.connectors[name].runtime.health.error is None
        assert runtime.metrics.throttled.labels("graph")._value.get() == 0
        for incident in fresh:
            assert len(harness.alerts(ext(side, incident, name))) == 1


async def test_graph_429_is_retried_after_retry_after_for_every_connector_of_the_tenant(harness: Harness) -> None:
    side = side_for("graph", harness)
    fresh = [side.create(f"Burst {n}") for n in range(3)]
    harness.state.graph.configure_throttle(5, 1.0)  # far below what two connectors send at once
    set_testing(False)  # wait the real Retry-After (1 s here): an instant retry would only meet another 429
    runtimes = await graph_connectors(harness, ("contoso", "fabrikam"))
    names = [r.config.connectors[0].name for r in runtimes]

    def paged() -> bool:
        return all(harness.alerts(ext(side, incident, name)) for name in names for incident in fresh)

    # A call that meets 429 on every bounded attempt is rescheduled (outbox) or fails the step (poll) and is
    # done by a later cycle: what counts is the outcome, reached within a few cycles.
    for cycle in range(6):
        await asyncio.gather(*(r.connectors[n].runtime.run_once(datetime.now(UTC) + timedelta(minutes=5 * cycle))
                               for r, n in zip(runtimes, names, strict=True)))
        if paged():
            break
    throttled = sum(r.metrics.throttled.labels("graph")._value.get() for r in runtimes)
    assert throttled >= 1, "the emulator's 5/s budget must have answered 429 at least once"
    for runtime, name in zip(runtimes, names, strict=True):
        counts = await runtime.store.count_actions(name)
        assert counts[ActionState.DEAD] == 0
        for incident in fresh:
            assert len(harness.alerts(ext(side, incident, name))) == 1
    for incident in fresh:
        assert side.view(incident).labels.count("SIGNL4") == 1


# -- Graph: single alerts (resource = "alerts") ------------------------------------------------------------------------

async def test_graph_alerts_resource_pages_each_alert_once_and_syncs_back(harness: Harness) -> None:
    side = side_for("graph", harness)
    name = side.create("Suspicious PowerShell on FIN-WS-007")
    [incident] = [i for i in harness.state.graph.incidents(harness.world.tenant_id) if i["id"] == name]
    [alert_id] = [a["id"] for a in incident["alerts"]]
    harness.state.signl4.register_webhook(
        harness.world.signl4_subscription_id, f"https://connector.test/webhooks/signl4/contoso/{TOKEN}")
    runtime = await harness.runtime(source="graph", overrides={
        "graph": {"resource": "alerts"}, "filter": ONLY_FRESH_HIGH,
        "sync": {"mode": "webhook", "webhook_token": TOKEN,
                 "owner_map": {u.mail: u.object_id for u in harness.world.users}}})
    connector = runtime.connectors["contoso"].runtime
    report = await connector.run_once(datetime.now(UTC))
    assert connector.health.error is None, connector.health.error
    resource_id = f"graph:{harness.world.tenant_id}:alerts/{alert_id}"
    assert resource_id in {i.resource_id for i in report.enqueued}
    [signl] = harness.alerts(external_id_for("contoso", resource_id))
    again = await connector.run_once(datetime.now(UTC) + timedelta(minutes=1))
    assert again.enqueued == [] and len(harness.alerts(external_id_for("contoso", resource_id))) == 1
    web = httpx.AsyncClient(transport=httpx.ASGITransport(app=build_web_app(runtime)),
                            base_url="https://connector.test")
    adele = harness.world.users[0]
    harness.state.signl4.acknowledge(signl.id, adele.mail)
    assert (await harness.state.signl4.deliver_outbound(web)).failed == 0
    await connector.run_once(datetime.now(UTC) + timedelta(minutes=2))
    stored = harness.state.graph.get_alert(harness.world.tenant_id, alert_id, include_unknown=True)
    assert (stored["status"], stored["assignedTo"]) == ("inProgress", adele.mail)
    assert [c["comment"].rsplit("\n[s4:", 1)[0][:27] for c in stored["comments"]] == ["Acknowledged in SIGNL4 by A"]
