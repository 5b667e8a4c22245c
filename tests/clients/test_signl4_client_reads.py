"""Signl4Client reads against the SIGNL4 emulator's uncertain behaviours: a search that ignores its filters, hidden
categories, annotations on the v1 path or the v2 timeline only, and what ``check_access`` reports about each."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest

from clients_world import World, make_signl4
from sentinel_signl4.clients.retry import RetryStats
from sentinel_signl4.clients.signl4 import AnnotationsUnavailableError, Signl4Client
from sentinel_signl4.domain import SignlRequest
from sentinel_signl4_emulators.signl4.model import Behaviour, RawParameter

V1_ANNOTATIONS = "/api/alerts/{}/annotations"
V2_TIMELINE = "/api/v2/alerts/{}/timeline"


def raise_alert(world: World, external_id: str, team_id: str | None = None, **extra: str) -> str:
    """An alert raised straight in SIGNL4 (not through the client), one second after the previous one."""
    world.clock.advance(1)
    fields = [RawParameter("Title", f"Alert {external_id}"), RawParameter("X-S4-ExternalID", external_id),
              *(RawParameter(k, v) for k, v in extra.items())]
    return world.state.signl4.raise_event(team_id or world.team_id, fields).target_alert_ids[0]


def behave(world: World, **kwargs: object) -> None:
    world.state.signl4.set_behaviour(Behaviour(**kwargs))  # type: ignore[arg-type]


def paths(sent: list[httpx.Request]) -> list[str]:
    return [r.url.path for r in sent]


# -- searches ---------------------------------------------------------------------------------------------------------


async def test_a_server_ignoring_the_external_id_filter_yields_only_exact_matches(
        world: World, signl4: Signl4Client) -> None:
    mine = raise_alert(world, "s4s:soc:mine")
    raise_alert(world, "s4s:soc:other")
    raise_alert(world, "s4s:soc:mine-too-long")
    behave(world, ignored_search_filters=frozenset({"externalId"}))
    assert [a["id"] for a in await signl4.find_alerts_by_external_id("s4s:soc:mine")] == [mine]
    assert await signl4.find_alerts_by_external_id("s4s:soc:never-sent") == []
    assert signl4.search_filter_ignored is True


async def test_a_server_applying_the_filter_is_seen_as_such(world: World, signl4: Signl4Client) -> None:
    raise_alert(world, "s4s:soc:mine")
    raise_alert(world, "s4s:soc:other")
    assert len(await signl4.find_alerts_by_external_id("s4s:soc:mine")) == 1
    assert signl4.search_filter_ignored is False


async def test_every_search_asks_for_personally_hidden_categories(
        world: World, signl4: Signl4Client, sent: list[httpx.Request]) -> None:
    """The API user (the first team member, Alice) hid the category the connector pages into."""
    world.state.signl4.hide_categories("alice@contoso.com", ["Security"])
    alert_id = raise_alert(world, "s4s:soc:hidden", **{"X-S4-Service": "Security"})
    assert [a["id"] for a in await signl4.find_alerts_by_external_id("s4s:soc:hidden")] == [alert_id]
    changed = await signl4.list_alerts_modified_since(world.clock() - timedelta(minutes=1))
    assert [a["id"] for a in changed] == [alert_id]
    searches = [json.loads(r.content) for r in sent if r.url.path == "/api/v2/alerts/paged"]
    assert len(searches) == 2
    assert all(body["showPersonalHiddenCategories"] is True for body in searches)


async def test_alerts_of_another_team_are_ignored_once_the_webhooks_team_is_known(
        world: World, signl4: Signl4Client, sent: list[httpx.Request]) -> None:
    """Another team of the subscription (another deployment paging the same incidents) holds an alert with the same
    ExternalID. The team of our webhook is learned from the event we raised, with one lookup."""
    other_team = world.state.signl4.create_team(world.signl4_subscription, "NOC")
    world.state.signl4.add_member(other_team.id, world.alice_id)
    await signl4.send_event(SignlRequest(external_id="s4s:soc:shared", title="ours"))
    raise_alert(world, "s4s:soc:shared", team_id=other_team.id)
    found = await signl4.find_alerts_by_external_id("s4s:soc:shared")
    assert [a["teamId"] for a in found] == [world.team_id]
    await signl4.find_alerts_by_external_id("s4s:soc:shared")
    assert sum(1 for p in paths(sent) if p.startswith("/api/v2/events/")) == 1


async def test_an_unknown_team_filters_nothing_beyond_the_external_id(
        world: World, signl4: Signl4Client) -> None:
    other_team = world.state.signl4.create_team(world.signl4_subscription, "NOC")
    world.state.signl4.add_member(other_team.id, world.alice_id)
    raise_alert(world, "s4s:soc:shared")
    raise_alert(world, "s4s:soc:shared", team_id=other_team.id)
    assert len(await signl4.find_alerts_by_external_id("s4s:soc:shared")) == 2


async def test_a_modified_since_search_drops_what_the_server_should_not_have_returned(
        world: World, signl4: Signl4Client) -> None:
    raise_alert(world, "s4s:soc:old")
    world.clock.advance(3600)
    since = world.clock()
    fresh = raise_alert(world, "s4s:soc:fresh")
    behave(world, ignored_search_filters=frozenset({"modifiedSince"}))
    assert [a["id"] for a in await signl4.list_alerts_modified_since(since)] == [fresh]


# -- annotations ------------------------------------------------------------------------------------------------------


async def test_annotations_fall_back_to_the_v2_timeline_and_it_is_remembered(
        world: World, signl4: Signl4Client, sent: list[httpx.Request]) -> None:
    alert_id = raise_alert(world, "s4s:soc:notes")
    world.state.signl4.acknowledge(alert_id, world.bob_id)
    note = world.state.signl4.annotate(alert_id, world.bob_id, "on my way")
    behave(world, annotation_paths="v2_timeline")
    notes = await signl4.list_annotations(alert_id)
    # The timeline's status entries carry text too; only the annotation comes back, in the common shape.
    assert notes == [{"id": note.id, "text": "on my way", "userId": world.bob_id,
                      "timestamp": notes[0]["timestamp"]}]
    assert signl4.annotations_path == "v2_timeline"
    assert paths(sent) == [V1_ANNOTATIONS.format(alert_id), V2_TIMELINE.format(alert_id)]
    sent.clear()
    assert len(await signl4.list_annotations(alert_id)) == 1
    assert paths(sent) == [V2_TIMELINE.format(alert_id)]  # no failing probe the second time


async def test_a_remembered_v2_timeline_that_disappears_falls_back_to_v1(
        world: World, http: httpx.AsyncClient, stats: RetryStats, sent: list[httpx.Request]) -> None:
    client = make_signl4(http, world.clock, stats, annotations_path="v2_timeline")
    alert_id = raise_alert(world, "s4s:soc:notes")
    world.state.signl4.annotate(alert_id, world.bob_id, "first")
    behave(world, annotation_paths="v1")
    assert [n["text"] for n in await client.list_annotations(alert_id)] == ["first"]
    assert client.annotations_path == "v1"
    assert paths(sent) == [V2_TIMELINE.format(alert_id), V1_ANNOTATIONS.format(alert_id)]


async def test_no_annotations_yet_is_an_empty_list_on_either_path(world: World, signl4: Signl4Client) -> None:
    alert_id = raise_alert(world, "s4s:soc:quiet")
    assert await signl4.list_annotations(alert_id) == []  # v1 answers 204
    behave(world, annotation_paths="v2_timeline")
    signl4.annotations_path = None
    assert await signl4.list_annotations(alert_id) == []  # the timeline has only its "created" entry


async def test_neither_annotation_path_answering_is_one_clear_error(world: World, signl4: Signl4Client) -> None:
    alert_id = raise_alert(world, "s4s:soc:notes")
    behave(world, annotation_paths="none")
    with pytest.raises(AnnotationsUnavailableError) as caught:
        await signl4.list_annotations(alert_id)
    assert "GET /alerts/{id}/annotations (v1)" in caught.value.message
    assert "GET /v2/alerts/{id}/timeline" in caught.value.message
    assert signl4.annotations_path is None


# -- check ------------------------------------------------------------------------------------------------------------


async def test_check_reports_each_call_and_the_annotation_path_polling_will_use(
        world: World, signl4: Signl4Client) -> None:
    raise_alert(world, "s4s:soc:any")
    behave(world, annotation_paths="v2_timeline", ignored_search_filters=frozenset({"externalId"}))
    report = await signl4.check_access(annotations=True)
    lines = report.lines()
    assert lines[0].startswith("POST /webhook/{team-secret}: OK (probe event ")
    assert lines[1:] == [
        "GET /v2/users: OK (2 team member(s) visible to the API key)",
        "POST /v2/alerts/paged: OK (search answers)",
        "POST /v2/alerts/paged (externalId filter): OK (server ignores externalId filter; results are filtered "
        "client-side)",
        "GET /alerts/{id}/annotations (v1): NO ANSWER (HTTP 404)",
        lines[5],
        "annotations: OK (polling will read /v2/alerts/{id}/timeline)",
    ]
    assert lines[5].startswith("GET /v2/alerts/{id}/timeline (v2): OK (0 annotation(s) on alert ")
    assert report.problems == ()
    assert signl4.annotations_path == "v2_timeline"
    assert signl4.search_filter_ignored is True


async def test_check_says_when_neither_annotation_path_answers(world: World, signl4: Signl4Client) -> None:
    raise_alert(world, "s4s:soc:any")
    behave(world, annotation_paths="none")
    report = await signl4.check_access(annotations=True)
    assert report.problems == ("neither annotation path answers: polling mode cannot sync SIGNL4 annotations "
                               "(acknowledgements and closes still sync)",)
    assert "POST /v2/alerts/paged (externalId filter): OK (filter applied by the server; results are checked "\
           "client-side too)" in report.lines()


async def test_check_without_alerts_or_polling_probes_only_what_it_can(world: World, signl4: Signl4Client) -> None:
    report = await signl4.check_access(annotations=True)
    assert report.lines()[2:] == [
        "POST /v2/alerts/paged: OK (search answers; no alert visible to the API user yet)",
        "POST /v2/alerts/paged (externalId filter): OK (cannot tell whether the server applies the filter (no alert "
        "visible); results are filtered client-side either way)",
        "GET /alerts/{id}/annotations | /v2/alerts/{id}/timeline: OK (not probed: no alert visible yet; polling "
        "tries v1 first, then the v2 timeline, and remembers which answers)",
    ]
    assert not any("annotations" in line for line in (await signl4.check_access()).lines())


async def test_check_names_the_events_api_when_events_go_through_it(
        world: World, http: httpx.AsyncClient, stats: RetryStats) -> None:
    client = make_signl4(http, world.clock, stats, send_via="events_api")
    report = await client.check_access()
    assert report.lines()[0].startswith("POST /v2/events/{team}: OK (probe event ")
    assert world.state.signl4.list_alerts() == []
