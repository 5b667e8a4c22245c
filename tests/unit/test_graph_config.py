"""``source = "graph"`` and ``[connectors.graph]`` in the configuration."""

from __future__ import annotations

import pytest

from sentinel_signl4.config import ConfigError, ConnectorConfig, parse_config

CONFIG = """
[[connectors]]
name = "defender"
{extra}
[connectors.azure]
tenant_id = "11111111-2222-3333-4444-555555555555"
subscription_id = "66666666-7777-8888-9999-000000000000"
resource_group = "rg"
workspace_name = "law-1"
[connectors.azure.credential]
client_id = "app"
client_secret = "s3cret-value"
[connectors.signl4]
webhook_url = "https://connect.signl4.com/webhook/teamsecret123"
{graph}
"""


def connector(extra: str = "", graph: str = "") -> ConnectorConfig:
    return parse_config(CONFIG.format(extra=extra, graph=graph), env={}).connectors[0]


def test_sentinel_is_the_default_source_and_graph_reads_incidents_by_default() -> None:
    c = connector()
    assert c.source == "sentinel"
    assert (c.graph.resource, c.graph.page_size, c.graph.requests_per_minute) == ("incidents", 50, 140)


def test_graph_source_with_alerts() -> None:
    c = connector('source = "graph"', '[connectors.graph]\nresource = "alerts"\nrequests_per_minute = 100')
    assert (c.source, c.graph.resource, c.graph.requests_per_minute) == ("graph", "alerts", 100)


@pytest.mark.parametrize(("extra", "graph", "key"), [
    ('source = "defender"', "", "connectors[0] (defender).source"),
    ("", '[connectors.graph]\nresource = "security_alerts"', "connectors[0] (defender).graph.resource"),
    ("", "[connectors.graph]\nrequests_per_minute = 151", "connectors[0] (defender).graph.requests_per_minute"),
    ("", "[connectors.graph]\npage_size = 0", "connectors[0] (defender).graph.page_size"),
    ("", '[connectors.graph]\nresouce = "alerts"', "connectors[0] (defender).graph.resouce"),
])
def test_bad_graph_settings_name_their_key(extra: str, graph: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        connector(extra, graph)
    assert key in str(info.value)
