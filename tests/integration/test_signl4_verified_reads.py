"""The whole connector against SIGNL4 behaviours no official source settles: a search that ignores its externalId
filter (in-doubt sends), annotations on only one of the v1 path and the v2 timeline or on neither (polling mode),
and what ``check`` prints about them."""

from __future__ import annotations

import io
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from integration_harness import Harness
from sentinel_signl4.bootstrap import Runtime
from sentinel_signl4.checks import run_checks
from sentinel_signl4.domain import ActionKind, external_id_for
from sentinel_signl4.engine.signl4_poll import ANNOTATIONS_PATH_CURSOR, POLL_CURSOR
from sentinel_signl4.logs import configure_logging
from sentinel_signl4_emulators.common.faults import FaultRule
from sentinel_signl4_emulators.signl4.model import Behaviour, RawParameter
from sync_support import ONLY_FRESH_HIGH, Sync, start

WEBHOOK_PATH = r"^/webhook/"
POLLING = {"mode": "poll", "poll_signl4_interval": "1s"}


def other_alerts(harness: Harness, count: int = 2) -> list[str]:
    """Signls of other incidents already in the team: what a search ignoring its filter answers with."""
    return [harness.state.signl4.raise_event(harness.world.signl4_team_id, [
        RawParameter("Title", f"Older page {n}"), RawParameter("X-S4-ExternalID", f"s4s:contoso:older-{n}"),
    ]).target_alert_ids[0] for n in range(count)]


def seed(harness: Harness) -> str:
    return str(harness.state.sentinel.create_incident(
        harness.world.workspace, title="Credential dumping on DC01", severity="High",
        created=datetime.now(UTC) - timedelta(minutes=5))["name"])


def count_requests(runtime: Runtime) -> Counter[str]:
    """Every request path the runtime's clients send from now on."""
    counted: Counter[str] = Counter()

    async def record(request: httpx.Request) -> None:
        counted[request.url.path] += 1

    runtime.http.event_hooks["request"].append(record)
    return counted


# -- in-doubt sends against a search that ignores its filter ---------------------------------------------------------


async def test_an_in_doubt_send_is_resent_exactly_once_when_the_search_ignores_its_filter(harness: Harness) -> None:
    """The send never reached SIGNL4, and its search answers with other incidents' Signls: none of them proves the
    page went out, so it is sent again, once, instead of being reconciled with someone else's Signl."""
    name = seed(harness)
    other_alerts(harness)
    harness.state.signl4.set_behaviour(Behaviour(ignored_search_filters=frozenset({"externalId"})))
    harness.state.faults.add(FaultRule(path=WEBHOOK_PATH, method="POST", kind="reset", phase="before", count=1))
    runtime = await harness.runtime(overrides={"filter": ONLY_FRESH_HIGH})
    connector = runtime.connectors["contoso"].runtime
    now = datetime.now(UTC)
    first = await connector.run_once(now)
    assert first.retried[ActionKind.RAISE_SIGNL] == 1
    second = await connector.run_once(now + timedelta(minutes=5))
    assert second.done[ActionKind.RAISE_SIGNL] == 1
    ext = external_id_for("contoso", harness.incident(name)["id"])
    assert len(harness.alerts(ext)) == 1
    link = await runtime.store.get_link("contoso", harness.incident(name)["id"])
    assert link is not None and link.alert_id is None and link.event_id  # sent again, not "found"
    await connector.run_once(now + timedelta(minutes=10))
    assert len(harness.alerts(ext)) == 1


async def test_an_in_doubt_send_that_arrived_is_found_among_everything_the_search_returns(
        harness: Harness) -> None:
    name = seed(harness)
    other_alerts(harness)
    harness.state.signl4.set_behaviour(Behaviour(ignored_search_filters=frozenset({"externalId"})))
    harness.state.faults.add(FaultRule(path=WEBHOOK_PATH, method="POST", kind="reset", phase="after", count=1))
    runtime = await harness.runtime(overrides={"filter": ONLY_FRESH_HIGH})
    connector = runtime.connectors["contoso"].runtime
    now = datetime.now(UTC)
    await connector.run_once(now)
    await connector.run_once(now + timedelta(minutes=5))
    ext = external_id_for("contoso", harness.incident(name)["id"])
    [alert] = harness.alerts(ext)
    link = await runtime.store.get_link("contoso", harness.incident(name)["id"])
    assert link is not None and link.alert_id == alert.id  # reconciled with its own Signl, not re-sent


# -- polling mode: which annotation path answers ---------------------------------------------------------------------


async def restart(s: Sync) -> Sync:
    """A new process on the same store: the same connector config, nothing in memory."""
    harness = s.h
    await s.runtime.aclose()
    harness.runtimes.remove(s.runtime)
    runtime = await harness.runtime(overrides={"filter": ONLY_FRESH_HIGH, "sync": {
        **POLLING, "owner_map": {u.mail: u.object_id for u in harness.world.users}}})
    return Sync(harness, s.side, runtime, s.name)


def noted(s: Sync, text: str) -> int:
    return sum(1 for comment in s.comments() if text in comment)


async def test_polling_falls_back_to_the_v2_timeline_remembers_it_and_follows_a_change_back_to_v1(
        harness: Harness) -> None:
    harness.state.signl4.set_behaviour(Behaviour(annotation_paths="v2_timeline"))
    s = await start(harness, webhook=False, sync=POLLING)
    requests = count_requests(s.runtime)
    megan = harness.world.users[1]
    v1_path, timeline_path = f"/api/alerts/{s.alert_id}/annotations", f"/api/v2/alerts/{s.alert_id}/timeline"
    harness.state.signl4.annotate(s.alert_id, megan.mail, "note one")
    await s.cycle(minutes=0.1)
    assert noted(s, "note one") == 1
    assert (requests[v1_path], requests[timeline_path]) == (1, 1)
    assert await s.runtime.store.get_cursor("contoso", ANNOTATIONS_PATH_CURSOR) == "v2_timeline"

    harness.state.signl4.annotate(s.alert_id, megan.mail, "note two")
    await s.cycle(minutes=0.2)
    assert noted(s, "note two") == 1
    assert (requests[v1_path], requests[timeline_path]) == (1, 2)  # no failing probe the second time

    s = await restart(s)
    requests = count_requests(s.runtime)
    harness.state.signl4.annotate(s.alert_id, megan.mail, "note three")
    await s.cycle(minutes=0.3)
    assert noted(s, "note three") == 1
    assert (requests[v1_path], requests[timeline_path]) == (0, 1)  # the store remembered the path

    harness.state.signl4.set_behaviour(Behaviour(annotation_paths="v1"))
    harness.state.signl4.annotate(s.alert_id, megan.mail, "note four")
    await s.cycle(minutes=0.4)
    assert noted(s, "note four") == 1
    assert await s.runtime.store.get_cursor("contoso", ANNOTATIONS_PATH_CURSOR) == "v1"
    assert all(noted(s, f"note {n}") == 1 for n in ("one", "two", "three", "four"))


async def test_annotations_unreadable_on_both_paths_never_stall_the_poll(harness: Harness) -> None:
    """Neither path answers: the acknowledgement and the close still reach the incident, the cursor moves on, and
    the cycle's report names the Signl whose notes were not read."""
    harness.state.signl4.set_behaviour(Behaviour(annotation_paths="none"))
    s = await start(harness, webhook=False, sync=POLLING)
    megan = harness.world.users[1]
    harness.state.signl4.acknowledge(s.alert_id, megan.mail)
    harness.state.signl4.annotate(s.alert_id, megan.mail, "lost note")
    harness.state.signl4.close(s.alert_id, megan.mail)
    moment = datetime.now(UTC) + timedelta(minutes=0.1)
    report = await s.connector.run_once(moment)
    assert s.view().status == "Closed"
    assert await s.runtime.store.get_cursor("contoso", POLL_CURSOR) == moment.isoformat()
    number = harness.incident(s.name)["properties"]["incidentNumber"]
    assert [e for e in report.errors if "annotations of 1 Signl(s) not read" in e] == [
        f"signl4 poll: annotations of 1 Signl(s) not read (#{number}): neither GET /alerts/{{id}}/annotations (v1) "
        "nor GET /v2/alerts/{id}/timeline answered; acknowledgements and closes are still synced"]
    assert noted(s, "lost note") == 0


async def test_polling_against_a_search_that_ignores_every_filter_syncs_each_change_once(harness: Harness) -> None:
    """The change search answers with every alert of the team, old and foreign ones included: only this connector's
    Signls are followed, each change reaches the incident once, and nothing is reported as failing."""
    other_alerts(harness)
    s = await start(harness, webhook=False, sync=POLLING)
    harness.state.signl4.set_behaviour(Behaviour(ignored_search_filters=frozenset({"externalId", "modifiedSince"})))
    megan = harness.world.users[1]
    harness.state.signl4.acknowledge(s.alert_id, megan.mail)
    harness.state.signl4.annotate(s.alert_id, megan.mail, "looking into it")
    reports = [await s.cycle(minutes=step / 10) for step in range(1, 4)]
    assert [r.errors for r in reports] == [[], [], []]
    assert s.view().status == "Active"
    assert noted(s, "looking into it") == 1
    assert all(n == 1 for n in Counter(s.comments()).values())


# -- check -----------------------------------------------------------------------------------------------------------


async def check(harness: Harness, **kwargs: Any) -> list[str]:
    lines: list[str] = []
    try:
        await run_checks(harness.config(**kwargs), echo=lines.append)
    finally:
        configure_logging(level="warning", stream=io.StringIO())
    return lines


async def test_check_prints_which_signl4_calls_answer_in_polling_mode(harness: Harness) -> None:
    other_alerts(harness, 1)
    harness.state.signl4.set_behaviour(Behaviour(annotation_paths="v2_timeline",
                                                 ignored_search_filters=frozenset({"externalId"})))
    lines = await check(harness, overrides={"sync": {**POLLING, "owner_map": {}}})
    assert lines[-1] == "All connectors OK.", lines
    signl4 = lines[lines.index("[contoso] SIGNL4 webhook / API: OK") + 1:-1]
    assert [line.split(" (", 1)[0] for line in signl4] == [
        "[contoso]   POST /webhook/{team-secret}: OK", "[contoso]   GET /v2/users: OK",
        "[contoso]   POST /v2/alerts/paged: OK", "[contoso]   POST /v2/alerts/paged",
        "[contoso]   GET /alerts/{id}/annotations", "[contoso]   GET /v2/alerts/{id}/timeline",
        "[contoso]   annotations: OK"]
    assert ("[contoso]   POST /v2/alerts/paged (externalId filter): OK (server ignores externalId filter; results are "
            "filtered client-side)") in signl4
    assert "[contoso]   GET /alerts/{id}/annotations (v1): NO ANSWER (HTTP 404)" in signl4
    assert "[contoso]   annotations: OK (polling will read /v2/alerts/{id}/timeline)" in signl4
    assert harness.world.signl4_team_secret not in "\n".join(lines)


async def test_check_fails_when_polling_cannot_read_annotations_anywhere(harness: Harness) -> None:
    other_alerts(harness, 1)
    harness.state.signl4.set_behaviour(Behaviour(annotation_paths="none"))
    lines = await check(harness, overrides={"sync": {**POLLING, "owner_map": {}}})
    assert lines[-1] == "Some checks failed.", lines
    assert ("[contoso] SIGNL4 webhook / API: ERROR: neither annotation path answers: polling mode cannot sync SIGNL4 "
            "annotations (acknowledgements and closes still sync)") in lines
    webhook_only = await check(harness, overrides={"sync": {"mode": "off", "owner_map": {}}})
    assert webhook_only[-1] == "All connectors OK.", webhook_only
