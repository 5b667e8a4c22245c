"""Configuration: every problem names the file, the key and the reason; secrets are never printed."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from sentinel_signl4.config import ConfigError, load_config, parse_config

TENANT = "11111111-2222-3333-4444-555555555555"
SUB = "66666666-7777-8888-9999-000000000000"

MINIMAL = f"""
[[connectors]]
name = "contoso"
[connectors.azure]
tenant_id = "{TENANT}"
subscription_id = "{SUB}"
resource_group = "rg"
workspace_name = "law-1"
[connectors.azure.credential]
client_id = "app"
client_secret = "${{SECRET}}"
[connectors.signl4]
webhook_url = "https://connect.signl4.com/webhook/teamsecret123"
"""


def test_minimal_config_gets_the_documented_defaults() -> None:
    cfg = parse_config(MINIMAL, env={"SECRET": "hunter22"})
    c = cfg.connectors[0]
    assert c.poll_interval.total_seconds() == 30
    assert [s.value for s in c.filter.statuses] == ["New"]
    assert [s.value for s in c.filter.severities] == ["High", "Medium", "Low", "Informational"]
    assert c.filter.max_age.total_seconds() == 24 * 3600
    assert c.sync.tag == "SIGNL4" and c.sync.skip_already_tagged
    assert c.azure.api_version == "2025-09-01"
    assert cfg.store.url.startswith("sqlite:///")
    assert c.azure.resolved_endpoints.resource_manager == "https://management.azure.com"


def test_env_interpolation_and_missing_variable_names_the_key() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(MINIMAL, source="prod.toml", env={})
    assert "prod.toml: connectors[0].azure.credential.client_secret: environment variable SECRET is not set" in str(
        info.value)


def test_every_problem_is_reported_with_file_key_and_reason() -> None:
    bad = MINIMAL.replace(f'tenant_id = "{TENANT}"', 'tenant_id = "not-a-guid"').replace(
        '[connectors.signl4]', '[connectors.filter]\nseverities = ["Critical"]\nmax_age = "soon"\n[connectors.signl4]')
    with pytest.raises(ConfigError) as info:
        parse_config(bad, source="c.toml", env={"SECRET": "x"})
    text = str(info.value)
    assert "c.toml: connectors[0] (contoso).azure.tenant_id: must be a GUID" in text
    assert "c.toml: connectors[0] (contoso).filter.severities[0]: must be one of" in text
    assert "c.toml: connectors[0] (contoso).filter.max_age: 'soon' is not a duration" in text


def test_unknown_keys_are_rejected_as_probable_typos() -> None:
    with pytest.raises(ConfigError, match=r"connectors\[0\] \(contoso\)\.signl4\.webhok: unknown setting"):
        parse_config(MINIMAL + 'webhok = "x"\n', env={"SECRET": "x"})


def test_invalid_close_classification_pair_lists_the_valid_pairs() -> None:
    text = MINIMAL + '[connectors.sync]\nclose_classification = "TruePositive"\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, env={"SECRET": "x"})
    message = str(info.value)
    assert "TruePositive + SuspiciousActivity" in message
    assert "FalsePositive + IncorrectAlertLogic | InaccurateData" in message


def test_valid_close_pair_is_accepted() -> None:
    text = MINIMAL + ('[connectors.sync]\nclose_classification = "FalsePositive"\n'
                      'close_classification_reason = "InaccurateData"\n')
    assert parse_config(text, env={"SECRET": "x"}).connectors[0].sync.close_classification.value == "FalsePositive"


def test_secrets_are_masked_in_reprs_and_collected_for_redaction() -> None:
    cfg = parse_config(MINIMAL, env={"SECRET": "hunter22"})
    assert "hunter22" not in repr(cfg) and "teamsecret123" not in repr(cfg)
    assert {"hunter22", "teamsecret123"} <= cfg.secrets()


def test_duplicate_connector_names_are_rejected() -> None:
    block = MINIMAL.split("[[connectors]]", 1)[1]
    with pytest.raises(ConfigError, match="used twice"):
        parse_config(MINIMAL + "[[connectors]]" + block, env={"SECRET": "x"})


def test_endpoint_override_keeps_the_clouds_token_audience_like_a_private_endpoint() -> None:
    text = MINIMAL.replace("[connectors.azure.credential]",
                           '[connectors.azure.endpoints]\nresource_manager = "https://127.0.0.1:8443"\n'
                           "[connectors.azure.credential]")
    ep = parse_config(text, env={"SECRET": "x"}).connectors[0].azure.resolved_endpoints
    assert ep.resource_manager == "https://127.0.0.1:8443"
    assert ep.scope("resource_manager") == "https://management.azure.com/.default"
    assert ep.authority_host == "https://login.microsoftonline.com"


def test_us_government_cloud_endpoints() -> None:
    text = MINIMAL.replace('workspace_name = "law-1"', 'workspace_name = "law-1"\ncloud = "AzureUSGovernment"')
    ep = parse_config(text, env={"SECRET": "x"}).connectors[0].azure.resolved_endpoints
    assert ep.authority_host == "https://login.microsoftonline.us"
    assert ep.scope("resource_manager") == "https://management.usgovcloudapi.net/.default"


def test_the_shipped_example_config_is_valid(tmp_path: Path) -> None:
    text = resources.files("sentinel_signl4").joinpath("example-config.toml").read_text(encoding="utf-8")
    env = {
        "CONTOSO_TENANT_ID": TENANT, "CONTOSO_SUBSCRIPTION_ID": SUB, "CONTOSO_CLIENT_ID": "app",
        "CONTOSO_CLIENT_SECRET": "s", "CONTOSO_SIGNL4_WEBHOOK_URL": "https://connect.signl4.com/webhook/abcd1234",
        "CONTOSO_SIGNL4_API_KEY": "key", "CONTOSO_WEBHOOK_TOKEN": "tok-0123456789abcdef",
    }
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    cfg = load_config(path, env=env)
    assert cfg.connectors[0].name == "contoso"


def test_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "missing.toml")


def test_broken_toml_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse_config("[[connectors]\nname=", source="x.toml")


GRAPH_ONLY = f"""
[[connectors]]
name = "fabrikam"
source = "graph"
[connectors.azure]
tenant_id = "{TENANT}"
[connectors.azure.credential]
client_id = "app"
client_secret = "s3cret-value"
[connectors.signl4]
webhook_url = "https://connect.signl4.com/webhook/teamsecret123"
"""


def test_a_graph_connector_needs_no_workspace_path() -> None:
    c = parse_config(GRAPH_ONLY).connectors[0]
    assert c.source == "graph"
    assert (c.azure.subscription_id, c.azure.resource_group, c.azure.workspace_name) == ("", "", "")
    assert (c.graph.resource, c.graph.requests_per_minute) == ("incidents", 140)


def test_a_sentinel_connector_names_each_missing_part_of_the_workspace_path() -> None:
    text = MINIMAL.replace(f'subscription_id = "{SUB}"\n', "").replace('workspace_name = "law-1"\n', "")
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="c.toml", env={"SECRET": "x"})
    problems = dict(info.value.problems)
    assert set(problems) == {"connectors[0] (contoso).azure.subscription_id",
                             "connectors[0] (contoso).azure.workspace_name"}
    assert all('required for source = "sentinel"' in reason for reason in problems.values())


def test_source_sentinel_spelled_out_is_the_default_and_still_checked() -> None:
    text = GRAPH_ONLY.replace('source = "graph"', 'source = "sentinel"')
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="c.toml")
    assert {key.rsplit(".", 1)[-1] for key, _ in info.value.problems} == {
        "subscription_id", "resource_group", "workspace_name"}


def test_a_graph_connector_still_validates_what_it_is_given() -> None:
    text = GRAPH_ONLY.replace(f'tenant_id = "{TENANT}"', f'tenant_id = "{TENANT}"\nsubscription_id = "nope"')
    text += "[connectors.graph]\nrequests_per_minute = 151\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="c.toml")
    message = str(info.value)
    assert len(info.value.problems) == 2, message
    assert "connectors[0] (fabrikam).azure.subscription_id: must be a GUID" in message
    assert "connectors[0] (fabrikam).graph.requests_per_minute" in message


def test_unknown_source_is_rejected_with_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"source: must be one of: 'sentinel' or 'graph'"):
        parse_config(GRAPH_ONLY.replace('source = "graph"', 'source = "defender"'))


def test_team_secret_excludes_status_mapping_query_parameters() -> None:
    text = MINIMAL.replace("webhook/teamsecret123", "webhook/teamsecret123?ExtIDParam=id&ResolvedStatus=UP")
    cfg = parse_config(text, env={"SECRET": "x"})
    assert cfg.connectors[0].signl4.team_secret == "teamsecret123"
    assert "teamsecret123" in cfg.secrets()  # so the redactor masks the bare secret too


def test_webhook_url_without_a_secret_segment_is_a_config_error() -> None:
    text = MINIMAL.replace("https://connect.signl4.com/webhook/teamsecret123", "https://connect.signl4.com/hooks/x")
    with pytest.raises(ConfigError, match=r"signl4\.webhook_url: must be the team's https webhook URL"):
        parse_config(text, env={"SECRET": "x"})
