"""Enrichment end to end: the real connector (config → bootstrap → enricher → SentinelClient and azure-monitor-query's
LogsQueryClient) against the emulators over HTTPS. A Signl carries the evidence; enrichment never costs a page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from integration_harness import Harness
from sentinel_signl4.bootstrap import Runtime, build_runtime
from sentinel_signl4.clients.http import ssl_context
from sentinel_signl4.clients.loganalytics import reset_query_gates
from sentinel_signl4.domain import external_id_for
from sentinel_signl4_emulators.common.faults import FaultRule
from sentinel_signl4_emulators.loganalytics.model import Fault, FaultKind

ALERTS_PATH = r"/incidents/[^/]+/alerts$"
ENTITIES_PATH = r"/incidents/[^/]+/entities$"


@pytest.fixture(autouse=True)
def _fresh_query_gates() -> Iterator[None]:
    reset_query_gates()
    yield
    reset_query_gates()


def params_of(harness: Harness, incident_name: str) -> dict[str, str]:
    incident = harness.incident(incident_name)
    (alert,) = harness.alerts(external_id_for("contoso", incident["id"]))
    return {p.name: p.value for p in alert.parameters}


def name_titled(harness: Harness, prefix: str) -> str:
    return next(i["name"] for i in harness.incidents() if i["properties"]["title"].startswith(prefix))


def counters(harness: Harness) -> tuple[FaultRule, FaultRule]:
    # A zero-delay "fault" on a path is a request counter at the emulator.
    return (harness.state.faults.add(FaultRule(path=ALERTS_PATH, method="POST", kind="delay", delay=0.0)),
            harness.state.faults.add(FaultRule(path=ENTITIES_PATH, method="POST", kind="delay", delay=0.0)))


async def test_a_signl_carries_entities_products_tactics_evidence_and_both_links(harness: Harness) -> None:
    runtime = await harness.runtime()
    report = await runtime.connectors["contoso"].runtime.run_once(datetime.now(UTC))
    assert report.enqueued
    signin = params_of(harness, name_titled(harness, "Multiple failed sign-in"))
    assert signin["Accounts"] == "j.doe@contoso.com"
    assert signin["IPs"] == "185.220.101.34"
    assert signin["Products"] == "Sentinel"
    assert signin["Tactics"] == "Credential Access, Initial Access"
    assert signin["Evidence 1"].startswith("Time generated: ")
    assert "Alert name: Multiple failed sign-in attempts followed by a successful sign-in" in signin["Evidence 1"]
    assert signin["Azure portal"].startswith("https://portal.azure.com/")
    assert "Note" not in signin
    malware = params_of(harness, name_titled(harness, "Malware detected"))
    assert malware["Hosts"] == "FIN-WS-042"
    assert malware["Files"] == "C:\\Users\\j.doe\\Downloads\\invoice_0423.exe"
    assert malware["Products"] == "Defender for Endpoint"
    assert malware["Defender portal"].startswith("https://security.microsoft.com/incidents/")
    assert "Product name: Defender for Endpoint" in malware["Evidence 1"]


async def test_call_economy_one_query_per_poll_and_one_alerts_and_entities_call_per_new_incident(
        harness: Harness) -> None:
    now = datetime.now(UTC)
    for n in range(7):  # more new incidents, each with alerts, on top of the demo world
        harness.state.sentinel.create_incident(harness.world.workspace, title=f"Burst {n}", severity="High",
                                               created=now - timedelta(minutes=2, seconds=n))
    alerts, entities = counters(harness)
    runtime = await harness.runtime()
    connector = runtime.connectors["contoso"].runtime
    report = await connector.run_once(now)
    new = len(report.enqueued)
    assert new >= 10
    assert (alerts.fired, entities.fired) == (new, new)
    queries = harness.state.loganalytics.records()
    assert len(queries) == 1, "one Log Analytics query for the whole poll, not one per incident"
    assert queries[0].status == 200 and queries[0].workspace_id == harness.world.workspace_id
    # An idle poll (nothing new) costs no enrichment call at all.
    await connector.run_once(now + timedelta(seconds=30))
    assert (alerts.fired, entities.fired, len(harness.state.loganalytics.records())) == (new, new, 1)


async def test_no_request_leaves_for_anything_but_the_configured_services(harness: Harness) -> None:
    """No entity is ever looked up elsewhere: every HTTP request of a poll goes to the emulator's host."""
    hosts: list[str] = []

    class Recording(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            hosts.append(request.url.host)
            return await super().handle_async_request(request)

    runtime = await build(harness, transport=Recording(verify=ssl_context(str(harness.server.ca_path))))
    report = await runtime.connectors["contoso"].runtime.run_once(datetime.now(UTC))
    assert report.enqueued and hosts
    assert set(hosts) == {"127.0.0.1"}
    assert len(harness.state.loganalytics.records()) == 1


async def build(harness: Harness, **kwargs: Any) -> Runtime:
    runtime = await build_runtime(harness.config(), **kwargs)
    harness.runtimes.append(runtime)
    return runtime


@pytest.mark.parametrize(("fault", "note"), [
    (Fault(FaultKind.BAD_QUERY), "Log Analytics unavailable: query rejected (HTTP 400)"),
    (Fault(FaultKind.THROTTLE, retry_after=120), "Log Analytics unavailable: throttled (HTTP 429)"),
    (Fault(FaultKind.PARTIAL), "Log Analytics: partial result, rows may be missing"),
])
async def test_log_analytics_failures_still_page_with_a_note(harness: Harness, fault: Fault, note: str) -> None:
    harness.state.loganalytics.inject(fault)
    runtime = await harness.runtime()
    report = await runtime.connectors["contoso"].runtime.run_once(datetime.now(UTC))
    assert report.enqueued
    for incident in report.enqueued:
        params = params_of(harness, incident.name)
        assert note in params["Note"]
        assert "Severity" in params
    signin = params_of(harness, name_titled(harness, "Multiple failed sign-in"))
    assert signin["Accounts"] == "j.doe@contoso.com"  # Sentinel evidence is still there


async def test_a_slow_log_analytics_never_holds_a_page_beyond_the_budget(harness: Harness) -> None:
    harness.state.loganalytics.latency = 3600.0  # an hour: only the budget can end this poll
    runtime = await harness.runtime(extra_tables='[connectors.enrichment]\nbudget = "1s"\n')
    report = await runtime.connectors["contoso"].runtime.run_once(datetime.now(UTC))
    assert report.enqueued
    signin = params_of(harness, name_titled(harness, "Multiple failed sign-in"))
    assert signin["Note"] == "Log Analytics unavailable: no answer within 1 s"
    assert signin["IPs"] == "185.220.101.34" and "Evidence 1" not in signin


async def test_throttled_sentinel_alert_calls_still_page(harness: Harness) -> None:
    harness.state.faults.add(FaultRule(path=ALERTS_PATH, method="POST", status=429, retry_after=120))
    runtime = await harness.runtime()
    report = await runtime.connectors["contoso"].runtime.run_once(datetime.now(UTC))
    assert report.enqueued
    signin = params_of(harness, name_titled(harness, "Multiple failed sign-in"))
    assert signin["Note"] == "alerts unavailable: throttled (HTTP 429)"
    assert signin["Accounts"] == "j.doe@contoso.com"
    # Without alert ids the default query has nothing to look for, so it is not sent.
    assert harness.state.loganalytics.records() == []


async def test_without_a_workspace_id_there_is_no_enrichment(harness: Harness) -> None:
    alerts, entities = counters(harness)
    runtime = await harness.runtime(overrides={"azure": {"workspace_id": ""}})
    report = await runtime.connectors["contoso"].runtime.run_once(datetime.now(UTC))
    assert report.enqueued
    assert (alerts.fired, entities.fired, harness.state.loganalytics.records()) == (0, 0, [])
    signin = params_of(harness, name_titled(harness, "Multiple failed sign-in"))
    assert "Accounts" not in signin and signin["Severity"] == "High"


async def test_presentation_settings_reach_the_phone(harness: Harness) -> None:
    runtime = await harness.runtime(extra_tables="""
[connectors.presentation]
service_from = "product"
hide_entity_kinds = ["Ip"]
[connectors.presentation.alerting_scenario]
High = "multi_ack"
[connectors.presentation.templates.parameters]
Runbook = "https://wiki.contoso.com/soc/{{ incident.severity | lower }}"
""")
    await runtime.connectors["contoso"].runtime.run_once(datetime.now(UTC))
    incident = harness.incident(name_titled(harness, "Multiple failed sign-in"))
    (alert,) = harness.alerts(external_id_for("contoso", incident["id"]))
    params = {p.name: p.value for p in alert.parameters}
    assert alert.category == "Sentinel"
    assert alert.required_acknowledgements == len(harness.world.users)  # multi_ack: everyone on the team
    assert params["Runbook"] == "https://wiki.contoso.com/soc/high"
    assert "IPs" not in params and "185.220.101.34" not in " ".join(params.values())


async def test_a_query_by_incident_names_needs_no_alert_calls(harness: Harness) -> None:
    """The reference's SecurityIncident → SecurityAlert join, batched: rows are matched by IncidentName."""
    alerts, entities = counters(harness)
    query = '''SecurityIncident
| where IncidentName in ({incident_names})
| summarize arg_max(TimeGenerated, *) by IncidentName
| mv-expand AlertIds to typeof(string)
| join kind=inner (SecurityAlert | summarize arg_max(TimeGenerated, *) by SystemAlertId)
    on $left.AlertIds == $right.SystemAlertId
| project IncidentName, TimeGenerated = TimeGenerated1, {columns}
| take {max_rows}'''
    runtime = await harness.runtime(extra_tables=(
        "[connectors.enrichment]\nalerts = false\n"
        'columns = ["AlertName", "AlertSeverity", "CompromisedEntity"]\n'
        f"query = '''{query}'''\n"))
    report = await runtime.connectors["contoso"].runtime.run_once(datetime.now(UTC))
    assert report.enqueued
    assert (alerts.fired, entities.fired) == (0, len(report.enqueued))
    (record,) = harness.state.loganalytics.records()
    assert record.status == 200
    signin = params_of(harness, name_titled(harness, "Multiple failed sign-in"))
    assert signin["Evidence 1"].splitlines()[0] == (
        "Alert name: Multiple failed sign-in attempts followed by a successful sign-in")
    assert "Evidence 2" in signin  # this incident has two alerts


async def test_a_spent_enrichment_budget_is_one_summary_line_per_poll_not_one_per_call(harness: Harness) -> None:
    from structlog.testing import capture_logs

    from sentinel_signl4.clients.sentinel_budget import reset_sentinel_budgets

    reset_sentinel_budgets()
    alerts, entities = counters(harness)
    runtime = await harness.runtime(overrides={"limits": {"enrichment_calls": 2, "window": "1h"}})
    with capture_logs() as logs:
        report = await runtime.connectors["contoso"].runtime.run_once(datetime.now(UTC))
    reset_sentinel_budgets()
    assert len(report.enqueued) > 1  # more incidents than the budget has calls: every one still pages
    assert alerts.fired + entities.fired == 2  # only what the budget allowed left the process
    spent = [e for e in logs if e["event"] == "enrichment_budget_spent"]
    assert len(spent) == 1 and spent[0]["calls_not_made"] == 2 * len(report.enqueued) - 2, spent
    assert not [e for e in logs if e["event"] == "enrichment_failed"]
