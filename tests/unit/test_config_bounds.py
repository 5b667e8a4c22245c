"""Every duration and number in the config is bounded, with an error naming the key, through the loader and
``config validate``: nothing out of range is accepted and nothing crashes with a traceback. Two connectors that
read the same incidents and page the same SIGNL4 team are refused unless both allow it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sentinel_signl4.cli import app
from sentinel_signl4.config import ConfigError, parse_config

TENANT = "11111111-2222-3333-4444-555555555555"
SUB = "66666666-7777-8888-9999-000000000000"


def connector(name: str = "contoso", *, workspace: str = "law-1", team: str = "teamsecret123", source: str = "",
              top: str = "", tables: str = "") -> str:
    return f"""
[[connectors]]
name = "{name}"
{source}
{top}
[connectors.azure]
tenant_id = "{TENANT}"
subscription_id = "{SUB}"
resource_group = "rg"
workspace_name = "{workspace}"
[connectors.azure.credential]
client_id = "app"
client_secret = "hunter22"
[connectors.signl4]
webhook_url = "https://connect.signl4.com/webhook/{team}"
{tables}
"""


# (where the setting goes, the TOML line, the key the error must name)
OUT_OF_RANGE = [
    ("top", 'poll_interval = inf', "connectors[0] (contoso).poll_interval"),
    ("top", 'poll_interval = nan', "connectors[0] (contoso).poll_interval"),
    ("top", 'poll_interval = 1e300', "connectors[0] (contoso).poll_interval"),
    ("top", 'poll_interval = "999999999d"', "connectors[0] (contoso).poll_interval"),
    ("top", 'poll_interval = 99999999999999999999999999999', "connectors[0] (contoso).poll_interval"),
    ("top", 'poll_interval = -5', "connectors[0] (contoso).poll_interval"),
    ("top", 'poll_interval = "2d"', "connectors[0] (contoso).poll_interval"),
    ("top", 'poll_interval = "0s"', "connectors[0] (contoso).poll_interval"),
    ("top", 'full_scan_interval = "30s"', "connectors[0] (contoso).full_scan_interval"),
    ("top", 'full_scan_interval = "2d"', "connectors[0] (contoso).full_scan_interval"),
    ("top", 'full_scan_interval = inf', "connectors[0] (contoso).full_scan_interval"),
    ("tables", '[connectors.filter]\nmax_age = "31000d"', "connectors[0] (contoso).filter.max_age"),
    ("tables", '[connectors.filter]\nmax_age = "100d"', "connectors[0] (contoso).filter.max_age"),
    ("tables", '[connectors.sync]\npoll_signl4_interval = 1e300', "connectors[0] (contoso).sync.poll_signl4_interval"),
    ("tables", '[connectors.sync]\nreconcile_interval = "-1h"', "connectors[0] (contoso).sync.reconcile_interval"),
    ("tables", '[connectors.sync]\nunmatched_event_limit = "365d"',
     "connectors[0] (contoso).sync.unmatched_event_limit"),
    ("tables", '[connectors.enrichment]\nbudget = inf', "connectors[0] (contoso).enrichment.budget"),
    ("tables", '[connectors.enrichment]\ntimespan = "1e300s"', "connectors[0] (contoso).enrichment.timespan"),
    ("head", '[store]\nretention = "999999999d"', "store.retention"),
    ("head", '[server]\nheader_timeout = inf', "server.header_timeout"),
    ("head", '[server]\nbody_timeout = "1h"', "server.body_timeout"),
    ("head", '[server]\nkeep_alive_timeout = -1', "server.keep_alive_timeout"),
    ("head", '[server]\nmax_connections = 1e300', "server.max_connections"),
    ("head", '[server]\nmax_connections = 0', "server.max_connections"),
    ("head", '[server]\nmax_body_bytes = 99999999999999999999', "server.max_body_bytes"),
]


def config_with(where: str, line: str) -> str:
    if where == "head":
        return line + "\n" + connector()
    return connector(**{where: line})


@pytest.mark.parametrize(("where", "line", "key"), OUT_OF_RANGE, ids=[case[1] for case in OUT_OF_RANGE])
def test_out_of_range_value_is_an_error_naming_its_key(where: str, line: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config_with(where, line))
    assert any(problem_key == key for problem_key, _ in caught.value.problems), caught.value.problems


@pytest.mark.parametrize(("where", "line", "key"), OUT_OF_RANGE, ids=[case[1] for case in OUT_OF_RANGE])
def test_config_validate_reports_out_of_range_values_without_a_traceback(tmp_path: Path, where: str, line: str,
                                                                        key: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(config_with(where, line), encoding="utf-8")
    result = CliRunner().invoke(app, ["config", "validate", "--config", str(path)])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert f"{key}:" in result.output


def test_the_bounds_themselves_are_accepted() -> None:
    cfg = parse_config('[server]\nheader_timeout = "5m"\nmax_connections = 10000\n' + connector(
        top='poll_interval = "1d"', tables='[connectors.filter]\nmax_age = "90d"\n'
                                           '[connectors.sync]\nunmatched_event_limit = "30d"'))
    c = cfg.connectors[0]
    assert (c.poll_interval.days, c.filter.max_age.days, c.sync.unmatched_event_limit.days) == (1, 90, 30)
    assert cfg.server.max_connections == 10000


def test_two_connectors_on_one_workspace_and_one_team_are_refused_naming_both() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(connector("alpha") + connector("beta"))
    message = str(caught.value)
    assert "'alpha'" in message and "'beta'" in message and "allow_shared_team" in message
    assert "teamsecret123" not in message  # the team secret is what they share, and it is never printed


def test_workspace_names_compare_case_insensitively_and_graph_connectors_compare_by_tenant() -> None:
    with pytest.raises(ConfigError):
        parse_config(connector("alpha") + connector("beta", workspace="LAW-1"))
    graph = 'source = "graph"'
    with pytest.raises(ConfigError):
        parse_config(connector("alpha", source=graph) + connector("beta", source=graph, workspace="other"))


def test_shared_team_is_allowed_when_both_connectors_say_so() -> None:
    allow = "allow_shared_team = true"
    high = '[connectors.filter]\nseverities = ["High"]\n'
    low = '[connectors.filter]\nseverities = ["Low"]\n'
    with pytest.raises(ConfigError):  # one of them is not enough
        parse_config(connector("alpha", tables=allow) + connector("beta"))
    cfg = parse_config(connector("alpha", tables=allow + "\n" + high) + connector("beta", tables=allow + "\n" + low))
    assert [c.name for c in cfg.connectors] == ["alpha", "beta"]


def test_connectors_on_other_workspaces_or_other_teams_or_disabled_are_fine() -> None:
    parse_config(connector("alpha") + connector("beta", workspace="law-2"))
    parse_config(connector("alpha") + connector("beta", team="otherteam456"))
    parse_config(connector("alpha") + connector("beta", top="enabled = false"))
