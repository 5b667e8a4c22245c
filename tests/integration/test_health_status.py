"""The status tells the truth: sampled over many cycles, through the real connector, the emulators and the web app.

* SIGNL4 refusing the team secret (404, code 3004) keeps the connector in error on every cycle, including the
  cycles in which no send is due, until the secret is fixed and the page goes out.
* A dead-lettered page keeps the connector in error, and the gauges say so.
* A store that cannot be written (the SQLite write lock held by another connection) is an error with the store's
  message, never "standby", and the log never claims another replica holds the lease.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from console_access import console_client, console_for
from integration_harness import Harness
from sentinel_signl4.bootstrap import Runtime
from sentinel_signl4.domain import external_id_for
from sentinel_signl4.engine.health import HealthState
from sentinel_signl4.runner import run_once_all
from sentinel_signl4.store import _sqlite
from sentinel_signl4.web.app import build_web_app
from sentinel_signl4.web.health import DEFAULT_READY_TIMEOUT
from sentinel_signl4_emulators.common.faults import FaultRule

WEBHOOK_PATH = r"^/webhook/"
ONLY_BURST = {"severities": ["High"], "max_age": "15m"}
UNKNOWN_SECRET = "not-yet-our-team-secret"
# How long a write waits for the SQLite lock the tests below hold: a shorter wait than the product's 5 s ends in the
# same "database is locked", without the test sitting through 5 s once per write. /readyz gives up on its store
# probe well before that wait ends (the product's 2 s against 5 s), so it reports the probe as unanswered.
SHORT_BUSY_TIMEOUT_MS = 1000
SHORT_READY_TIMEOUT = 0.2


@pytest.fixture
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_sqlite, "BUSY_TIMEOUT_MS", SHORT_BUSY_TIMEOUT_MS)


def seed_one(harness: Harness) -> str:
    incident = harness.state.sentinel.create_incident(
        harness.world.workspace, title="Health probe incident", severity="High",
        created=datetime.now(UTC) - timedelta(minutes=2))
    name: str = incident["name"]
    return name


class Status:
    """``/status.json`` and ``/metrics`` of ``runtime``'s console app, at the test's clock."""

    def __init__(self, runtime: Runtime, clock: Callable[[], datetime], *,
                 ready_timeout: float = DEFAULT_READY_TIMEOUT) -> None:
        self._app = console_for(runtime, clock=clock)
        self._public = build_web_app(runtime, clock=clock, ready_timeout=ready_timeout)

    async def get(self, path: str) -> httpx.Response:
        if path == "/readyz":  # a probe of the public listener
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self._public),
                                         base_url="http://connector.test") as public:
                return await public.get(path)
        async with console_client(self._app) as web:
            return await web.get(path)

    async def contoso(self) -> dict[str, Any]:
        body = (await self.get("/status.json")).json()
        [connector] = [c for c in body["connectors"] if c["name"] == "contoso"]
        return dict(connector)

    async def gauge(self, name: str, **labels: str) -> float:
        text = (await self.get("/metrics")).text
        wanted = ",".join(f'{k}="{v}"' for k, v in {"connector": "contoso", **labels}.items())
        for line in text.splitlines():
            if line.startswith(f"{name}{{{wanted}}} "):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"no sample {name}{{{wanted}}} in /metrics")


async def test_unknown_team_secret_stays_error_on_every_cycle_until_the_page_goes_out(harness: Harness) -> None:
    name = seed_one(harness)
    bad = {"signl4": {"webhook_url": f"{harness.server.base_url}/webhook/{UNKNOWN_SECRET}"}, "filter": ONLY_BURST}
    runtime = await harness.runtime(overrides=bad)
    connector = runtime.connectors["contoso"].runtime
    now = datetime.now(UTC)
    status = Status(runtime, lambda: now)
    first_failure = now
    samples = []
    for _ in range(8):  # 4 minutes of 30-second cycles: the page is retried every minute, so half send nothing
        await connector.run_once(now)
        samples.append(await status.contoso())
        now += timedelta(seconds=30)
    assert [s["state"] for s in samples] == ["error"] * 8
    assert all("3004" in s["reason"] and s["reason"] == s["error"] for s in samples)
    assert all(UNKNOWN_SECRET not in s["reason"] for s in samples)
    assert {s["since"] for s in samples} == {first_failure.isoformat(timespec="seconds")}
    assert {s["failing_since"] for s in samples} == {first_failure.isoformat(timespec="seconds")}
    assert all(s["last_success_at"] is None for s in samples)
    assert [s["oldest_pending_age_seconds"] for s in samples] == [30.0 * n for n in range(8)]
    assert harness.alerts() == []
    assert await status.gauge("s4s_connector_up") == 0
    assert await status.gauge("s4s_connector_state", state="error") == 1

    # The operator registers the secret with the team; the queued page goes out and only then is the status ok.
    harness.state.signl4.add_team_secret(harness.world.signl4_team_id, UNKNOWN_SECRET)
    now += timedelta(minutes=5)  # the queued page is due whatever its backoff (at most 5 min between attempts)
    await connector.run_once(now)
    fixed = await status.contoso()
    assert (fixed["state"], fixed["reason"], fixed["failing_since"]) == ("ok", None, None)
    assert fixed["last_success_at"] == now.isoformat(timespec="seconds")
    assert fixed["oldest_pending_age_seconds"] is None
    ext = external_id_for("contoso", harness.incident(name)["id"])
    assert len(harness.alerts(ext)) == 1
    assert await status.gauge("s4s_connector_up") == 1


async def test_run_once_exits_non_zero_while_a_connector_is_in_error(harness: Harness) -> None:
    seed_one(harness)
    bad = {"signl4": {"webhook_url": f"{harness.server.base_url}/webhook/{UNKNOWN_SECRET}"}, "filter": ONLY_BURST}
    assert await run_once_all(harness.config(overrides=bad)) == 1
    assert await run_once_all(harness.config(overrides={"filter": ONLY_BURST})) == 0


async def test_a_dead_lettered_page_keeps_the_connector_in_error_across_cycles(harness: Harness) -> None:
    seed_one(harness)
    # SIGNL4 rejects every payload of this connector (400): the page is dead-lettered.
    harness.state.faults.add(FaultRule(path=WEBHOOK_PATH, method="POST", kind="status", status=400))
    runtime = await harness.runtime(overrides={"filter": ONLY_BURST})
    connector = runtime.connectors["contoso"].runtime
    now = datetime.now(UTC)
    status = Status(runtime, lambda: now)
    await connector.run_once(now)
    harness.state.faults.clear()  # SIGNL4 is fine again; the dead row still needs an operator
    samples = []
    for _ in range(5):
        now += timedelta(seconds=30)
        await connector.run_once(now)
        samples.append(await status.contoso())
    assert [s["state"] for s in samples] == ["error"] * 5
    assert all(s["dead_letters"] == 1 and "dead-lettered" in s["reason"] for s in samples)
    assert connector.health.state is HealthState.ERROR
    assert await status.gauge("s4s_dead_letters") == 1
    assert await status.gauge("s4s_connector_up") == 0
    assert await status.gauge("s4s_connector_state", state="error") == 1
    assert await status.gauge("s4s_connector_state", state="ok") == 0
    page = (await status.get("/status")).text
    assert "dead-lettered pages: 1" in page and "ERROR" in page


async def test_a_page_pending_past_stuck_after_is_an_error(harness: Harness) -> None:
    seed_one(harness)
    harness.state.faults.add(FaultRule(path=WEBHOOK_PATH, method="POST", kind="status", status=503))
    runtime = await harness.runtime(overrides={"filter": ONLY_BURST},
                                    extra_tables='[connectors.health]\nstuck_after = "2m"\n')
    connector = runtime.connectors["contoso"].runtime
    now = datetime.now(UTC)
    status = Status(runtime, lambda: now)
    await connector.run_once(now)
    assert (await status.contoso())["state"] == "degraded"  # retrying after a 503, not yet stuck
    now += timedelta(minutes=2, seconds=30)
    await connector.run_once(now)
    stuck = await status.contoso()
    assert stuck["state"] == "error" and stuck["reason"].startswith("a page has been pending for 2 min")
    assert await status.gauge("s4s_oldest_pending_page_age_seconds") == 150


async def test_an_unwritable_store_is_an_error_with_its_message_never_standby(
        harness: Harness, short_busy_timeout: None) -> None:
    seed_one(harness)
    runtime = await harness.runtime(overrides={"filter": ONLY_BURST})
    connector = runtime.connectors["contoso"].runtime
    status = Status(runtime, runtime.clock, ready_timeout=SHORT_READY_TIMEOUT)
    locker = sqlite3.connect(harness.tmp / "state.db", isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with capture_logs() as logs:
            reports = await runtime.supervisor().run_each_once()
        assert reports == {"contoso": None}
        assert connector.health.state is HealthState.ERROR
        assert connector.health.reason == "store: OperationalError: database is locked"
        shown = await status.contoso()
        assert (shown["state"], shown["reason"]) == ("error", "store: OperationalError: database is locked")
        ready = await status.get("/readyz")
        assert ready.status_code == 503 and "store not writable" in ready.json()["store"]["error"]
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert not any(e.get("reason") == "lease held by another replica" or e["event"] == "connector_standby"
                   for e in logs)
    assert any(e["event"] == "lease_failed" and "database is locked" in e["error"] for e in logs)
    # The lock is gone: the next cycle runs and pages.
    await runtime.supervisor().run_each_once()
    assert connector.health.state is HealthState.OK and len(harness.alerts()) >= 1


async def test_a_store_failure_inside_the_outbox_pass_shows_the_store_error_not_a_task_group(
        harness: Harness, short_busy_timeout: None) -> None:
    seed_one(harness)
    harness.state.faults.add(FaultRule(path=WEBHOOK_PATH, method="POST", kind="status", status=503))
    runtime = await harness.runtime(overrides={"filter": ONLY_BURST})
    connector = runtime.connectors["contoso"].runtime
    now = datetime.now(UTC)
    await connector.run_once(now)  # queued, the send failed: the row waits for a retry
    assert connector.health.state is HealthState.DEGRADED
    harness.state.faults.clear()
    locker = sqlite3.connect(harness.tmp / "state.db", isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")
        report = await connector.run_once(now + timedelta(minutes=5))  # the retry is due: mark_in_flight fails
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert any(e.startswith("outbox: store: OperationalError: database is locked") for e in report.errors)
    assert connector.health.state is HealthState.ERROR
    assert connector.health.reason == "store: OperationalError: database is locked"
    assert "TaskGroup" not in " ".join(report.errors)
    await connector.run_once(now + timedelta(minutes=10))
    assert connector.health.state is HealthState.OK and len(harness.alerts()) == 1


async def test_a_write_refused_for_lack_of_rights_stays_error_until_a_write_goes_through(harness: Harness) -> None:
    # The identity may read incidents (Microsoft Sentinel Reader) but not write them: the page goes out, the tag
    # PUT is refused with 403 on every attempt. Retrying cannot fix that; the status must say so on every cycle,
    # also in the cycles in which the tag is not due, until the role is granted and a write goes through.
    name = seed_one(harness)
    reader = {"client_id": harness.world.reader_client_id, "client_secret": harness.world.reader_client_secret}
    runtime = await harness.runtime(overrides={"credential": reader, "filter": ONLY_BURST})
    connector = runtime.connectors["contoso"].runtime
    now = datetime.now(UTC)
    status = Status(runtime, lambda: now)
    samples = []
    for _ in range(6):  # 3 minutes of 30-second cycles; the refused tag is retried at most once a minute
        await connector.run_once(now)
        samples.append(await status.contoso())
        now += timedelta(seconds=30)
    ext = external_id_for("contoso", harness.incident(name)["id"])
    assert len(harness.alerts(ext)) == 1  # the page itself went out
    assert [s["state"] for s in samples] == ["error"] * 6, [s["reason"] for s in samples]
    assert all(s["reason"].startswith("AuthError: ") for s in samples), samples[0]["reason"]
    assert "SIGNL4" not in [label["labelName"] for label in harness.incident(name)["properties"]["labels"]]

    harness.state.sentinel.assign_role(harness.world.reader_client_id, harness.world.workspace, "responder")
    now += timedelta(minutes=10)  # the tag is due again whatever its backoff
    await connector.run_once(now)
    fixed = await status.contoso()
    assert (fixed["state"], fixed["reason"]) == ("ok", None)
    assert "SIGNL4" in [label["labelName"] for label in harness.incident(name)["properties"]["labels"]]
