"""Enrichment and presentation settings: validated at load (errors name the key), templates sandboxed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from sentinel_signl4.config import ConfigError, parse_config
from sentinel_signl4.config.signl_content import DEFAULT_QUERY, EnrichmentConfig, PresentationConfig
from sentinel_signl4.domain import Severity
from sentinel_signl4.domain.signl_options import ServiceSource
from sentinel_signl4.domain.templates import TemplateProblem, compile_templates

BASE = """
[[connectors]]
name = "contoso"
[connectors.azure]
tenant_id = "11111111-1111-1111-1111-111111111111"
subscription_id = "22222222-2222-2222-2222-222222222222"
resource_group = "rg"
workspace_name = "law-sentinel"
workspace_id = "33333333-3333-3333-3333-333333333333"
[connectors.azure.credential]
client_id = "44444444-4444-4444-4444-444444444444"
client_secret = "a-client-secret-value"
[connectors.signl4]
webhook_url = "https://connect.signl4.com/webhook/teamsecret"
"""


def problems(extra: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + extra, env={})
    return caught.value.problems


def test_defaults_need_no_configuration() -> None:
    connector = parse_config(BASE, env={}).connectors[0]
    assert connector.enrichment.query == DEFAULT_QUERY
    assert connector.enrichment.budget == timedelta(seconds=10)
    assert connector.presentation.service_from is ServiceSource.FIXED
    assert connector.presentation.to_options().templates.empty


def test_a_template_that_does_not_compile_is_reported_with_its_key() -> None:
    found = problems('[connectors.presentation.templates]\nmessage = "{% if %}"\n')
    assert found[0][0] == "connectors[0] (contoso).presentation.templates.message"
    assert "does not compile" in found[0][1]


def test_a_template_naming_an_unknown_variable_is_reported_at_load_with_the_parameter() -> None:
    found = problems('[connectors.presentation.templates.parameters]\nRunbook = "{{ incident.nmber }}"\n')
    assert found[0][0] == "connectors[0] (contoso).presentation.templates.parameters"
    assert found[0][1].startswith("Runbook: ") and "nmber" in found[0][1]


@pytest.mark.parametrize("source", [
    "{{ incident.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ links.update({'azure': 'x'}) }}",
    "{% for x in range(10**9) %}{% endfor %}",
])
def test_the_sandbox_rejects_unsafe_templates_at_load(source: str) -> None:
    with pytest.raises(TemplateProblem) as caught:
        compile_templates(title=source)
    assert caught.value.key == "title"


@pytest.mark.parametrize("name", ["Title", "message", "X-S4-Status", "x-s4-service", "Body", "Alert.Details"])
def test_parameter_names_signl4_would_misread_are_refused(name: str) -> None:
    found = problems(f'[connectors.presentation.templates.parameters]\n"{name}" = "x"\n')
    assert found[0][0].endswith("presentation.templates.parameters")


def test_query_placeholders_and_columns_are_checked() -> None:
    assert "unknown placeholder {ids}" in problems(
        '[connectors.enrichment]\nquery = "SecurityAlert | where SystemAlertId in ({ids})"\n')[0][1]
    assert "{system_alert_ids} or {incident_names}" in problems(
        '[connectors.enrichment]\nquery = "SecurityAlert | take 10"\n')[0][1]
    assert "not a column name" in problems('[connectors.enrichment]\ncolumns = ["AlertName", "x; drop"]\n')[0][1]
    # KQL braces that are not placeholders are left alone: dynamic({...}) literals are fine.
    EnrichmentConfig(query='let d = dynamic({"a": 1}); SecurityAlert | where SystemAlertId in ({system_alert_ids})')


def test_presentation_keys_are_validated() -> None:
    assert "unknown entity kind 'Frob'" in problems('[connectors.presentation]\nhide_entity_kinds = ["Frob"]\n')[0][1]
    found = problems('[connectors.presentation.alerting_scenario]\nCritical = "multi_ack"\n')
    assert any("High" in reason for _, reason in found)
    assert problems('[connectors.presentation.limits]\npayload_bytes = 10\n')[0][0].endswith("limits.payload_bytes")


def test_settings_become_render_options() -> None:
    presentation = PresentationConfig.model_validate({
        "service_from": "customer", "alerting_scenario": {"High": "multi_ack"},
        "hide_entity_kinds": ["ip"], "product_names": {"Azure Sentinel": "Sentinel SIEM"},
        "limits": {"rows": 1, "payload_bytes": 4000},
        "templates": {"parameters": {"Runbook": "https://wiki/{{ incident.number }}"}},
    })
    options = presentation.to_options(tenant_id="t", row_columns=("AlertName",))
    assert options.alerting_scenarios == {Severity.HIGH: "multi_ack"}
    assert options.hidden_entity_kinds == ("Ip",)
    assert options.limits.rows == 1 and options.limits.payload == 4000
    assert [name for name, _ in options.templates.parameters] == ["Runbook"]
    assert options.row_columns == ("AlertName",) and options.tenant_id == "t"


def test_the_commented_example_sections_are_valid_configuration() -> None:
    """The example config documents every key of enrichment and presentation; uncommented, it must load."""
    text = (Path(__file__).resolve().parents[2] / "src/sentinel_signl4/example-config.toml").read_text()
    block = text[text.index("# [connectors.enrichment]"):]
    lines = [line[2:] if line.startswith("# ") else "" for line in block.splitlines()
             if not line.startswith("# Presentation:")]
    connector = parse_config(BASE + "\n".join(lines), env={}).connectors[0]
    assert connector.presentation.alerting_scenario == {Severity.HIGH: "multi_ack"}
    assert connector.enrichment.timespan == timedelta(days=2)
    assert "Runbook" in connector.presentation.templates.parameters
