"""``sentinel-signl4 outbox``: the real command line against the store a running connector uses.

A page is dead-lettered through the real path (SIGNL4, emulated over HTTPS, rejects both the rich and the minimal
Signl), then an operator retries or discards it; the connector's next cycles prove the outcome in SIGNL4.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from integration_harness import Harness
from sentinel_signl4.bootstrap import Runtime
from sentinel_signl4.cli import app
from sentinel_signl4.domain import ActionKind, ActionState, external_id_for
from sentinel_signl4.engine.keys import raise_key
from sentinel_signl4.store import OutboxAction
from sentinel_signl4_emulators.common.faults import FaultRule

OVERRIDES = {"filter": {"severities": ["High"], "max_age": "15m"}, "logging": {"format": "json"}}
WEBHOOK_PATH = r"^/webhook/"


async def reject_inbound(harness: Harness, fields: tuple[str, ...] = ()) -> None:
    trust = ssl.create_default_context(cafile=str(harness.server.ca_path))
    async with httpx.AsyncClient(base_url=harness.server.base_url, verify=trust) as client:
        response = await client.put("/_control/signl4/inbound-rejections", json={"rejectFields": list(fields)})
    assert response.status_code == 200, response.text


def seed_one(harness: Harness) -> tuple[str, str]:
    incident = harness.state.sentinel.create_incident(
        harness.world.workspace, title="Mass download from SharePoint", severity="High",
        created=datetime.now(UTC) - timedelta(minutes=3))
    return incident["name"], external_id_for("contoso", incident["id"])


async def setup(harness: Harness) -> tuple[Runtime, Path]:
    config = harness.tmp / "config.toml"
    config.write_text(harness.config_text(overrides=OVERRIDES), encoding="utf-8")
    return await harness.runtime(overrides=OVERRIDES), config


async def dead_page(harness: Harness) -> tuple[Runtime, Path, str, str]:
    """One incident whose page SIGNL4 refused in both forms: its raise row is DEAD. Then SIGNL4 accepts again."""
    name, external_id = seed_one(harness)
    runtime, config = await setup(harness)
    await reject_inbound(harness, ("Created (UTC)", "Incident number"))
    await runtime.connectors["contoso"].runtime.run_once(datetime.now(UTC))
    key = raise_key("contoso", external_id)
    assert (await row(runtime, key)).state is ActionState.DEAD
    await reject_inbound(harness)
    return runtime, config, key, name


async def row(runtime: Runtime, key: str) -> OutboxAction:
    found = await runtime.store.get_action(key)
    assert found is not None
    return found


async def cli(*args: str) -> tuple[int, str, str]:
    """The command, in a thread: it runs its own event loop, as it does when started from a shell."""
    result = await asyncio.to_thread(CliRunner().invoke, app, ["outbox", *args])
    return result.exit_code, result.stdout, result.stderr


def audit_events(stderr: str) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [event for event in events if event.get("event") == "operator_action"]


def signls(harness: Harness, external_id: str) -> int:
    return Counter(a.external_id for a in harness.alerts())[external_id]


async def test_retry_of_a_dead_page_through_the_real_cli_pages_exactly_once(harness: Harness) -> None:
    runtime, config, key, name = await dead_page(harness)
    external_id = key.split(":raise:", 1)[1]
    code, out, err = await cli("list", "--config", str(config), "--state", "dead")
    assert code == 0, err
    assert key in out and "contoso" in out and "dead" in out and "rejected the Signl (HTTP 400)" in out
    # The real entry point, as an operator runs it.
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "sentinel_signl4", "outbox", "retry", key, "--config", str(config),
                         "--reason", "SIGNL4 field limit lifted"],
        capture_output=True, text=True, timeout=120, check=False, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    assert "retry: 1 dead row(s) queued again" in done.stdout
    [event] = audit_events(done.stderr)
    assert (event["action"], event["keys"], event["outcome"], event["reason"]) == (
        "retry", [key], "ok", "SIGNL4 field limit lifted")
    assert event["actor"] and event["level"] == "info"
    requeued = await row(runtime, key)
    assert (requeued.state, requeued.attempts) == (ActionState.PENDING, 0)

    connector = runtime.connectors["contoso"].runtime
    now = datetime.now(UTC)
    await connector.run_once(now)
    await connector.run_once(now + timedelta(minutes=1))
    assert signls(harness, external_id) == 1
    assert (await row(runtime, key)).state is ActionState.DONE
    assert "SIGNL4" in {label["labelName"] for label in harness.incident(name)["properties"]["labels"]}
    # A done row is never retried: that could page twice.
    code, out, err = await cli("retry", key, "--config", str(config))
    assert code == 1
    assert "it is done" in err and "0 dead row(s) queued again, 1 refused" in out
    assert audit_events(err)[0]["outcome"] == "refused"
    assert signls(harness, external_id) == 1


async def test_retry_keeps_a_send_in_doubt_so_it_is_looked_up_not_repeated(harness: Harness) -> None:
    _, external_id = seed_one(harness)
    runtime, config = await setup(harness)
    key = raise_key("contoso", external_id)
    connector = runtime.connectors["contoso"].runtime
    # SIGNL4 takes the event, the answer is lost; then the look-up before a re-send fails for good.
    harness.state.faults.add(FaultRule(path=WEBHOOK_PATH, method="POST", kind="reset", phase="after", count=1))
    now = datetime.now(UTC)
    await connector.run_once(now)
    harness.state.faults.add(FaultRule(path=r"^/api/v2/alerts/paged", method="POST", kind="status", status=400))
    await connector.run_once(now + timedelta(minutes=5))
    dead = await row(runtime, key)
    assert (dead.state, dead.in_doubt) == (ActionState.DEAD, True)
    assert signls(harness, external_id) == 1
    harness.state.faults.clear()

    code, out, _ = await cli("retry", "--config", str(config), "--connector", "contoso", "--all-dead")
    assert code == 0 and "1 dead row(s) of connector contoso queued again" in out
    assert (await row(runtime, key)).in_doubt is True
    await connector.run_once(now + timedelta(minutes=6))
    done = await row(runtime, key)
    assert done.state is ActionState.DONE and done.result is not None and done.result["reconciled"] is True
    assert signls(harness, external_id) == 1


async def test_discard_gives_a_dead_page_up_for_good(harness: Harness) -> None:
    runtime, config, key, _ = await dead_page(harness)
    external_id = key.split(":raise:", 1)[1]
    code, _, err = await cli("discard", key, "--config", str(config))
    assert code == 2 and "--reason" in err
    code, out, err = await cli("discard", key, "--config", str(config), "--reason", "handled by phone, ticket 4711")
    assert code == 0 and "discard: 1 row(s) discarded." in out
    [event] = audit_events(err)
    assert (event["action"], event["keys"], event["outcome"], event["reason"]) == (
        "discard", [key], "ok", "handled by phone, ticket 4711")
    discarded = await row(runtime, key)
    assert discarded.state is ActionState.DISCARDED
    assert discarded.result == {"discarded_reason": "handled by phone, ticket 4711", "discarded_by": event["actor"]}
    counts = await runtime.store.count_actions("contoso")
    assert (counts[ActionState.DEAD], counts[ActionState.DISCARDED]) == (0, 1)
    # SIGNL4 accepts again, yet nothing is sent or queued for that incident; retry refuses a discarded row.
    await runtime.connectors["contoso"].runtime.run_once(datetime.now(UTC))
    assert signls(harness, external_id) == 0
    assert (await row(runtime, key)).state is ActionState.DISCARDED
    code, _, err = await cli("retry", key, "--config", str(config))
    assert code == 1 and "discarded by an operator" in err
    code, out, _ = await cli("list", "--config", str(config), "--state", "discarded", "--json")
    assert [(r["key"], r["state"]) for r in json.loads(out)] == [(key, "discarded")]


async def test_show_and_list_print_the_row_with_its_incident_number(harness: Harness) -> None:
    runtime, config, key, name = await dead_page(harness)
    number = harness.incident(name)["properties"]["incidentNumber"]
    code, out, _ = await cli("show", key, "--config", str(config), "--json")
    assert code == 0
    shown = json.loads(out)
    assert (shown["key"], shown["state"], shown["attempts"], shown["incident_number"]) == (key, "dead", 1, number)
    assert shown["payload"]["request"]["external_id"] == key.split(":raise:", 1)[1]
    assert "minimal fallback Signl too (HTTP 400)" in shown["last_error"]
    code, out, _ = await cli("list", "--config", str(config), "--json", "--connector", "contoso", "--limit", "500")
    listed = {r["key"]: r for r in json.loads(out)}
    assert listed[key]["incident_number"] == number and listed[key]["age_seconds"] >= 0
    code, _, err = await cli("show", "nope", "--config", str(config))
    assert code == 1 and "No outbox row with key 'nope'" in err
    await runtime.aclose()


@pytest.mark.parametrize("args", [["retry"], ["retry", "k", "--all-dead"], ["discard", "--all-dead", "--reason", "x"],
                                  ["retry", "--all-dead", "--connector", "nosuch"]])
async def test_a_command_that_names_no_rows_or_a_wrong_connector_changes_nothing(harness: Harness,
                                                                                args: list[str]) -> None:
    runtime, config, key, _ = await dead_page(harness)
    code, _, err = await cli(*args, "--config", str(config))
    assert code == 2 and err
    assert (await row(runtime, key)).state is ActionState.DEAD


async def test_no_secret_appears_in_list_show_or_the_audit_log(harness: Harness) -> None:
    runtime, config = await setup(harness)
    world = harness.world
    secrets = [world.signl4_team_secret, world.signl4_api_key, world.client_secret]
    # A row that carries secrets, as a bug or an old version could have written it.
    leaky = OutboxAction(key="contoso:raise:leaky", connector="contoso", kind=ActionKind.RAISE_SIGNL,
                         incident_id="inc-leaky",
                         payload={"request": {"external_id": "leaky", "message": f"see {world.signl4_team_secret}"},
                                  "webhook": f"{harness.server.base_url}/webhook/{world.signl4_team_secret}"})
    now = datetime.now(UTC)
    await runtime.store.enqueue(leaky, now)
    await runtime.store.mark_dead(leaky.key, now, f"HTTP 401 with key {world.signl4_api_key} and "
                                                  f"secret {world.client_secret}")
    outputs = [await cli("list", "--config", str(config)), await cli("list", "--config", str(config), "--json"),
               await cli("show", leaky.key, "--config", str(config)),
               await cli("show", leaky.key, "--config", str(config), "--json"),
               await cli("discard", leaky.key, "--config", str(config), "--reason",
                   f"pasted by mistake: {world.client_secret}")]
    assert all(code == 0 for code, _, _ in outputs)
    text = "".join(out + err for _, out, err in outputs)
    assert "contoso:raise:leaky" in text and "***" in text
    assert not [secret for secret in secrets if secret in text]


def test_a_store_no_run_has_used_is_named_as_such_not_a_driver_error(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sentinel_signl4.cli import app

    config = tmp_path / "config.toml"
    config.write_text(f"""
[store]
url = "sqlite:///{tmp_path / 'never-used.db'}"
[[connectors]]
name = "a"
[connectors.azure]
tenant_id = "7a2c1c5e-0f0b-4d3e-9a51-3c1c2f7b9e10"
subscription_id = "7a2c1c5e-0f0b-4d3e-9a51-3c1c2f7b9e10"
resource_group = "rg"
workspace_name = "ws1"
[connectors.azure.credential]
kind = "managed_identity"
[connectors.signl4]
webhook_url = "https://connect.signl4.com/webhook/team-secret-xyz"
""")
    result = CliRunner().invoke(app, ["outbox", "list", "--config", str(config)])
    assert result.exit_code == 1
    assert "has no tables yet" in result.output
    assert "OperationalError" not in result.output and "team-secret-xyz" not in result.output
