"""A Signl SIGNL4 rejects (400 for a field, 413 for the size) still pages: once, in minimal form, same ExternalID.

SIGNL4's refusals are scripted through the emulator's control plane over HTTPS
(``PUT /_control/signl4/inbound-rejections``), as an operator of the emulator would.
"""

from __future__ import annotations

import ssl
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from structlog.testing import capture_logs

from integration_harness import Harness
from sentinel_signl4.domain import ActionKind, ActionState, external_id_for
from sentinel_signl4.engine.keys import raise_key

ONLY_SEEDED = {"severities": ["High"], "max_age": "15m"}


async def reject_inbound(harness: Harness, *, max_body_bytes: int | None = None,
                         fields: tuple[str, ...] = ()) -> None:
    trust = ssl.create_default_context(cafile=str(harness.server.ca_path))
    async with httpx.AsyncClient(base_url=harness.server.base_url, verify=trust) as client:
        response = await client.put("/_control/signl4/inbound-rejections",
                                    json={"maxBodyBytes": max_body_bytes, "rejectFields": list(fields)})
    assert response.status_code == 200, response.text


def seed_one(harness: Harness, *, description: str = "Ransomware behaviour on a file server") -> tuple[str, str]:
    incident = harness.state.sentinel.create_incident(
        harness.world.workspace, title="Encrypted shares on FS01", severity="High", description=description,
        created=datetime.now(UTC) - timedelta(minutes=3))
    return incident["name"], external_id_for("contoso", incident["id"])


def labels_of(harness: Harness, name: str) -> set[str]:
    return {label["labelName"] for label in harness.incident(name)["properties"]["labels"]}


def params_of(alert: Any) -> dict[str, str]:
    return {p.name: p.value for p in alert.parameters}


async def test_a_rejected_field_falls_back_to_one_minimal_signl(harness: Harness) -> None:
    name, external_id = seed_one(harness)
    await reject_inbound(harness, fields=("Created (UTC)",))  # a tile every rich Signl has, the minimal one not
    runtime = await harness.runtime(overrides={"filter": ONLY_SEEDED})
    connector = runtime.connectors["contoso"].runtime
    now = datetime.now(UTC)
    with capture_logs() as logs:
        report = await connector.run_once(now)
    assert report.done[ActionKind.RAISE_SIGNL] == 1 and not report.dead
    [alert] = harness.alerts(external_id)
    params = params_of(alert)
    assert alert.title.endswith("| Encrypted shares on FS01")
    assert "HTTP 400" in alert.text and "rejected" in alert.text
    assert params["Severity"] == "High"
    assert params["Incident number"] == str(harness.incident(name)["properties"]["incidentNumber"])
    assert params["Azure portal"].startswith("https://portal.azure.com/")
    assert params["X-S4-ExternalID"] == external_id and params["X-S4-SourceSystem"] == "MicrosoftSentinel"
    assert "Created (UTC)" not in params
    # Tagged and linked like any Signl, and the row says the fallback was used.
    assert "SIGNL4" in labels_of(harness, name)
    link = await runtime.store.get_link_by_external_id("contoso", external_id)
    assert link is not None and link.event_id == alert.event_id
    row = await runtime.store.get_action(raise_key("contoso", external_id))
    assert row is not None and row.state is ActionState.DONE
    assert row.result is not None and row.result["fallback"] == "minimal" and row.result["rejected_status"] == 400
    [event] = [e for e in logs if e["event"] == "signl_fallback_minimal"]
    assert (event["log_level"], event["connector"], event["status"]) == ("warning", "contoso", 400)
    assert event["incident"] == link.incident_number
    assert runtime.metrics.signl_fallbacks.labels("contoso")._value.get() == 1
    # Later cycles page nothing more.
    await connector.run_once(now + timedelta(minutes=2))
    assert Counter(a.external_id for a in harness.alerts())[external_id] == 1


async def test_a_body_too_large_gets_413_and_falls_back(harness: Harness) -> None:
    _, external_id = seed_one(harness, description="Evidence line. " * 150)  # a ~2 kB message
    await reject_inbound(harness, max_body_bytes=1500)
    runtime = await harness.runtime(overrides={"filter": ONLY_SEEDED})
    await runtime.connectors["contoso"].runtime.run_once(datetime.now(UTC))
    [alert] = harness.alerts(external_id)
    assert "HTTP 413" in alert.text
    row = await runtime.store.get_action(raise_key("contoso", external_id))
    assert row is not None and row.result is not None and row.result["rejected_status"] == 413


async def test_a_rejected_minimal_signl_dead_letters_the_page_with_both_reasons(harness: Harness) -> None:
    name, external_id = seed_one(harness)
    await reject_inbound(harness, fields=("Created (UTC)", "Incident number"))
    runtime = await harness.runtime(overrides={"filter": ONLY_SEEDED})
    report = await runtime.connectors["contoso"].runtime.run_once(datetime.now(UTC))
    assert report.dead[ActionKind.RAISE_SIGNL] == 1
    assert harness.alerts(external_id) == []
    row = await runtime.store.get_action(raise_key("contoso", external_id))
    assert row is not None and row.state is ActionState.DEAD and row.attempts == 1
    assert row.last_error is not None
    assert "rejected the Signl (HTTP 400) and the minimal fallback Signl too (HTTP 400)" in row.last_error
    assert "'Incident number' is not accepted" in row.last_error
    assert "SIGNL4" not in labels_of(harness, name)
    assert await runtime.store.get_link_by_external_id("contoso", external_id) is None
