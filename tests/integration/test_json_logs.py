"""With ``format = "json"`` every line of a faulty run is one JSON object with timestamp, level, logger (and the
connector where known): azure-identity's multi-line failure blocks included. Every retry is logged at info with
service, status, attempt and delay."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from integration_harness import Harness
from sentinel_signl4.logs import configure_logging
from sentinel_signl4_emulators.common.faults import FaultRule

WRONG_SECRET = "wrong-client-secret-value-42"


def parse_lines(text: str) -> list[dict[str, Any]]:
    lines = text.splitlines()
    assert lines, "nothing was logged"
    events = []
    for number, line in enumerate(lines, 1):
        try:
            event = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"line {number} is not JSON: {line!r}") from exc
        assert isinstance(event, dict), line
        for key in ("timestamp", "level", "logger", "event"):
            assert key in event, f"line {number} has no {key}: {line}"
        events.append(event)
    return events


async def test_every_line_of_a_faulty_run_is_json(harness: Harness) -> None:
    stream = io.StringIO()
    wrong = {"credential": {"client_secret": WRONG_SECRET}, "logging": {"format": "json"}}
    config = harness.config(overrides=wrong)
    configure_logging(level="info", fmt="json", secrets=config.secrets(), stream=stream)
    try:
        runtime = await harness.runtime(overrides=wrong)
        connector = runtime.connectors["contoso"].runtime
        await runtime.supervisor(owner="json-test").run_each_once()  # AADSTS7000215, through azure-identity
        assert connector.health.error and "AADSTS7000215" in connector.health.error
        # A good secret, and 429 + 503 answers injected in front of Sentinel's and SIGNL4's APIs.
        harness.state.faults.add(FaultRule(path=r"/incidents$", method="GET", status=429, retry_after=1, count=2))
        harness.state.faults.add(FaultRule(path=r"/incidents$", method="GET", status=503, count=1))
        harness.state.faults.add(FaultRule(path=r"^/webhook/", method="POST", status=503, count=2))
        harness.state.sentinel.create_incident(harness.world.workspace, title="JSON probe", severity="High",
                                               created=datetime.now(UTC) - timedelta(minutes=1))
        good = {"logging": {"format": "json"}}
        runtime2 = await harness.runtime(overrides=good)
        await runtime2.supervisor(owner="json-test-2").run_each_once()
        logging.getLogger("asyncio").error("a library's own error line")  # what asyncio writes on a lost task
    finally:
        configure_logging(level="warning", stream=io.StringIO())
    events = parse_lines(stream.getvalue())
    identity = [e for e in events if e["logger"].startswith("azure.identity")]
    assert identity, "azure-identity's failure was not logged"
    assert all(e.get("connector") == "contoso" for e in identity)
    assert any("AADSTS7000215" in e["event"] for e in identity)
    retries = [e for e in events if e["event"] == "remote_retry"]
    assert [(e["service"], e["status"]) for e in retries if e["service"] == "sentinel"] == [
        ("sentinel", 429), ("sentinel", 429), ("sentinel", 503)]
    assert [(e["service"], e["status"]) for e in retries if e["service"] == "signl4"] == [
        ("signl4", 503), ("signl4", 503)]
    for event in retries:
        assert event["level"] == "info" and event["connector"] == "contoso"
        assert isinstance(event["attempt"], int) and isinstance(event["delay"], int | float)
    assert [e["delay"] for e in retries if e["status"] == 429] == [1, 1]  # Retry-After is waited exactly
    queued = [e for e in events if e["event"] == "incident_queued"]
    assert queued and {"incident", "incident_id", "external_id", "connector"} <= set(queued[0])
    assert any(e["logger"] == "asyncio" and e["level"] == "error" for e in events)
    assert WRONG_SECRET not in stream.getvalue()
