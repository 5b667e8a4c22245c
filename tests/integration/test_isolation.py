"""One broken or slow connector never delays the others (ARCHITECTURE §5): each connector runs in its own task."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

from integration_harness import Harness
from sentinel_signl4.bootstrap import build_runtime
from sentinel_signl4.config import parse_config
from sentinel_signl4.domain import external_id_for
from sentinel_signl4_emulators.common.faults import FaultRule

ONLY_FRESH_HIGH = {"severities": ["High"], "max_age": "15m"}


async def test_a_connector_stuck_on_a_hanging_signl4_call_does_not_delay_another(harness: Harness) -> None:
    now = datetime.now(UTC)
    names = [harness.state.sentinel.create_incident(
        harness.world.workspace, title=f"Isolation {n}", severity="High",
        created=now - timedelta(minutes=2, seconds=n))["name"] for n in range(3)]
    # Both read the emulator's one workspace and page its one team: allowed explicitly (a real pair would have
    # disjoint filters; here alpha is the only one that gets a page out).
    shared = {"allow_shared_team": True}
    common = {"filter": ONLY_FRESH_HIGH, "connector": {"poll_interval": "0.3s"}, "signl4": shared}
    alpha = harness.config_text(name="alpha", overrides=common)
    # beta sends through the REST events endpoint, which SIGNL4 answers only after 20 s here (longer than the 15 s
    # request timeout: beta's send hangs, then times out).
    beta = harness.config_text(name="beta", overrides={**common, "signl4": {**shared, "send_via": "events_api"}})
    # beta first: a supervisor that ran connectors one after another would leave alpha waiting behind it.
    text = beta + "\n" + alpha[alpha.index("[[connectors]]"):]
    hang = harness.state.faults.add(FaultRule(path=r"^/api/v2/events/", method="POST", kind="delay", delay=20))
    runtime = await build_runtime(parse_config(text, source="two.toml"))
    harness.runtimes.append(runtime)
    incidents = {i["name"]: i["id"] for i in harness.incidents()}
    wanted = {external_id_for("alpha", incidents[n]) for n in names}
    task = asyncio.create_task(runtime.supervisor().run(asyncio.Event()))
    try:
        for _ in range(400):
            if (hang.fired and wanted <= {a.external_id for a in harness.alerts()}
                    and runtime.connectors["alpha"].runtime.health.cycles >= 1):
                break
            await asyncio.sleep(0.05)
        raised = {a.external_id for a in harness.alerts()}
        assert hang.fired, "beta never reached SIGNL4"
        assert wanted <= raised, "alpha was held up by beta's hanging call"
        assert not any(e.startswith("s4s:beta:") for e in raised)  # beta really is stuck meanwhile
        assert runtime.connectors["alpha"].runtime.health.cycles >= 1  # alpha's cycle completed
        assert runtime.connectors["beta"].runtime.health.cycles == 0  # while beta's first is still stuck
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        harness.state.faults.clear()
