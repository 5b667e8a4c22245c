"""Which tables a KQL query reads: the table-level read actions of the connector's role come from here."""

from __future__ import annotations

import pytest

from sentinel_signl4.config.signl_content import DEFAULT_QUERY
from sentinel_signl4.domain.kql_tables import KqlTablesError, tables_read_by


def test_the_default_enrichment_query_reads_security_alert_only() -> None:
    assert tables_read_by(DEFAULT_QUERY) == {"SecurityAlert"}


@pytest.mark.parametrize(("kql", "tables"), [
    ("SecurityIncident | join kind=inner (SecurityAlert | take 1) on $left.A == $right.B",
     {"SecurityIncident", "SecurityAlert"}),
    ("let recent = SigninLogs | where T > ago(1d); let n = 5; recent | take n", {"SigninLogs"}),
    ("union isfuzzy=true withsource=Src SecurityEvent, (WindowsEvent | take 1)", {"SecurityEvent", "WindowsEvent"}),
    ("AuditLogs | union Heartbeat, Syslog", {"AuditLogs", "Heartbeat", "Syslog"}),
    ("SecurityAlert | lookup kind=leftouter IdentityInfo on AccountUPN", {"SecurityAlert", "IdentityInfo"}),
    ("SecurityAlert | where Id in (AlertEvidence | project Id) and (Score > 1)", {"SecurityAlert", "AlertEvidence"}),
    ("SecurityAlert | extend n = toscalar(Usage | count)", {"SecurityAlert", "Usage"}),
    ('table("Custom_CL") | join hint.strategy=shuffle (OfficeActivity) on Id', {"Custom_CL", "OfficeActivity"}),
    ("SecurityAlert | where Text has 'Heartbeat | x' // Syslog in a comment\n| take 1", {"SecurityAlert"}),
    ("print x = 1", set()),
])
def test_tables_are_found_where_tabular_expressions_start(kql: str, tables: set[str]) -> None:
    assert tables_read_by(kql) == tables


@pytest.mark.parametrize("kql", [
    'search "evil.exe"', 'find "x"', "union Security*", 'workspace("other").SecurityAlert | take 1',
    'SecurityAlert | join (app("x").requests) on Id',
])
def test_queries_whose_tables_cannot_be_known_are_refused(kql: str) -> None:
    with pytest.raises(KqlTablesError):
        tables_read_by(kql)


def test_custom_log_tables_are_granted_together_as_microsoft_documents() -> None:
    from sentinel_signl4.clients.azure_actions import query_table_actions

    actions = list(query_table_actions({"kql": "Firewall_CL | join (SecurityAlert) on Id | union Proxy_CL"}))
    assert actions == ["Microsoft.OperationalInsights/workspaces/query/SecurityAlert/read",
                       "Microsoft.OperationalInsights/workspaces/query/Tables.Custom/read"]
