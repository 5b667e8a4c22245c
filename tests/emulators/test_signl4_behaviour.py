"""The SIGNL4 emulator's knobs for behaviours no official source settles: where annotations can be read, search
filters the server ignores, and categories a user hid from their own view."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from fake_clock import FakeClock
from sentinel_signl4_emulators.signl4.model import Behaviour, RawParameter, Signl4Model
from sentinel_signl4_emulators.signl4.routes import build_signl4_app

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
AUTH = {"X-S4-Api-Key": "key-1"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def model(clock: FakeClock) -> Signl4Model:
    model = Signl4Model(clock)
    model.create_subscription("sub-1")
    model.create_team("sub-1", "Ops", team_id="team-1", secret="s3cret")
    model.create_user("sub-1", "Rene", "rene@signl4.com", user_id="u-rene", team_ids=["team-1"])
    model.create_api_key("sub-1", "key-1")
    return model


@pytest.fixture
async def client(model: Signl4Model) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_signl4_app(model))
    async with httpx.AsyncClient(transport=transport, base_url="https://signl4.test") as client:
        yield client


def raise_alert(model: Signl4Model, clock: FakeClock, external_id: str, **extra: str) -> str:
    clock.advance(1)
    fields = [RawParameter("Title", f"Alert {external_id}"), RawParameter("X-S4-ExternalID", external_id),
              *(RawParameter(k, v) for k, v in extra.items())]
    return model.raise_event("team-1", fields).target_alert_ids[0]


async def search(client: httpx.AsyncClient, body: dict[str, Any]) -> list[str]:
    response = await client.post("/api/v2/alerts/paged", params={"userId": "u-rene"}, json=body, headers=AUTH)
    assert response.status_code in (200, 204)
    return [] if response.status_code == 204 else [a["externalId"] for a in response.json()["results"]]


async def test_annotations_answer_at_the_v1_path_and_the_v2_timeline_by_default(
        client: httpx.AsyncClient, model: Signl4Model, clock: FakeClock) -> None:
    alert_id = raise_alert(model, clock, "INC1")
    clock.advance(5)
    model.acknowledge(alert_id, "u-rene")
    clock.advance(5)
    note = model.annotate(alert_id, "u-rene", "on my way")
    v1 = await client.get(f"/api/alerts/{alert_id}/annotations", headers=AUTH)
    assert [(n["id"], n["text"]) for n in v1.json()] == [(note.id, "on my way")]
    timeline = (await client.get(f"/api/v2/alerts/{alert_id}/timeline", headers=AUTH)).json()
    assert [e["order"] for e in timeline] == list(range(len(timeline)))
    # Status entries carry text too: only annotationtype tells an annotation apart.
    annotations = [(e["id"], e["text"], e["userId"]) for e in timeline if e["annotationtype"] >= 1]
    assert annotations == [(note.id, "on my way", "u-rene")]
    assert any(e["annotationtype"] == 0 and e["text"] for e in timeline)
    assert all(e.keys() >= {"annotationtype", "entrytype", "id", "teamId", "text", "timestamp", "userId"}
               for e in timeline)


@pytest.mark.parametrize(("paths", "v1_status", "timeline_status"), [
    ("v1", 200, 404), ("v2_timeline", 404, 200), ("both", 200, 200), ("none", 404, 404)])
async def test_the_annotation_paths_knob_decides_which_path_answers(
        client: httpx.AsyncClient, model: Signl4Model, clock: FakeClock, paths: str, v1_status: int,
        timeline_status: int) -> None:
    alert_id = raise_alert(model, clock, "INC1")
    model.annotate(alert_id, "u-rene", "note")
    put = await client.put("/_control/signl4/behaviour", json={"annotationPaths": paths})
    assert put.json()["annotationPaths"] == paths
    assert (await client.get(f"/api/alerts/{alert_id}/annotations", headers=AUTH)).status_code == v1_status
    assert (await client.get(f"/api/v2/alerts/{alert_id}/timeline", headers=AUTH)).status_code == timeline_status


async def test_a_server_that_ignores_the_external_id_filter_returns_every_alert(
        client: httpx.AsyncClient, model: Signl4Model, clock: FakeClock) -> None:
    raise_alert(model, clock, "INC1")
    raise_alert(model, clock, "INC2")
    assert await search(client, {"externalId": "INC1"}) == ["INC1"]
    put = await client.put("/_control/signl4/behaviour", json={"ignoredSearchFilters": ["externalId"]})
    assert put.json() == {"annotationPaths": "both", "ignoredSearchFilters": ["externalId"]}
    assert sorted(await search(client, {"externalId": "INC1"})) == ["INC1", "INC2"]
    model.reset()
    assert model.behaviour == Behaviour()


async def test_a_server_that_ignores_modified_since_returns_unchanged_alerts(
        client: httpx.AsyncClient, model: Signl4Model, clock: FakeClock) -> None:
    raise_alert(model, clock, "OLD")
    clock.advance(3600)
    since = clock().isoformat()
    raise_alert(model, clock, "NEW")
    assert await search(client, {"modifiedSince": since}) == ["NEW"]
    model.set_behaviour(Behaviour(ignored_search_filters=frozenset({"modifiedSince"})))
    assert sorted(await search(client, {"modifiedSince": since})) == ["NEW", "OLD"]


async def test_unknown_knob_values_are_refused(client: httpx.AsyncClient) -> None:
    for body in ({"annotationPaths": "v3"}, {"ignoredSearchFilters": ["teamIds"]}, {"ignoredSearchFilters": "x"}):
        assert (await client.put("/_control/signl4/behaviour", json=body)).status_code == 400


async def test_hidden_categories_hide_alerts_unless_the_search_asks_for_them(
        client: httpx.AsyncClient, model: Signl4Model, clock: FakeClock) -> None:
    raise_alert(model, clock, "INC1", **{"X-S4-Service": "Security"})
    raise_alert(model, clock, "INC2", **{"X-S4-Service": "Facilities"})
    put = await client.put("/_control/signl4/users/rene@signl4.com/hidden-categories",
                           json={"categories": ["security"]})
    assert put.status_code == 204
    assert await search(client, {}) == ["INC2"]
    assert sorted(await search(client, {"showPersonalHiddenCategories": True})) == ["INC1", "INC2"]
    bad = await client.post("/api/v2/alerts/paged", params={"userId": "u-rene"}, headers=AUTH,
                            json={"showPersonalHiddenCategories": "yes"})
    assert bad.status_code == 400
