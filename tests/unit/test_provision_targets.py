"""``provision`` reads a configuration for its ids and features only: secrets are never needed, every missing value
is named in one report, and the role follows the configured features."""

from __future__ import annotations

import pytest

from sentinel_signl4.clients.azure_actions import COMMENTS_WRITE, INCIDENTS_READ, QUERY_READ, table_read_action
from sentinel_signl4.provision.role import GRAPH_ALERTS, GRAPH_INCIDENTS, GRAPH_USERS, graph_permissions, role_of
from sentinel_signl4.provision.targets import IdOverrides, ProvisionInputError, parse_targets

TENANT = "11111111-2222-3333-4444-555555555555"
SUB = "66666666-7777-8888-9999-000000000000"
WS_ID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"

# Every secret is an unset ${ENV} reference: provisioning must not need a single one of them.
SECRETS = '''
[connectors.azure.credential]
client_id = "${{APP_CLIENT_ID}}"
client_secret = "${{APP_SECRET}}"
[connectors.signl4]
webhook_url = "${{S4_WEBHOOK_URL}}"
api_key = "${{S4_API_KEY}}"
[connectors.sync]
webhook_token = "${{S4_TOKEN}}"
{sync}
'''


def connector(name: str = "contoso", *, azure: str = "", sync: str = "", extra: str = "",
              source: str = "sentinel") -> str:
    workspace = (f'subscription_id = "{SUB}"\nresource_group = "rg-sec"\nworkspace_name = "law-{name}"\n'
                 f'workspace_id = "{WS_ID}"\n' if source == "sentinel" else "")
    return (f'[[connectors]]\nname = "{name}"\nsource = "{source}"\n[connectors.azure]\ntenant_id = "{TENANT}"\n'
            f"{azure or workspace}" + SECRETS.format(sync=sync) + extra)


def test_a_config_whose_every_secret_is_unset_is_enough() -> None:
    (target,) = parse_targets(connector(), env={})
    assert target.client_id is None  # ${APP_CLIENT_ID} unset: the app is to be created
    role = role_of(target)
    assert role is not None
    assert role.assign_at.endswith("/providers/Microsoft.OperationalInsights/workspaces/law-contoso")
    assert role.assignable_scopes == (f"/subscriptions/{SUB}/resourceGroups/rg-sec",)


def test_every_missing_id_of_every_connector_is_reported_at_once() -> None:
    text = (connector("one", azure='workspace_name = "${WS_NAME}"\n')
            + connector("two", azure=f'subscription_id = "{SUB}"\nworkspace_id = "not-a-guid"\n'))
    with pytest.raises(ProvisionInputError) as caught:
        parse_targets(text, env={})
    problems = "\n".join(caught.value.problems)
    for expected in ("[0] (one).azure.subscription_id: required, not set (or pass --subscription)",
                     "[0] (one).azure.resource_group: required",
                     "[0] (one).azure.workspace_name: environment variable WS_NAME is not set (or pass "
                     "--workspace-name)",
                     "[1] (two).azure.resource_group: required", "[1] (two).azure.workspace_name: required",
                     "[1] (two).azure.workspace_id: must be the Log Analytics workspace GUID"):
        assert expected in problems
    assert len(caught.value.problems) == 6
    assert "SECRET" not in problems and "S4_" not in problems


def test_flags_supply_the_ids_the_config_lacks() -> None:
    text = connector(azure="")
    text = text.replace(f'subscription_id = "{SUB}"\nresource_group = "rg-sec"\n', "")
    with pytest.raises(ProvisionInputError):
        parse_targets(text, env={})
    (target,) = parse_targets(text, env={}, overrides=IdOverrides(subscription_id=SUB, resource_group="rg-flag"))
    assert target.workspace is not None and target.workspace.resource_group == "rg-flag"


def test_enrichment_off_means_no_query_action_and_sync_off_no_comment_action() -> None:
    quiet = connector(extra="[connectors.enrichment]\nenabled = false\n").replace(
        'webhook_token = "${S4_TOKEN}"', "").replace('api_key = "${S4_API_KEY}"', "")
    (target,) = parse_targets(quiet, env={})
    role = role_of(target)
    assert role is not None
    assert not any(a.startswith("Microsoft.OperationalInsights/") for a in role.actions)
    assert COMMENTS_WRITE not in role.actions and INCIDENTS_READ in role.actions


def test_enrichment_reads_only_the_tables_of_the_configured_query() -> None:
    (target,) = parse_targets(connector(), env={})
    role = role_of(target)
    assert role is not None
    reads = [a for a in role.actions if a.startswith("Microsoft.OperationalInsights/workspaces/query/")]
    assert reads == [table_read_action("SecurityAlert"), QUERY_READ]


def test_a_graph_connector_gets_graph_permissions_and_no_azure_role() -> None:
    owners = 'owner_map = { "a@contoso.com" = "' + TENANT + '" }'
    (incidents,) = parse_targets(connector("xdr", source="graph", sync=owners), env={})
    assert role_of(incidents) is None
    assert graph_permissions(incidents) == (GRAPH_INCIDENTS,)
    (alerts,) = parse_targets(connector("xdr", source="graph", sync=owners,
                                        extra='[connectors.graph]\nresource = "alerts"\n'), env={})
    assert graph_permissions(alerts) == (GRAPH_ALERTS,)


def test_owner_lookup_without_an_owner_map_needs_user_read_all() -> None:
    (mapped,) = parse_targets(connector(sync='owner_map = { "a@contoso.com" = "' + TENANT + '" }'), env={})
    (looked_up,) = parse_targets(connector(), env={})
    assert GRAPH_USERS not in graph_permissions(mapped)
    assert graph_permissions(looked_up) == (GRAPH_USERS,)


def test_a_managed_identity_needs_its_client_id() -> None:
    text = connector().replace('client_secret = "${APP_SECRET}"', 'kind = "managed_identity"')
    with pytest.raises(ProvisionInputError, match="client_id: environment variable APP_CLIENT_ID is not set"):
        parse_targets(text, env={})
    (target,) = parse_targets(text, env={"APP_CLIENT_ID": "mi-client"})
    assert (target.identity, target.client_id) == ("managed_identity", "mi-client")
