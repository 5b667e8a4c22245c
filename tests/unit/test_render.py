"""Rendering rules: the title format, hard limits and the payload budget, X-S4 control values, templates, notes."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import replace

import pytest
from render_cases import alert, entity, incident, many_entities, oversize, unicode_incident

from sentinel_signl4.domain import Severity
from sentinel_signl4.domain.phone_view import format_phone_view
from sentinel_signl4.domain.render import (
    CORE_TILES,
    Enrichment,
    RenderContext,
    payload_size,
    render_signl,
    template_variables,
)
from sentinel_signl4.domain.signl_options import Limits, ServiceSource
from sentinel_signl4.domain.templates import SAMPLE_VARIABLES, compile_templates
from spec_validation import sentinel_errors

CTX = RenderContext(connector="contoso", display_name="Contoso Ltd", service="Microsoft Sentinel")


def with_options(ctx: RenderContext = CTX, **options: object) -> RenderContext:
    return replace(ctx, presentation=replace(ctx.presentation, **options))  # type: ignore[arg-type]


def test_title_is_number_bar_title_on_one_line() -> None:
    request = render_signl(incident(42, title="Suspicious\nsign-in\t from   Tor"), CTX)
    assert request.title == "42 | Suspicious sign-in from Tor"


def test_rendering_is_deterministic() -> None:
    inc, enrichment = oversize()
    assert render_signl(inc, CTX, enrichment) == render_signl(inc, CTX, enrichment)


@pytest.mark.parametrize("budget", [1000, 1500, 2500, 4000, 8000])
def test_the_payload_budget_holds_for_a_huge_incident_and_core_tiles_survive(budget: int) -> None:
    inc, enrichment = oversize()
    ctx = with_options(limits=Limits(payload=budget))
    request = render_signl(inc, ctx, replace(enrichment, notes=("Log Analytics: partial result",)))
    assert payload_size(request) <= budget
    for name in ("Severity", "Status", "Incident number", "Azure portal", "Note"):
        assert name in request.parameters, name
    assert request.title.startswith("4713 | Ransomware")


def test_detail_is_given_up_in_order_rows_before_entities() -> None:
    inc, enrichment = many_entities()
    full = render_signl(inc, CTX, enrichment)
    budget = payload_size(full) - 200
    squeezed = render_signl(inc, with_options(limits=Limits(payload=budget)), enrichment)
    assert payload_size(squeezed) <= budget
    assert "Evidence 3" not in squeezed.parameters and "Evidence 1" in squeezed.parameters
    assert squeezed.parameters["Hosts"] == full.parameters["Hosts"]


def test_every_cut_list_says_how_much_was_left_out() -> None:
    inc, enrichment = oversize()
    params = render_signl(inc, CTX, enrichment).parameters
    assert params["Hosts"].endswith("… and 95 more hosts")
    assert params["URLs"].endswith("more URLs")
    assert params["Products"].endswith("more products")
    assert params["Evidence 3"].endswith("… and 97 more rows")
    assert all(len(value) <= Limits().tile for value in params.values())


def test_unicode_and_control_characters_render_sanely() -> None:
    inc, enrichment = unicode_incident()
    request = render_signl(inc, CTX, enrichment)
    body = json.dumps(request.to_payload(), ensure_ascii=False)
    assert "\u202e" not in body and "\x07" not in body
    assert request.parameters["Files"] == "C:\\Users\\Public\\rechnungfdp.exe"
    assert request.parameters["Accounts"] == "jürgen.groß@contoso.de\nمحمد@contoso.ae"
    assert unicodedata.is_normalized("NFC", body)


def test_an_incident_with_nothing_but_a_title_still_renders() -> None:
    request = render_signl(incident(1, title="", description="", product_names=(), tactics=(), url="",
                                    provider_name=""), CTX,
                           Enrichment())
    assert request.title == "1 | (untitled incident)"
    assert request.message == "(untitled incident)"
    assert list(request.parameters) == ["Severity", "Status", "Customer", "Incident number", "Created (UTC)"]


def test_hidden_entity_kinds_never_leave_the_connector() -> None:
    inc, enrichment = many_entities()
    request = render_signl(inc, with_options(hidden_entity_kinds=("Ip",)), enrichment)
    assert "185.220.101" not in json.dumps(request.to_payload())


@pytest.mark.parametrize(("source", "expected"), [
    (ServiceSource.FIXED, "Microsoft Sentinel"),
    (ServiceSource.PRODUCT, "Sentinel"),
    (ServiceSource.CUSTOMER, "Contoso Ltd"),
])
def test_service_category_comes_from_the_configured_source(source: ServiceSource, expected: str) -> None:
    assert render_signl(incident(), with_options(service_from=source)).service == expected


def test_customer_service_falls_back_to_the_connector_and_fixed_may_be_empty() -> None:
    bare = RenderContext(connector="contoso")
    assert render_signl(incident(), with_options(bare, service_from=ServiceSource.CUSTOMER)).service == "contoso"
    assert render_signl(incident(), bare).service is None


def test_alerting_scenario_follows_the_severity_mapping() -> None:
    ctx = with_options(alerting_scenarios={Severity.HIGH: "multi_ack", Severity.MEDIUM: "single_ack"})
    assert render_signl(incident(severity=Severity.HIGH), ctx).to_payload()["X-S4-AlertingScenario"] == "multi_ack"
    assert "X-S4-AlertingScenario" not in render_signl(incident(severity=Severity.LOW), ctx).to_payload()


def test_enrichment_notes_are_shown_and_the_signl_is_still_complete() -> None:
    notes = ("alerts unavailable: throttled (HTTP 429)", "Log Analytics unavailable: no answer within 10 s")
    request = render_signl(incident(), CTX, Enrichment(notes=notes))
    assert request.parameters["Note"] == "; ".join(notes)
    assert request.parameters["Severity"] == "High" and request.title.startswith("4711 | ")


def test_templates_replace_message_add_tiles_and_empty_ones_remove_tiles() -> None:
    templates = compile_templates(
        title="[{{ customer }}] {{ default.title }}",
        message="{{ incident.severity }}: {{ entities.Hosts | join(', ') }}",
        parameters={"Runbook": "https://wiki/{{ incident.number }}", "Created (UTC)": "", "Status": "{{ 'x' }}"},
    )
    inc, enrichment = many_entities()
    request = render_signl(inc, with_options(templates=templates), enrichment)
    assert request.title.startswith("[Contoso Ltd] 4711 | Multi-stage attack")
    assert request.message.startswith("High: FIN-WS-000.contoso.com, FIN-WS-001.contoso.com")
    assert request.parameters["Runbook"] == "https://wiki/4711"
    assert "Created (UTC)" not in request.parameters and request.parameters["Status"] == "x"


def test_a_template_failing_on_this_incident_falls_back_and_says_so() -> None:
    templates = compile_templates(message="First row: {{ rows[0].AlertName }}",
                                  parameters={"Top host": "{{ entities.Hosts[0] }}"})
    request = render_signl(incident(), with_options(templates=templates), Enrichment())
    assert request.message.startswith("A sign-in from a Tor exit node")
    assert "Top host" not in request.parameters
    assert request.parameters["Note"] == "template failed: message, parameters.Top host"


def test_template_variables_match_the_documented_sample() -> None:
    """Templates are trial-rendered against SAMPLE_VARIABLES at load; the real variables must have its shape."""
    inc, enrichment = many_entities()
    variables = template_variables(inc, CTX, enrichment)
    assert set(variables) == set(SAMPLE_VARIABLES)
    assert set(variables["incident"]) == set(SAMPLE_VARIABLES["incident"])
    assert set(variables["alerts"][0]) == set(SAMPLE_VARIABLES["alerts"][0])
    assert variables["entities"]["Hosts"][0] == "FIN-WS-000.contoso.com"


def test_the_test_incidents_are_shaped_like_the_api_answers() -> None:
    """The rendering cases use the spec's shapes, so a rendering that works here works on real answers."""
    for _inc, enrichment in (many_entities(), unicode_incident(), oversize()):
        assert sentinel_errors({"value": list(enrichment.alerts)}, "IncidentAlertList") == []
        entities = [e for e in enrichment.entities if e["kind"] != "SecurityAlert"]
        assert sentinel_errors({"entities": entities, "metaData": []}, "IncidentEntitiesResponse") == []


def test_core_tiles_are_what_a_responder_needs_to_act() -> None:
    assert set(CORE_TILES) >= {"Severity", "Status", "Incident number", "Azure portal", "Defender portal"}


def test_phone_view_keeps_the_frame_aligned_for_wide_characters() -> None:
    inc, enrichment = unicode_incident()
    view = format_phone_view(render_signl(inc, CTX, enrichment), width=30)

    def columns(line: str) -> int:
        return sum(0 if unicodedata.combining(c) or c in "\u200d\ufe0f" else
                   2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in line)
    widths = {columns(line) for line in view.splitlines()}
    assert widths == {34}
    assert view.splitlines()[1].startswith("│ 4712 | 不審なサインイン")


def test_phone_view_lists_title_then_tiles_in_order() -> None:
    request = render_signl(incident(), CTX, Enrichment(alerts=(alert("Mimikatz"),),
                                                        entities=(entity("Host", hostName="web-01"),)))
    view = format_phone_view(request)
    positions = [view.index(text) for text in ("4711 | Multi-stage", "▸ Severity", "▸ Hosts", "▸ Azure portal")]
    assert positions == sorted(positions)
