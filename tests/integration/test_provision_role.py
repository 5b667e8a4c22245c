"""The custom role holds exactly the actions the connector's calls declare: nothing missing, nothing more.

Each test runs the real connector (``check``, then polls with enrichment, then two-way sync driven by SIGNL4's
outbound webhooks) against the emulators while recording the Azure actions its client calls declare, and compares
that record with the role ``provision`` derives from the same configuration text, read without its secrets.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from integration_harness import Harness
from sentinel_signl4.bootstrap import build_runtime
from sentinel_signl4.checks import run_checks
from sentinel_signl4.clients.azure_actions import (
    COMMENTS_WRITE,
    INCIDENTS_WRITE,
    QUERY_READ,
    recording_actions,
    table_read_action,
)
from sentinel_signl4.clients.loganalytics import reset_query_gates
from sentinel_signl4.config import parse_config
from sentinel_signl4.provision.role import role_of
from sentinel_signl4.provision.targets import parse_targets
from sentinel_signl4.web.app import build_web_app

TOKEN = "provision-test-webhook-token-0123456789"

JOIN_QUERY = '''SecurityIncident
| where IncidentName in ({incident_names})
| summarize arg_max(TimeGenerated, *) by IncidentName
| mv-expand AlertIds to typeof(string)
| join kind=inner (SecurityAlert | summarize arg_max(TimeGenerated, *) by SystemAlertId)
    on $left.AlertIds == $right.SystemAlertId
| project IncidentName, TimeGenerated = TimeGenerated1, {columns}
| take {max_rows}'''


@pytest.fixture(autouse=True)
def _fresh_query_gates() -> Iterator[None]:
    reset_query_gates()
    yield
    reset_query_gates()


async def run_everything(harness: Harness, *, sync_back: bool = True, source: str = "sentinel",
                         extra_tables: str = "") -> tuple[set[str], str]:
    """``check``, a poll that raises every seeded incident, then (with ``sync_back``) an acknowledgement, an
    annotation and a close from SIGNL4 processed by the next poll. Returns the recorded actions and the config."""
    users = harness.world.users
    sync: dict[str, Any] = {"owner_map": {u.mail: u.object_id for u in users}}
    if sync_back:
        sync["webhook_token"] = TOKEN
        harness.state.signl4.register_webhook(harness.world.signl4_subscription_id,
                                              f"https://connector.test/webhooks/signl4/contoso/{TOKEN}")
    text = harness.config_text(source=source, api_key=sync_back, overrides={"sync": sync},
                               extra_tables=extra_tables)
    lines: list[str] = []
    with recording_actions() as used:
        assert await run_checks(parse_config(text), echo=lines.append), lines
        runtime = await build_runtime(parse_config(text))
        harness.runtimes.append(runtime)
        connector = runtime.connectors["contoso"].runtime
        report = await connector.run_once(datetime.now(UTC))
        assert len(report.enqueued) >= 2
        if sync_back:
            web = httpx.AsyncClient(transport=httpx.ASGITransport(app=build_web_app(runtime)),
                                    base_url="https://connector.test")
            first, second = harness.alerts()[:2]
            harness.state.signl4.acknowledge(str(first.id), users[0].mail)
            harness.state.signl4.annotate(str(first.id), users[0].mail, "on my way")
            harness.state.signl4.close(str(second.id), users[1].mail)
            delivered = await harness.state.signl4.deliver_outbound(web)
            assert delivered.failed == 0, delivered
            await connector.run_once(datetime.now(UTC))
            await web.aclose()
    return used, text


def role_actions(text: str) -> set[str]:
    (target,) = parse_targets(text, env={})
    role = role_of(target)
    assert role is not None
    return set(role.actions)


async def test_the_role_is_exactly_what_a_full_run_with_enrichment_and_two_way_sync_declares(
        harness: Harness) -> None:
    used, text = await run_everything(harness)
    closed = [i for i in harness.incidents() if i["properties"]["status"] == "Closed"]
    assert closed, "the close from SIGNL4 was not applied: the write paths did not run"
    assert role_actions(text) == used
    assert {INCIDENTS_WRITE, COMMENTS_WRITE, QUERY_READ, table_read_action("SecurityAlert")} <= used


async def test_without_enrichment_and_sync_back_the_role_has_no_query_or_comment_action(harness: Harness) -> None:
    used, text = await run_everything(harness, sync_back=False,
                                      extra_tables="[connectors.enrichment]\nenabled = false\n")
    assert role_actions(text) == used
    assert not any(a.startswith("Microsoft.OperationalInsights/") for a in used)
    assert COMMENTS_WRITE not in used
    assert INCIDENTS_WRITE in used  # the tag


async def test_a_custom_query_adds_read_on_exactly_the_tables_it_joins(harness: Harness) -> None:
    used, text = await run_everything(harness, sync_back=False, extra_tables=(
        "[connectors.enrichment]\nalerts = false\n"
        'columns = ["AlertName", "AlertSeverity", "CompromisedEntity"]\n'
        f"query = '''{JOIN_QUERY}'''\n"))
    assert role_actions(text) == used
    tables = {a for a in used if a.startswith("Microsoft.OperationalInsights/workspaces/query/") and a != QUERY_READ}
    assert tables == {table_read_action("SecurityIncident"), table_read_action("SecurityAlert")}


async def test_a_graph_connector_makes_no_azure_resource_call_and_gets_no_role(harness: Harness) -> None:
    used, text = await run_everything(harness, sync_back=False, source="graph")
    assert used == set()
    (target,) = parse_targets(text, env={})
    assert role_of(target) is None
