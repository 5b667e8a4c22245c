"""``minimal_signl``: what is sent when SIGNL4 rejects the rich Signl (pure; no I/O)."""

from __future__ import annotations

from sentinel_signl4.domain import SignlRequest
from sentinel_signl4.domain.enums import SignlStatus
from sentinel_signl4.domain.minimal_signl import minimal_signl
from sentinel_signl4.domain.render import payload_size

AZURE = "https://portal.azure.com/#asset/Microsoft_Azure_Security_Insights/Incident/x"
DEFENDER = "https://security.microsoft.com/incidents/42?tid=t"


def rich(**changes: object) -> SignlRequest:
    fields: dict[str, object] = {
        "external_id": "s4s:contoso:abc", "title": "42 | Encrypted shares on FS01", "message": "x" * 5000,
        "parameters": {"Severity": "High", "Incident number": "42", "Azure portal": AZURE,
                       "Defender portal": DEFENDER, "Evidence 1": "y" * 400, "Hosts": "fs01"},
        "service": "SOC", "alerting_scenario": "multi_ack",
    }
    fields.update(changes)
    return SignlRequest(**fields)  # type: ignore[arg-type]


def test_keeps_the_correlation_headers_and_only_what_a_responder_needs() -> None:
    minimal = minimal_signl(rich(), rejected_status=413, incident_number=42, severity="High", link=AZURE)
    assert (minimal.external_id, minimal.status, minimal.service, minimal.alerting_scenario,
            minimal.source_system) == ("s4s:contoso:abc", SignlStatus.NEW, "SOC", "multi_ack", "MicrosoftSentinel")
    assert minimal.title == "42 | Encrypted shares on FS01"
    assert dict(minimal.parameters) == {"Severity": "High", "Incident number": "42", "Azure portal": AZURE}
    assert "HTTP 413" in minimal.message and "rejected" in minimal.message
    assert payload_size(minimal) < 800 < payload_size(rich())


def test_rows_without_facts_fall_back_to_the_rich_signls_tiles() -> None:
    minimal = minimal_signl(rich(), rejected_status=400)
    assert dict(minimal.parameters) == {"Severity": "High", "Incident number": "42", "Azure portal": AZURE,
                                        "Defender portal": DEFENDER}


def test_a_defender_link_is_named_so_and_a_link_too_long_to_open_is_left_out() -> None:
    minimal = minimal_signl(rich(parameters={}), rejected_status=400, incident_number=7, link=DEFENDER)
    assert dict(minimal.parameters) == {"Incident number": "7", "Defender portal": DEFENDER}
    long_link = "https://portal.azure.com/" + "a" * 2000
    assert "Azure portal" not in minimal_signl(rich(), rejected_status=400, link=long_link).parameters


def test_an_empty_or_huge_title_still_gives_a_bounded_title() -> None:
    assert minimal_signl(rich(title=""), rejected_status=400, incident_number=9).title == (
        "9 | Microsoft Sentinel incident")
    assert len(minimal_signl(rich(title="t" * 5000), rejected_status=400).title) == 200
