"""``sentinel-signl4 pause``, and ``[[pauses]]`` in the config: the real command line and the runner's start-up
against the store a running connector uses, proven by what the emulated SIGNL4 receives."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from typer.testing import CliRunner

from integration_harness import Harness
from sentinel_signl4.cli import app
from sentinel_signl4.config import parse_config
from sentinel_signl4.domain import external_id_for
from sentinel_signl4.pause_ops import apply_config_pauses

OVERRIDES = {"filter": {"severities": ["High"], "max_age": "15m"}, "logging": {"format": "json"}}


async def cli(*args: str) -> tuple[int, str, str]:
    result = await asyncio.to_thread(CliRunner().invoke, app, ["pause", *args])
    return result.exit_code, result.stdout, result.stderr


def audit_events(stderr: str) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [event for event in events if event.get("event") == "operator_action"]


async def test_pause_add_list_clear_from_the_command_line(harness: Harness) -> None:
    config = harness.tmp / "config.toml"
    config.write_text(harness.config_text(overrides=OVERRIDES), encoding="utf-8")
    runtime = await harness.runtime(overrides=OVERRIDES)
    code, out, err = await cli("add", "-c", str(config), "--connector", "contoso", "--for", "1h", "--mode", "hold",
                               "--severity", "high", "--reason", "failover test", "--json")
    assert code == 0, err
    pause = json.loads(out)
    assert pause["severities"] == ["High"] and pause["mode"] == "hold"
    [event] = audit_events(err)
    assert (event["action"], event["keys"], event["reason"]) == ("pause", [pause["id"]], "failover test")
    code, out, _ = await cli("list", "-c", str(config))
    assert code == 0 and pause["id"] in out and "hold High of contoso" in out
    incident = harness.state.sentinel.create_incident(harness.world.workspace, title="During failover",
                                                      severity="High",
                                                      created=datetime.now(UTC) - timedelta(minutes=2))
    external_id = external_id_for("contoso", incident["id"])
    connector = runtime.connectors["contoso"].runtime
    await connector.run_once(datetime.now(UTC))
    assert not harness.alerts(external_id)
    code, out, err = await cli("clear", "-c", str(config), pause["id"])
    assert code == 0 and "1 held page(s)" in out
    assert audit_events(err)[0]["released"]
    await connector.run_once(datetime.now(UTC) + timedelta(seconds=1))
    assert len(harness.alerts(external_id)) == 1
    code, _, err = await cli("clear", "-c", str(config), pause["id"])
    assert code == 1 and "No pause" in err


async def test_bad_pauses_are_refused_with_a_clear_message(harness: Harness) -> None:
    await harness.runtime(overrides=OVERRIDES)  # migrates the store
    config = harness.tmp / "config.toml"
    config.write_text(harness.config_text(overrides=OVERRIDES), encoding="utf-8")
    for args, message in ((["--connector", "nosuch", "--for", "1h"], "no connector named 'nosuch'"),
                          (["--connector", "contoso", "--for", "1h", "--severity", "urgent"], "unknown severity"),
                          (["--connector", "contoso", "--until", "2020-01-01T00:00Z"], "not in the future"),
                          (["--connector", "contoso", "--until", "2099-01-01T00:00"], "no time zone"),
                          (["--connector", "contoso", "--for", "40d"], "at most 31 days"),
                          (["--connector", "contoso"], "either as a time"),
                          (["--for", "1h"], "--connector NAME")):
        code, _, err = await cli("add", "-c", str(config), *args)
        assert code == 2 and message in err, (args, err)
    code, out, _ = await cli("list", "-c", str(config))
    assert code == 0 and "No pause" in out


async def test_config_pauses_are_stored_once_and_stay_cleared(harness: Harness) -> None:
    runtime = await harness.runtime(overrides=OVERRIDES)
    end = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0).isoformat()
    text = harness.config_text(overrides=OVERRIDES) + (
        f'\n[[pauses]]\nconnector = "contoso"\nend = "{end}"\nmode = "skip"\nreason = "planned upgrade"\n')
    config = parse_config(text, env={})
    now = datetime.now(UTC)
    [added] = await apply_config_pauses(runtime.store, config, now)
    assert added.reason == "planned upgrade" and added.created_by == "config"
    assert await apply_config_pauses(runtime.store, config, now) == []  # a restart adds nothing
    await runtime.store.clear_pause(added.id, now, by="ada")
    assert await apply_config_pauses(runtime.store, config, now) == []  # cleared stays cleared
    assert await runtime.store.pauses(now) == []
