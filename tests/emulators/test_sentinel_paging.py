"""Listing incidents: $filter semantics, $orderby, $top, and nextLink paging that never skips or repeats an
incident while others are inserted between pages."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulators_world import API_VERSION, Arm
from fake_clock import START, FakeClock
from sentinel_signl4_emulators.app import EmulatorState, EmulatorTransport, build_app
from sentinel_signl4_emulators.common.odata import OrderBy
from sentinel_signl4_emulators.entra.model import EntraModel
from sentinel_signl4_emulators.sentinel.model import Role, SentinelModel, WorkspaceRef
from sentinel_signl4_emulators.sentinel.routes import DEFAULT_PAGE_SIZE
from spec_validation import assert_valid

CONNECTOR_FILTER = (
    "properties/createdTimeUtc ge {since} and properties/status eq 'New' "
    "and (properties/severity eq 'High' or properties/severity eq 'Medium')"
)


async def list_all(arm: Arm, **params: str) -> tuple[list[dict[str, Any]], int]:
    """Follow every nextLink verbatim; returns the incidents and the number of pages."""
    response = await arm.get(arm.incidents_url, **params)
    pages = [response.json()]
    while "nextLink" in pages[-1]:
        pages.append((await arm.http.get(pages[-1]["nextLink"], headers=arm.auth)).json())
    for page in pages:
        assert_valid(page, "IncidentList")
    return [incident for page in pages for incident in page["value"]], len(pages)


async def test_connector_filter_returns_exactly_new_recent_high_or_medium_incidents(
    arm: Arm, state: EmulatorState, clock: FakeClock
) -> None:
    since = (clock() - timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M:%SZ")
    found, _ = await list_all(arm, **{"$filter": CONNECTOR_FILTER.format(since=since),
                                      "$orderby": "properties/createdTimeUtc asc"})
    expected = [
        i for i in state.sentinel.list_incidents(arm.world.workspace)
        if i["properties"]["status"] == "New" and i["properties"]["severity"] in ("High", "Medium")
        and i["properties"]["createdTimeUtc"] >= since
    ]
    assert expected and sorted(i["name"] for i in found) == sorted(i["name"] for i in expected)
    created = [i["properties"]["createdTimeUtc"] for i in found]
    assert created == sorted(created)


async def test_orderby_desc_and_incident_number_order(arm: Arm) -> None:
    newest_first, _ = await list_all(arm, **{"$orderby": "properties/createdTimeUtc desc"})
    created = [i["properties"]["createdTimeUtc"] for i in newest_first]
    assert created == sorted(created, reverse=True)
    by_number, _ = await list_all(arm, **{"$orderby": "properties/incidentNumber asc", "$top": "3"})
    numbers = [i["properties"]["incidentNumber"] for i in by_number]
    assert numbers == sorted(numbers) and len(numbers) == len(arm.world.incident_names)


async def test_next_link_is_absolute_on_the_request_origin_and_carries_the_query(state: EmulatorState,
                                                                                arm: Arm) -> None:
    async with httpx.AsyncClient(transport=EmulatorTransport(build_app(state))) as other:
        url = arm.incidents_url.replace("https://management.azure.com", "https://127.0.0.1:9443")
        response = await other.get(url, params={"api-version": API_VERSION, "$top": "2",
                                                "$filter": "properties/severity ne 'Low'"}, headers=arm.auth)
    link = httpx.URL(response.json()["nextLink"])
    assert (link.scheme, link.host, link.port) == ("https", "127.0.0.1", 9443)
    assert link.path == httpx.URL(url).path
    assert link.params["api-version"] == API_VERSION and link.params["$top"] == "2"
    assert link.params["$filter"] == "properties/severity ne 'Low'" and link.params["$skipToken"]
    assert "$skipToken=" in str(link)  # the literal parameter name, as ARM writes it


async def test_default_page_size_applies_without_top(arm: Arm, state: EmulatorState) -> None:
    for n in range(DEFAULT_PAGE_SIZE + 5 - len(arm.world.incident_names)):
        state.sentinel.create_incident(arm.world.workspace, title=f"Bulk {n}", severity="Low")
    first = (await arm.get(arm.incidents_url)).json()
    assert len(first["value"]) == DEFAULT_PAGE_SIZE and "nextLink" in first


async def test_paging_over_many_pages_survives_concurrent_inserts(
    arm: Arm, state: EmulatorState, clock: FakeClock
) -> None:
    """Between page fetches, incidents are inserted with the cursor's own created time (tie broken by name),
    in the far past and in the future; every incident that existed when paging started comes back exactly once,
    in order."""
    ws = arm.world.workspace
    for n in range(12):
        state.sentinel.create_incident(ws, title=f"Pre-existing {n}", severity="High",
                                       created=clock() - timedelta(minutes=90 - n))
    existing = {i["name"] for i in state.sentinel.list_incidents(ws)}
    response = await arm.get(arm.incidents_url, **{"$top": "4", "$orderby": "properties/createdTimeUtc asc"})
    pages = [response.json()]
    while "nextLink" in pages[-1]:
        n = len(pages)
        cursor_created = datetime.fromisoformat(
            pages[-1]["value"][-1]["properties"]["createdTimeUtc"].replace("Z", "+00:00"))
        for title, created in (("tie", cursor_created), ("past", START - timedelta(days=30)),
                               ("future", clock() + timedelta(minutes=n))):
            state.sentinel.create_incident(ws, title=f"Concurrent {title} {n}", severity="Low", created=created)
        pages.append((await arm.http.get(pages[-1]["nextLink"], headers=arm.auth)).json())
    names = [i["name"] for page in pages for i in page["value"]]
    assert len(pages) >= 3
    assert len(names) == len(set(names)), "an incident was returned twice"
    assert existing <= set(names), "an incident that existed before paging was skipped"
    times = [i["properties"]["createdTimeUtc"] for page in pages for i in page["value"]]
    assert times == sorted(times)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(st.integers(0, 5), st.sampled_from(["High", "Medium", "Low"])), min_size=1, max_size=25),
    st.integers(1, 7),
    st.booleans(),
    st.sampled_from(["properties/createdTimeUtc", "properties/incidentNumber", "properties/severity",
                     "properties/title"]),
)
def test_keyset_pages_partition_the_result_for_any_data(
    rows: list[tuple[int, str]], top: int, descending: bool, field: str
) -> None:
    """Model-level property: the pages' concatenation is the full ordered result, without repeats."""
    model = SentinelModel(EntraModel(), clock=lambda: START)
    ws = model.create_workspace("s", "g", "w", tenant_id="t").ref
    for minutes, severity in rows:  # duplicates in the sort key on purpose
        model.create_incident(ws, title=f"T{minutes}", severity=severity, created=START + timedelta(minutes=minutes))
    order = OrderBy(field, descending)
    names, cursor = [], None
    while True:
        page = model.query_incidents(ws, where=None, order=order, top=top, after=cursor)
        names += [i["name"] for i in page.items]
        if page.cursor is None:
            break
        cursor = page.cursor
    key = field.removeprefix("properties/")
    expected = sorted(model.list_incidents(ws), key=lambda i: (i["properties"][key], i["name"]), reverse=descending)
    assert names == [i["name"] for i in expected]
    assert len(names) == len(rows) == len(set(names))


def test_role_scope_inheritance_and_strongest_role() -> None:
    model = SentinelModel(EntraModel())
    ws = WorkspaceRef("Sub", "RG", "WS")
    model.assign_role("app", "/subscriptions/sub", Role.READER)
    assert model.role_for("APP", ws) is Role.READER
    model.assign_role("app", ws, Role.RESPONDER)
    assert model.role_for("app", ws) is Role.RESPONDER
    assert model.role_for("app", WorkspaceRef("other", "RG", "WS")) is None
    assert model.role_for("app", WorkspaceRef("sub", "RG2", "WS")) is Role.READER
