"""Graph emulator: ``/v1.0/security/alerts_v2`` and evolvable enums (``Prefer: include-unknown-enum-members``)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from fake_clock import FakeClock
from graph_world import (
    TENANT,
    GraphCaller,
    alert,
    assert_graph_error,
    assert_graph_valid,
)
from sentinel_signl4.domain.graph_vocab import EVOLVABLE
from sentinel_signl4_emulators.app import EmulatorState
from sentinel_signl4_emulators.graph.model import ENUM_VALUES
from spec_validation import SPECS_DIR

ENUMS: dict[str, Any] = json.loads((SPECS_DIR / "graph" / "security-enums.json").read_text())


def seed_alerts(state: EmulatorState, clock: FakeClock) -> dict[str, str]:
    """Three alerts in two incidents; returns alert ids by title."""
    clock.advance(minutes=1)
    first = state.graph.create_incident(TENANT, display_name="Endpoint", alerts=[
        alert("Hidden file", severity="low"),
        alert("Sentinel rule hit", severity="high", service_source="microsoftSentinel",
              detection_source="scheduledAlerts"),
    ])
    clock.advance(minutes=1)
    second = state.graph.create_incident(TENANT, display_name="Mail", alerts=[
        alert("Phish delivered", severity="medium", service_source="microsoftDefenderForOffice365",
              detection_source="microsoftDefenderForOffice365"),
    ])
    return {a["title"]: a["id"] for a in first["alerts"] + second["alerts"]}


def test_the_emulators_enums_are_exactly_those_of_the_spec() -> None:
    for name, values in ENUM_VALUES.items():
        assert list(values) == ENUMS[name]["values"], name


def test_evolvable_members_are_those_listed_after_unknown_future_value() -> None:
    for name in ("incidentStatus", "serviceSource", "detectionSource"):
        values = ENUMS[name]["values"]
        assert EVOLVABLE[name] == frozenset(values[values.index("unknownFutureValue") + 1:]), name
    for name in ("alertStatus", "alertSeverity", "alertClassification", "alertDetermination"):
        values = ENUMS[name]["values"]
        assert values[-1] == "unknownFutureValue" and name not in EVOLVABLE


async def test_alerts_list_filter_paging_and_shape(state: EmulatorState, clock: FakeClock,
                                                   graph: GraphCaller) -> None:
    ids = seed_alerts(state, clock)
    body = (await graph.get("security/alerts_v2", **{"$top": "2"})).json()
    assert_graph_valid(body, "microsoft.graph.security.alertCollectionResponse")
    assert len(body["value"]) == 2 and "$skip=2" in body["@odata.nextLink"]
    rest = (await graph.http.get(body["@odata.nextLink"], headers=graph.headers())).json()
    assert len(rest["value"]) == 1 and "@odata.nextLink" not in rest

    filtered = (await graph.get("security/alerts_v2", **{
        "$filter": "serviceSource eq 'microsoftSentinel' or severity eq 'medium'"})).json()["value"]
    assert {a["id"] for a in filtered} == {ids["Sentinel rule hit"], ids["Phish delivered"]}
    assert_graph_error(await graph.get("security/alerts_v2", **{"$expand": "evidence"}), 400, "BadRequest")


async def test_alert_get_patch_and_comments(state: EmulatorState, clock: FakeClock, graph: GraphCaller) -> None:
    ids = seed_alerts(state, clock)
    alert_id = ids["Hidden file"]
    got = (await graph.get(f"security/alerts_v2/{alert_id}")).json()
    assert_graph_valid(got, "microsoft.graph.security.alert")
    assert (got["status"], got["resolvedDateTime"]) == ("new", None)

    clock.advance(minutes=3)
    response = await graph.patch(f"security/alerts_v2/{alert_id}", {
        "status": "resolved", "classification": "falsePositive", "determination": "notMalicious",
        "assignedTo": "secAdmin@contoso.onmicrosoft.com"})
    assert response.status_code == 200, response.text
    updated = response.json()
    assert (updated["status"], updated["classification"], updated["determination"], updated["assignedTo"]) == (
        "resolved", "falsePositive", "notMalicious", "secAdmin@contoso.onmicrosoft.com")
    assert updated["resolvedDateTime"] is not None
    assert_graph_error(await graph.patch(f"security/alerts_v2/{alert_id}", {"customTags": ["x"]}), 400,
                       "BadRequest")

    comments = (await graph.post(f"security/alerts_v2/{alert_id}/comments", {"comment": "Demo for docs"})).json()
    assert_graph_valid(comments, "microsoft.graph.security.alertCommentCollectionResponse")
    assert [c["comment"] for c in comments["value"]] == ["Demo for docs"]
    assert_graph_error(await graph.get("security/alerts_v2/da0_0"), 404, "NotFound")


async def test_without_the_prefer_header_evolvable_members_read_unknown_future_value(
    state: EmulatorState, clock: FakeClock, http: httpx.AsyncClient, graph: GraphCaller
) -> None:
    ids = seed_alerts(state, clock)
    incident = state.graph.create_incident(TENANT, display_name="Waiting", status="awaitingAction")
    plain = GraphCaller(http, graph.token, prefer_unknown_enums=False)

    old = (await plain.get(f"security/alerts_v2/{ids['Sentinel rule hit']}")).json()
    assert (old["serviceSource"], old["detectionSource"]) == ("unknownFutureValue", "unknownFutureValue")
    new = (await graph.get(f"security/alerts_v2/{ids['Sentinel rule hit']}")).json()
    assert (new["serviceSource"], new["detectionSource"]) == ("microsoftSentinel", "scheduledAlerts")
    # Members before unknownFutureValue are sent as they are either way.
    mail = (await plain.get(f"security/alerts_v2/{ids['Phish delivered']}")).json()
    assert mail["serviceSource"] == "microsoftDefenderForOffice365"

    assert (await plain.get(f"security/incidents/{incident['id']}")).json()["status"] == "unknownFutureValue"
    assert (await graph.get(f"security/incidents/{incident['id']}")).json()["status"] == "awaitingAction"
    listed = (await plain.get("security/incidents", **{"$expand": "alerts"})).json()["value"]
    assert "microsoftSentinel" not in json.dumps(listed) and "awaitingAction" not in json.dumps(listed)


async def test_evolvable_members_in_requests_need_the_prefer_header(
    state: EmulatorState, clock: FakeClock, http: httpx.AsyncClient, graph: GraphCaller
) -> None:
    waiting = state.graph.create_incident(TENANT, display_name="Waiting", status="awaitingAction")
    active = state.graph.create_incident(TENANT, display_name="Active")
    plain = GraphCaller(http, graph.token, prefer_unknown_enums=False)
    flt = {"$filter": "status eq 'awaitingAction'"}
    assert_graph_error(await plain.get("security/incidents", **flt), 400, "BadRequest")
    assert [i["id"] for i in (await graph.get("security/incidents", **flt)).json()["value"]] == [waiting["id"]]
    assert_graph_error(await plain.patch(f"security/incidents/{active['id']}", {"status": "awaitingAction"}), 400,
                       "BadRequest")
    assert (await graph.patch(f"security/incidents/{active['id']}", {"status": "awaitingAction"})).json()[
        "status"] == "awaitingAction"
