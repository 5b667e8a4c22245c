"""Pure domain: filtering with skip reasons, stable external ids, rendering bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sentinel_signl4.domain import (
    Incident,
    IncidentFilter,
    IncidentStatus,
    Severity,
    SignlRequest,
    SignlStatus,
    SkipReason,
    external_id_for,
    skip_reason,
)
from sentinel_signl4.domain.render import RenderContext, render_signl

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
RID = ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/ws/providers/"
       "Microsoft.SecurityInsights/incidents/abc")


def incident(**kw: object) -> Incident:
    base: dict[str, object] = dict(resource_id=RID, name="abc", number=42, title="Mass download",
                                   severity=Severity.HIGH, status=IncidentStatus.NEW,
                                   created=NOW - timedelta(hours=1), last_modified=NOW)
    base.update(kw)
    return Incident(**base)  # type: ignore[arg-type]


def test_skip_reasons_name_the_failing_criterion() -> None:
    flt = IncidentFilter(severities=frozenset({Severity.HIGH, Severity.MEDIUM}))
    assert skip_reason(incident(), flt, NOW) is None
    assert skip_reason(incident(status=IncidentStatus.ACTIVE), flt, NOW) is SkipReason.STATUS
    assert skip_reason(incident(severity=Severity.LOW), flt, NOW) is SkipReason.SEVERITY
    assert skip_reason(incident(created=NOW - timedelta(hours=25)), flt, NOW) is SkipReason.AGE
    assert skip_reason(incident(created=NOW - timedelta(hours=24)), flt, NOW) is None


def test_a_merged_incident_is_never_paged_whatever_the_filter_selects() -> None:
    every_status = IncidentFilter(statuses=frozenset(IncidentStatus))
    assert skip_reason(incident(status=IncidentStatus.CLOSED, merged=True), every_status, NOW) is SkipReason.MERGED
    assert skip_reason(incident(status=IncidentStatus.ACTIVE, merged=True), every_status, NOW) is SkipReason.MERGED


def test_external_id_is_stable_case_insensitive_and_distinct_across_workspaces_and_connectors() -> None:
    a = external_id_for("contoso", RID)
    assert a == external_id_for("contoso", RID.upper().replace("INCIDENTS/ABC", "incidents/abc").lower())
    assert a != external_id_for("fabrikam", RID)
    assert a != external_id_for("contoso", RID.replace("workspaces/ws", "workspaces/ws2"))
    assert external_id_for("contoso", RID, 2) == a + "-2"


def test_title_is_number_pipe_title_and_parameters_carry_the_essentials() -> None:
    req = render_signl(incident(url="https://portal/x"), RenderContext(connector="contoso", display_name="Contoso"))
    assert req.title == "42 | Mass download"
    assert req.parameters["Severity"] == "High"
    assert req.parameters["Status"] == "New"
    assert req.parameters["Customer"] == "Contoso"
    assert req.parameters["Azure portal"] == "https://portal/x"
    body = req.to_payload()
    assert body["X-S4-ExternalID"] == external_id_for("contoso", RID)
    assert body["X-S4-Status"] == "new" and body["X-S4-SourceSystem"] == "MicrosoftSentinel"


def test_oversized_title_is_truncated_deterministically() -> None:
    req = render_signl(incident(title="x" * 1000), RenderContext(connector="c"))
    assert len(req.title) <= 200 and req.title.endswith("…")
    assert req == render_signl(incident(title="x" * 1000), RenderContext(connector="c"))


def test_signl_request_record_round_trip_is_exact() -> None:
    req = render_signl(incident(), RenderContext(connector="c", service="Security"))
    assert SignlRequest.from_record(req.to_record()) == req


def test_resolve_payload_carries_only_correlation_fields() -> None:
    body = SignlRequest(external_id="e1", status=SignlStatus.RESOLVED).to_payload()
    assert body == {"X-S4-ExternalID": "e1", "X-S4-Status": "resolved", "X-S4-SourceSystem": "MicrosoftSentinel"}
