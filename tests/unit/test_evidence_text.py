"""The presentation building blocks: clean text, bounded lists, entities, products, tactics, evidence rows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sentinel_signl4.domain import Incident, IncidentStatus, Severity
from sentinel_signl4.domain.entities import entities_from_security_alert, entity_value, group_entities
from sentinel_signl4.domain.evidence import (
    alert_lines,
    defender_link,
    entity_tile,
    format_cell,
    format_row,
    humanise_column,
    readable_tactics,
    summarise_alerts,
)
from sentinel_signl4.domain.products import friendly_product, friendly_products
from sentinel_signl4.domain.text_fit import clean_text, clip

T0 = datetime(2026, 5, 4, 3, 12, tzinfo=UTC)


def incident(**kwargs: object) -> Incident:
    base: dict[str, object] = {
        "resource_id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/w"
                       "/providers/Microsoft.SecurityInsights/incidents/i1",
        "name": "i1", "number": 7, "title": "t", "severity": Severity.HIGH, "status": IncidentStatus.NEW,
        "created": T0, "last_modified": T0,
    }
    base.update(kwargs)
    return Incident(**base)  # type: ignore[arg-type]


# -- text -------------------------------------------------------------------------------------------------------------

def test_clean_text_drops_controls_and_bidi_overrides_but_keeps_lines() -> None:
    raw = "invoice\u202efdp.exe\x00\x1b[31m\r\nline two\n\n\n\nline three  \n"
    assert clean_text(raw) == "invoicefdp.exe[31m\nline two\n\nline three"
    assert clean_text(None) == ""


def test_clip_is_exact_and_marks_the_cut() -> None:
    assert clip("short", 10) == "short"
    cut = clip("x" * 50, 10)
    assert cut == "x" * 9 + "…" and len(cut) == 10
    assert clip("Suspicious PowerShell command line", 26) == "Suspicious PowerShell…"


@pytest.mark.parametrize("text", ["e\u0301" * 20, "👩\u200d💻" * 20, "\u2764\ufe0f" * 20])
def test_clip_never_leaves_a_dangling_combining_character(text: str) -> None:
    for limit in range(2, 30):
        cut = clip(text, limit)
        assert len(cut) <= limit
        before_ellipsis = cut.removesuffix("…")
        assert not before_ellipsis or before_ellipsis[-1] not in "\u0301\u200d\ufe0f"


# -- tactics and products ---------------------------------------------------------------------------------------------

def test_tactics_are_readable_and_deduplicated() -> None:
    tactics = ["InitialAccess", "CommandAndControl", "initialaccess", "Unknown", "Execution, Persistence", ""]
    assert readable_tactics(tactics) == ["Initial Access", "Command and Control", "Execution", "Persistence"]


def test_products_get_short_current_names_and_merge() -> None:
    names = ["Azure Security Center", "Microsoft Defender for Cloud", "microsoft defender advanced threat protection",
             "Contoso EDR", ""]
    assert friendly_products(names) == ["Defender for Cloud", "Defender for Endpoint", "Contoso EDR"]


def test_product_overrides_win_ignore_case_and_can_hide() -> None:
    overrides = {"MICROSOFT DEFENDER ADVANCED THREAT PROTECTION": "MDE", "Azure Sentinel": ""}
    assert friendly_product("Microsoft Defender Advanced Threat Protection", overrides) == "MDE"
    assert friendly_products(["Azure Sentinel", "Microsoft Defender ATP"], overrides) == ["Defender for Endpoint"]


# -- entities ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "props", "expected"), [
    ("Account", {"accountName": "alice", "upnSuffix": "contoso.com", "aadUserId": "x"}, "alice@contoso.com"),
    ("Account", {"accountName": "bob", "ntDomain": "CONTOSO"}, "CONTOSO\\bob"),
    ("Account", {"aadUserId": "0b1c", "friendlyName": "Bob"}, "0b1c"),
    ("Host", {"hostName": "web-01", "dnsDomain": "contoso.com", "azureID": "/x/vm"}, "web-01.contoso.com"),
    ("Host", {"azureID": "/subscriptions/s/providers/Microsoft.Compute/virtualMachines/vm7"}, "vm7"),
    ("Ip", {"address": "203.0.113.7", "location": {"countryCode": "DE"}}, "203.0.113.7"),
    ("Url", {"url": "https://evil.example/login"}, "https://evil.example/login"),
    ("File", {"directory": "C:\\Users\\j\\Downloads\\", "fileName": "a.exe"}, "C:\\Users\\j\\Downloads\\a.exe"),
    ("File", {"directory": "/tmp", "fileName": "x.sh"}, "/tmp/x.sh"),
    ("FileHash", {"algorithm": "SHA256", "hashValue": "ab12"}, "SHA256 ab12"),
    ("Process", {"commandLine": "powershell -enc AAA", "processId": "42"}, "powershell -enc AAA"),
    ("Process", {"processId": "42"}, "PID 42"),
    ("Mailbox", {"mailboxPrimaryAddress": "fin@contoso.com", "displayName": "Finance"}, "fin@contoso.com"),
    ("MailMessage", {"subject": "Invoice", "p1Sender": "a@evil.example"}, "Invoice (from a@evil.example)"),
    ("AzureResource", {"resourceId": "/subscriptions/s/providers/Microsoft.Compute/virtualMachines/vm1"},
     "virtualMachines/vm1"),
    ("DnsResolution", {"domainName": "x.tunnel.example"}, "x.tunnel.example"),
    ("RegistryKey", {"hive": "HKEY_LOCAL_MACHINE", "key": "SOFTWARE\\Run"}, "HKEY_LOCAL_MACHINE\\SOFTWARE\\Run"),
    ("CloudApplication", {"appName": "SharePoint Online", "appId": 1}, "SharePoint Online"),
    ("Malware", {"malwareName": "Wacatac", "category": "Trojan"}, "Wacatac"),
    ("SomethingNew", {"friendlyName": "thing"}, "thing"),
])
def test_each_entity_kind_shows_its_most_useful_attribute(kind: str, props: dict[str, object],
                                                          expected: str) -> None:
    assert entity_value(kind, props) == expected


def test_entities_are_grouped_in_a_fixed_order_and_deduplicated_ignoring_case() -> None:
    entities = [
        {"kind": "Ip", "properties": {"address": "10.0.0.1"}},
        {"kind": "Host", "properties": {"hostName": "WEB-01"}},
        {"kind": "Account", "properties": {"accountName": "alice", "upnSuffix": "contoso.com"}},
        {"kind": "Host", "properties": {"hostName": "web-01"}},
        {"kind": "SecurityAlert", "properties": {"friendlyName": "an alert is not evidence"}},
        {"kind": "Weird", "properties": {"friendlyName": "w"}},
        {"kind": "Ip", "properties": {}},
        {"kind": "", "properties": {"address": "1.1.1.1"}},
    ]
    groups = group_entities(entities)
    assert [(g.label, g.values) for g in groups] == [
        ("Accounts", ("alice@contoso.com",)), ("Hosts", ("WEB-01",)), ("IPs", ("10.0.0.1",)), ("Weird", ("w",)),
    ]
    assert [g.label for g in group_entities(entities, hidden_kinds=["ip", "account"])] == ["Hosts", "Weird"]


def test_entity_tile_says_how_many_more_there_are() -> None:
    groups = group_entities({"kind": "Host", "properties": {"hostName": f"h{n:02d}"}} for n in range(17))
    tile = entity_tile(groups[0], max_items=5, max_chars=120)
    assert tile.splitlines() == ["h00", "h01", "h02", "h03", "h04", "… and 12 more hosts"]


def test_security_alert_entities_are_read_in_the_log_analytics_spelling() -> None:
    cell = ('[{"$id":"2","Type":"account","Name":"j.doe","UPNSuffix":"contoso.com","NTDomain":"CONTOSO"},'
            '{"$id":"3","Type":"host","HostName":"fin-ws-042","DnsDomain":"contoso.com"},{"$ref":"2"},'
            '{"$id":"4","Type":"process","CommandLine":"cmd /c whoami","ImageFile":{"$ref":"5"}},'
            '{"$id":"6","Type":"cloud-application","Name":"SharePoint"}]')
    values = [(e["kind"], entity_value(e["kind"], e["properties"])) for e in entities_from_security_alert(cell)]
    assert values == [("Account", "j.doe@contoso.com"), ("Host", "fin-ws-042.contoso.com"),
                      ("Process", "cmd /c whoami"), ("CloudApplication", "SharePoint")]
    assert entities_from_security_alert("") == entities_from_security_alert("not json") == []
    assert entities_from_security_alert('{"Type": "ip"}') == []


# -- alerts, rows, links ----------------------------------------------------------------------------------------------

def alert(name: str, severity: str, product: str, when: str) -> dict[str, object]:
    return {"properties": {"alertDisplayName": name, "severity": severity, "productName": product,
                           "timeGenerated": when, "tactics": ["Execution"]}}


def test_repeated_alerts_merge_into_one_line_most_severe_first() -> None:
    alerts = [alert("Port scan", "Low", "Azure Sentinel", "2026-05-04T03:00:00Z")]
    alerts += [alert("Mimikatz", "High", "Microsoft Defender Advanced Threat Protection", "2026-05-04T03:05:00Z")] * 3
    summaries = summarise_alerts(alerts, {})
    assert [(s.name, s.count) for s in summaries] == [("Mimikatz", 3), ("Port scan", 1)]
    assert alert_lines(summaries, 1) == ["• Mimikatz ×3 (High, Defender for Endpoint)", "… and 1 more alert"]


def test_a_row_becomes_readable_key_value_lines() -> None:
    row = {"TimeGenerated": "2026-05-04T03:10:01.1234567Z", "AlertName": "Mimikatz", "ConfidenceScore": None,
           "IsIncident": False, "Count": 3.0, "ExtendedProperties": {"a": 1}, "Empty": ""}
    text = format_row(row, ("AlertName", "TimeGenerated", "ConfidenceScore", "IsIncident", "Count",
                            "ExtendedProperties", "Empty", "Missing"), 120)
    assert text.splitlines() == ["Alert name: Mimikatz", "Time generated: 2026-05-04 03:10:01",
                                 "Is incident: false", "Count: 3", 'Extended properties: {"a":1}']
    assert humanise_column("IPAddress") == "IP address"
    assert format_cell(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02 03:04:05"


def test_defender_link_comes_from_the_provider_or_the_xdr_id_and_is_absent_for_sentinel_only() -> None:
    assert defender_link(incident(provider_url="https://security.microsoft.com/incidents/9"), "https://d", "t") \
        == "https://security.microsoft.com/incidents/9"
    xdr = incident(provider_name="Microsoft XDR", raw={"properties": {"providerIncidentId": "28282"}})
    assert defender_link(xdr, "https://security.microsoft.com", "tid-1") == \
        "https://security.microsoft.com/incidents/28282?tid=tid-1"
    sentinel_only = incident(provider_name="Azure Sentinel", raw={"properties": {"providerIncidentId": "7"}})
    assert defender_link(sentinel_only, "https://security.microsoft.com", "tid-1") == ""
