"""``provision``: the script grants each connector what its source needs, and nothing else."""

from __future__ import annotations

from sentinel_signl4.config import parse_config
from sentinel_signl4.provision import provision_script

TENANT = "11111111-2222-3333-4444-555555555555"
SUB = "66666666-7777-8888-9999-000000000000"


def connector(name: str, *, source: str, extra: str = "") -> str:
    workspace = (f'subscription_id = "{SUB}"\nresource_group = "rg"\nworkspace_name = "law-{name}"\n'
                 if source == "sentinel" else "")
    return f"""
[[connectors]]
name = "{name}"
source = "{source}"
[connectors.azure]
tenant_id = "{TENANT}"
{workspace}[connectors.azure.credential]
client_id = "app-1"
client_secret = "s"
[connectors.signl4]
webhook_url = "https://connect.signl4.com/webhook/teamsecret123"
[connectors.sync]
owner_map = {{ "a@contoso.com" = "00000000-0000-0000-0000-000000000001" }}
{extra}"""


def test_a_graph_connector_gets_the_graph_permission_and_no_sentinel_role() -> None:
    script = provision_script(parse_config(connector("xdr", source="graph")))
    assert "SecurityIncident.ReadWrite.All" in script and "admin-consent" in script
    assert "Microsoft Sentinel Responder" not in script and "SecurityAlert" not in script


def test_graph_alerts_need_the_alert_permission() -> None:
    alerts = connector("xdr", source="graph", extra='[connectors.graph]\nresource = "alerts"\n')
    script = provision_script(parse_config(alerts))
    assert "SecurityAlert.ReadWrite.All" in script and "SecurityIncident" not in script


def test_a_sentinel_connector_gets_the_workspace_role_only() -> None:
    script = provision_script(parse_config(connector("ws", source="sentinel")))
    assert "Microsoft Sentinel Responder" in script and "/workspaces/law-ws" in script
    assert "Security" not in script.replace("SecurityInsights", "") and "User.Read.All" not in script
