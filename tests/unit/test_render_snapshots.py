"""Snapshots of rendered Signls: the phone view and the exact JSON body, for realistic incidents.

A change to the rendering fails here with a unified diff of what a responder would now see. When the change is
intended, regenerate with ``UPDATE_SNAPSHOTS=1 pytest tests/unit/test_render_snapshots.py`` and review the diff
of ``tests/unit/snapshots/`` like code.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

import pytest
from render_cases import incident, many_entities, oversize, unicode_incident

from sentinel_signl4.domain import Severity
from sentinel_signl4.domain.phone_view import format_phone_view
from sentinel_signl4.domain.render import Enrichment, RenderContext, payload_size, render_signl
from sentinel_signl4.domain.signl import SignlRequest
from sentinel_signl4.domain.signl_options import Limits, PresentationOptions, ServiceSource
from sentinel_signl4.domain.templates import compile_templates

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"


def snapshot_text(request: SignlRequest) -> str:
    body = json.dumps(request.to_payload(), indent=2, ensure_ascii=False)
    return f"{format_phone_view(request)}\n\n--- JSON body ({payload_size(request)} bytes) ---\n{body}\n"


def assert_snapshot(name: str, actual: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"no snapshot {path.name}; create it with UPDATE_SNAPSHOTS=1 and review it")
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                                            f"snapshots/{path.name}", "rendered now"))
        pytest.fail(f"the rendering of {name!r} changed (UPDATE_SNAPSHOTS=1 to accept):\n{diff}", pytrace=False)


CONTOSO = RenderContext(connector="contoso", display_name="Contoso Ltd", service="Microsoft Sentinel",
                        presentation=PresentationOptions(tenant_id="7a2c1c5e-0f0b-4d3e-9a51-3c1c2f7b9e10",
                                                         row_columns=("TimeGenerated", "AlertName", "AlertSeverity",
                                                                      "ProductName", "CompromisedEntity")))


def test_snapshot_many_entities() -> None:
    inc, enrichment = many_entities()
    assert_snapshot("many_entities", snapshot_text(render_signl(inc, CONTOSO, enrichment)))


def test_snapshot_no_entities_and_no_enrichment() -> None:
    inc = incident(4714, description="", product_names=(), tactics=(), title="Test alert - connector health check",
                   severity=Severity.LOW, provider_name="Azure Sentinel")
    assert_snapshot("no_entities", snapshot_text(render_signl(inc, CONTOSO, None)))


def test_snapshot_unicode() -> None:
    inc, enrichment = unicode_incident()
    assert_snapshot("unicode", snapshot_text(render_signl(inc, CONTOSO, enrichment)))


def test_snapshot_oversize_fits_the_payload_budget() -> None:
    inc, enrichment = oversize()
    request = render_signl(inc, CONTOSO, enrichment)
    assert payload_size(request) <= Limits().payload
    assert_snapshot("oversize", snapshot_text(request))


def test_snapshot_enrichment_failed_xdr_incident_with_templates() -> None:
    inc = incident(4715, provider_name="Microsoft XDR", severity=Severity.HIGH,
                   provider_url="https://security.microsoft.com/incidents/28282?tid=7a2c1c5e",
                   product_names=("Microsoft Defender for Office 365",), tactics=("InitialAccess",))
    templates = compile_templates(
        message="{{ default.message }}\n\nRunbook: https://wiki.contoso.com/soc/{{ incident.severity | lower }}",
        parameters={"On-call hint": "{% if 'Initial Access' in tactics %}Reset the user's sessions first{% endif %}",
                    "Created (UTC)": ""},
    )
    ctx = RenderContext(connector="contoso", display_name="Contoso Ltd", presentation=PresentationOptions(
        service_from=ServiceSource.PRODUCT, alerting_scenarios={Severity.HIGH: "multi_ack"}, templates=templates))
    enrichment = Enrichment(notes=("alerts unavailable: throttled (HTTP 429)",
                                   "Log Analytics unavailable: no answer within 10 s"))
    assert_snapshot("enrichment_failed_templates", snapshot_text(render_signl(inc, ctx, enrichment)))
