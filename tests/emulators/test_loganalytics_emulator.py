"""Log Analytics query emulator: rows consistent with Sentinel, the KQL subset, errors, limits, faults."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from emulators_world import ARM, get_token
from sentinel_signl4.domain import Severity
from sentinel_signl4.domain.entities import entities_from_security_alert, entity_value
from sentinel_signl4_emulators.app import EmulatorState
from sentinel_signl4_emulators.loganalytics.model import Fault, FaultKind, QueryLimits
from sentinel_signl4_emulators.seed import DemoWorld
from sentinel_signl4_emulators.sentinel.model import EntitySeed, SecurityAlertSeed
from spec_validation import schema_errors

LA_SCOPE = "https://api.loganalytics.io/.default"
Clock = Callable[[], datetime]
LA = "loganalytics-query-v1.schema.json"


class Logs:
    def __init__(self, http: httpx.AsyncClient, world: DemoWorld, token: str) -> None:
        self.http, self.world, self.token = http, world, token

    @property
    def url(self) -> str:
        return f"{ARM}/v1/workspaces/{self.world.workspace_id}/query"

    async def post(self, query: str, timespan: str | None = "P3D", *, token: str | None = None,
                   headers: dict[str, str] | None = None, url: str | None = None) -> httpx.Response:
        body: dict[str, Any] = {"query": query, "timespan": timespan, "workspaces": None}
        auth = {"Authorization": f"Bearer {token or self.token}"} if (token or self.token) else {}
        return await self.http.post(url or self.url, json=body, headers={**auth, **(headers or {})})

    async def rows(self, query: str, timespan: str | None = "P3D") -> list[dict[str, Any]]:
        response = await self.post(query, timespan)
        assert response.status_code == 200, response.text
        table = response.json()["tables"][0]
        names = [column["name"] for column in table["columns"]]
        return [dict(zip(names, row, strict=True)) for row in table["rows"]]


@pytest.fixture
async def logs(http: httpx.AsyncClient, world: DemoWorld) -> Logs:
    return Logs(http, world, await get_token(http, world, scope=LA_SCOPE))


def in_list(ids: list[str]) -> str:
    return ", ".join(json.dumps(i) for i in ids)


async def test_security_alert_rows_are_the_seeded_alerts_of_the_workspace(logs: Logs, state: EmulatorState,
                                                                          world: DemoWorld) -> None:
    name = world.incident_names[0]
    alerts = state.sentinel.alerts(world.workspace, name)
    query = f"SecurityAlert | where SystemAlertId in ({in_list([a.system_alert_id for a in alerts])})"
    response = await logs.post(query)
    assert response.status_code == 200
    body = response.json()
    assert schema_errors(body, "QueryResults.lenient", bundle=LA) == []
    table = body["tables"][0]
    assert table["name"] == "PrimaryResult"
    rows = await logs.rows(query)
    assert {(r["SystemAlertId"], r["AlertName"], r["AlertSeverity"]) for r in rows} == {
        (a.system_alert_id, a.display_name, str(a.severity)) for a in alerts}
    assert all(r["TenantId"] == world.workspace_id and r["Type"] == "SecurityAlert" for r in rows)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z", r["TimeGenerated"]) for r in rows)
    # The Entities column describes the same entities as POST …/entities.
    arm_values = {entity_value(e.kind, e.properties) for e in state.sentinel.entities(world.workspace, name)}
    la_values = {entity_value(e["kind"], e["properties"]) for e in entities_from_security_alert(rows[0]["Entities"])}
    assert la_values == arm_values and la_values


async def test_arg_max_keeps_the_latest_version_of_an_alert(logs: Logs, state: EmulatorState, world: DemoWorld,
                                                            clock: Clock) -> None:
    seed = SecurityAlertSeed("Mimikatz", Severity.HIGH, "Microsoft Defender for Endpoint",
                             clock() - timedelta(minutes=30), status="InProgress")
    state.sentinel.create_incident(world.workspace, title="t", severity="High", alerts=[seed],
                                   entities=[EntitySeed("Host", {"hostName": "web-01"})])
    where = f'SecurityAlert | where SystemAlertId == "{seed.system_alert_id}"'
    assert [r["Status"] for r in await logs.rows(where + " | order by TimeGenerated asc")] == ["New", "InProgress"]
    latest = await logs.rows(where + " | summarize arg_max(TimeGenerated, *) by SystemAlertId")
    assert [(r["SystemAlertId"], r["Status"]) for r in latest] == [(seed.system_alert_id, "InProgress")]


async def test_the_security_incident_join_of_the_reference_returns_the_incidents_alerts(
        logs: Logs, state: EmulatorState, world: DemoWorld) -> None:
    name = next(n for n in world.incident_names if len(state.sentinel.alerts(world.workspace, n)) > 1)
    query = f'''let incident = "{name}";       // REST name == IncidentName
SecurityIncident
| where TimeGenerated > ago(2d) and IncidentName == incident
| summarize arg_max(TimeGenerated, *) by IncidentName
| mv-expand AlertIds to typeof(string)
| join kind=inner (SecurityAlert | where TimeGenerated > ago(2d)
                   | summarize arg_max(TimeGenerated, *) by SystemAlertId) on $left.AlertIds == $right.SystemAlertId
| project SystemAlertId, AlertName, AlertSeverity, ProviderName, ProductName, CompromisedEntity,
          Entities, ExtendedProperties, Tactics, Techniques, StartTime, EndTime, Description'''
    rows = await logs.rows(query)
    assert sorted(r["SystemAlertId"] for r in rows) == sorted(
        a.system_alert_id for a in state.sentinel.alerts(world.workspace, name))


@pytest.mark.parametrize("timespan", ["PT72H", "PT259200.0S", "P3D", "start/end"])
async def test_timespan_forms_the_sdk_and_docs_use_are_accepted(logs: Logs, clock: Clock,
                                                                timespan: str) -> None:
    if timespan == "start/end":
        timespan = f"{(clock() - timedelta(days=3)).isoformat()}/{clock().isoformat()}"
    assert len(await logs.rows("SecurityAlert | summarize arg_max(TimeGenerated, *) by SystemAlertId",
                               timespan)) >= 10


async def test_the_timespan_bounds_the_rows_and_a_bad_one_is_a_400(logs: Logs) -> None:
    recent = await logs.rows("SecurityAlert", "PT1H")
    everything = await logs.rows("SecurityAlert", None)
    assert 0 < len(recent) < len(everything)
    response = await logs.post("SecurityAlert", "yesterday")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadArgumentError"
    assert schema_errors(response.json(), "ErrorResponse", bundle=LA) == []


@pytest.mark.parametrize(("query", "kind", "message"), [
    ("SecurityAlert | wher AlertName == 'x'", "SyntaxError", "unknown or unsupported operator"),
    ("SecurityAlert | where Nope == 1", "SemanticError", "Failed to resolve scalar expression named 'Nope'"),
    ("Heartbeat | take 1", "SemanticError", "Failed to resolve table or column expression named 'Heartbeat'"),
    ('SecurityAlert | where AlertName == "unterminated', "SyntaxError", "unexpected character"),
])
async def test_a_query_the_engine_rejects_is_a_400_bad_argument(logs: Logs, query: str, kind: str,
                                                                message: str) -> None:
    response = await logs.post(query)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["innererror"]["code"]) == ("BadArgumentError", kind)
    assert message in error["innererror"]["message"]
    assert schema_errors(response.json(), "ErrorResponse", bundle=LA) == []


async def test_callers_are_authenticated_and_authorised(logs: Logs, http: httpx.AsyncClient,
                                                        world: DemoWorld, state: EmulatorState) -> None:
    missing = await http.post(logs.url, json={"query": "SecurityAlert"})
    assert (missing.status_code, missing.json()["error"]["code"]) == (401, "AuthenticationFailed")
    arm_token = await get_token(http, world)
    wrong = await logs.post("SecurityAlert", token=arm_token)
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (403, "InvalidAuthenticationTokenAudience")
    outsider = state.entra.register_app(world.tenant_id, display_name="no-role", secret="outsider-secret-123")
    outsider_token = await get_token(http, world, client_id=outsider.client_id, secret="outsider-secret-123",
                                     scope=LA_SCOPE)
    denied = await logs.post("SecurityAlert", token=outsider_token)
    assert (denied.status_code, denied.json()["error"]["code"]) == (403, "InsufficientAccessError")
    reader_token = await get_token(http, world, client_id=world.reader_client_id,
                                   secret=world.reader_client_secret, scope=LA_SCOPE)
    assert (await logs.post("SecurityAlert | take 1", token=reader_token)).status_code == 200
    unknown = await logs.post("SecurityAlert", url=f"{ARM}/v1/workspaces/00000000-0000-0000-0000-000000000000/query")
    assert unknown.status_code == 404
    nowhere = await http.get(f"{ARM}/v1/nowhere", headers={"Authorization": f"Bearer {logs.token}"})
    assert (nowhere.status_code, nowhere.json()["error"]["code"]) == (404, "PathNotFoundError")


async def test_a_partial_error_is_a_200_with_tables_and_an_error(logs: Logs, state: EmulatorState) -> None:
    full = await logs.rows("SecurityAlert")
    state.loganalytics.inject(Fault(FaultKind.PARTIAL))
    response = await logs.post("SecurityAlert")
    assert response.status_code == 200
    body = response.json()
    assert body["error"]["code"] == "PartialError"
    assert 0 < len(body["tables"][0]["rows"]) < len(full)
    assert schema_errors(body, "QueryResults.lenient", bundle=LA) == []
    assert len(await logs.rows("SecurityAlert")) == len(full)  # the fault fired once


async def test_more_than_the_rate_limit_is_a_429_with_retry_after(logs: Logs, state: EmulatorState) -> None:
    state.loganalytics.limits = QueryLimits(rate=3, window=30.0)
    statuses = [(await logs.post("SecurityAlert | take 1")).status_code for _ in range(3)]
    throttled = await logs.post("SecurityAlert | take 1")
    assert statuses == [200, 200, 200]
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
    assert schema_errors(throttled.json(), "ErrorResponse", bundle=LA) == []


async def test_at_most_five_queries_of_a_principal_run_at_once_the_rest_queue(logs: Logs,
                                                                             state: EmulatorState) -> None:
    state.loganalytics.latency = 0.05
    responses = await asyncio.gather(*(logs.post("SecurityAlert | take 1") for _ in range(12)))
    assert [r.status_code for r in responses] == [200] * 12
    assert state.loganalytics.max_concurrent_seen == 5


async def test_a_query_queued_too_long_is_a_429(logs: Logs, state: EmulatorState) -> None:
    state.loganalytics.limits = QueryLimits(queue_timeout=0.01)
    state.loganalytics.latency = 0.3
    responses = await asyncio.gather(*(logs.post("SecurityAlert | take 1") for _ in range(7)))
    assert sorted(r.status_code for r in responses) == [200] * 5 + [429] * 2
    # The queue is left clean: later queries run.
    state.loganalytics.latency = 0.0
    assert (await logs.post("SecurityAlert | take 1")).status_code == 200


async def test_prefer_wait_overrun_is_a_504(logs: Logs, state: EmulatorState) -> None:
    state.loganalytics.inject(Fault(FaultKind.SLOW, delay=1.5))
    response = await logs.post("SecurityAlert | take 1", headers={"Prefer": "wait=1"})
    assert response.status_code == 504


async def test_scripted_throttle_and_bad_query_faults(logs: Logs, state: EmulatorState) -> None:
    state.loganalytics.inject(Fault(FaultKind.THROTTLE, retry_after=7))
    state.loganalytics.inject(Fault(FaultKind.BAD_QUERY))
    first, second = await logs.post("SecurityAlert"), await logs.post("SecurityAlert")
    assert (first.status_code, first.headers["Retry-After"]) == (429, "7")
    assert second.status_code == 400
    assert (await logs.post("SecurityAlert")).status_code == 200


async def test_no_json_content_type_gets_the_documented_empty_200(logs: Logs, http: httpx.AsyncClient) -> None:
    response = await http.post(logs.url, content=b"SecurityAlert", headers={
        "Authorization": f"Bearer {logs.token}", "Content-Type": "text/plain"})
    assert (response.status_code, response.content) == (200, b"")


async def test_get_form_and_control_plane(logs: Logs, http: httpx.AsyncClient, state: EmulatorState) -> None:
    auth = {"Authorization": f"Bearer {logs.token}"}
    got = await http.get(logs.url, params={"query": "SecurityAlert | count", "timespan": "P3D"}, headers=auth)
    assert got.status_code == 200 and got.json()["tables"][0]["columns"] == [{"name": "Count", "type": "long"}]
    added = await http.post(f"{ARM}/_control/loganalytics/faults", json={"kind": "partial", "count": 1})
    assert added.status_code == 201
    assert "error" in (await logs.post("SecurityAlert")).json()
    listed = (await http.get(f"{ARM}/_control/loganalytics/queries")).json()["value"]
    assert [q["status"] for q in listed] == [200, 200]
    assert listed[0]["query"] == "SecurityAlert | count" and listed[0]["timespan"] == "P3D"
