"""``sentinel-signl4 run --workers 2`` as a real process tree against the emulators: the parent keeps the web server
and runs no connector, two workers share six connectors through their leases. Every incident is paged once per
connector; a worker killed with SIGKILL is restarted and takes its leases over, nothing lost, nothing doubled; a
webhook wakes the worker that runs the connector; SIGTERM ends the whole tree cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from integration_harness import Harness
from process_support import RunProcess
from sentinel_signl4.domain import external_id_for
from sentinel_signl4.worker_protocol import partition_of
from store_fixtures import any_store_url  # noqa: F401 - fixture

pytestmark = pytest.mark.slow

TOKEN = "workers-webhook-token-0123456789abcdef"
CONNECTORS = [f"tenant{n}" for n in range(6)]


class WorkersRun(RunProcess):
    """``sentinel-signl4 run --workers 2`` on a config with ``CONNECTORS``, each paging the fresh High incidents
    of the demo workspace under its own ExternalID and tag."""

    def __init__(self, harness: Harness, tmp: Path) -> None:
        super().__init__(tmp)
        self.harness = harness

    def write(self, poll_interval: str, store_url: str | None = None, *, names: list[str] | None = None) -> None:
        texts = [self.harness.config_text(
            name=name, **({"store_url": store_url} if store_url else {}),
            server={"host": "127.0.0.1", "port": self.port},
            overrides={"logging": {"format": "json"}, "filter": {"severities": ["High"], "max_age": "15m"},
                       "signl4": {"allow_shared_team": True}, "connector": {"poll_interval": poll_interval},
                       "sync": {"tag": f"SIGNL4-{name}", "webhook_token": TOKEN, "mode": "webhook",
                                "owner_map": {u.mail: u.object_id for u in self.harness.world.users}}})
                 for name in names or CONNECTORS]
        text = texts[0] + "".join("\n" + t[t.index("[[connectors]]"):] for t in texts[1:])
        self.path.write_text(text, encoding="utf-8")

    def start_workers(self) -> None:
        self.start("--workers", "2")

    def worker_pids(self) -> dict[int, int]:
        """The latest PID of each worker, from the parent's ``worker_started`` lines."""
        return {int(e["worker"]): int(e["pid"]) for e in self.events("worker_started")}

    def ready(self) -> dict[str, Any] | None:
        try:
            response = httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=5.0)
        except httpx.HTTPError:
            return None
        body: dict[str, Any] = response.json()
        return body if response.status_code == 200 else None

    def incidents(self, count: int, title: str) -> list[str]:
        now = datetime.now(UTC)
        return [str(self.harness.state.sentinel.create_incident(
            self.harness.world.workspace, title=f"{title} {n}", severity="High",
            created=now - timedelta(minutes=1, seconds=n))["id"]) for n in range(count)]

    def paged(self, incident_ids: list[str], names: list[str] | None = None) -> Counter[str]:
        wanted = {external_id_for(c, i) for c in names or CONNECTORS for i in incident_ids}
        return Counter(a.external_id for a in self.harness.alerts() if a.external_id in wanted)

    def finish(self) -> None:
        super().finish()
        for pid in self.worker_pids().values() if self.log.exists() else ():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
async def workers(harness: Harness, tmp_path: Path) -> AsyncIterator[WorkersRun]:
    run = WorkersRun(harness, tmp_path)
    yield run
    run.finish()


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_the_six_connectors_are_spread_over_both_workers() -> None:
    assert {partition_of(name, 2) for name in CONNECTORS} == {0, 1}


async def test_two_workers_page_every_incident_once_survive_a_kill_9_and_stop_on_sigterm(
        harness: Harness, workers: WorkersRun, any_store_url: str) -> None:  # noqa: F811
    first = workers.incidents(4, "Before the start")
    workers.write("1s", any_store_url)
    workers.start_workers()
    await workers.until(lambda: len(workers.worker_pids()) == 2, "two workers")
    expected = len(first) * len(CONNECTORS)
    await workers.until(lambda: len(workers.paged(first)) == expected, "every incident paged by every connector")
    # The parent runs no connector, yet its readiness shows all six, as its workers report them.
    await workers.until(lambda: workers.ready() is not None, "/readyz 200")
    ready = workers.ready()
    assert ready is not None and set(ready["connectors"]) == set(CONNECTORS), ready

    victim = workers.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    await workers.until(lambda: workers.worker_pids()[0] != victim, "worker 0 restarted")
    assert workers.events("worker_exited")[0]["code"] == -signal.SIGKILL
    second = workers.incidents(4, "After the kill")
    expected += len(second) * len(CONNECTORS)
    await workers.until(lambda: len(workers.paged(first + second)) == expected,
                        "the incidents created after the kill paged by every connector")
    await asyncio.sleep(3)  # a few more cycles of every connector: a double page would show now
    counts = workers.paged(first + second)
    assert len(counts) == expected and set(counts.values()) == {1}, counts

    pids = list(workers.worker_pids().values())
    assert workers.stop() == 0, workers.tail()
    assert all(gone(pid) for pid in pids)
    assert len(workers.events("worker_stopped")) == 2
    assert workers.events("stopped")


async def test_a_webhook_wakes_the_worker_that_runs_the_connector(harness: Harness, workers: WorkersRun) -> None:
    # One hour between polls: only a wake can bring the acknowledgement to Sentinel within the test.
    (incident,) = workers.incidents(1, "Acknowledged from the phone")
    workers.write("1h")
    workers.start_workers()
    await workers.until(lambda: len(workers.paged([incident])) == len(CONNECTORS), "the first cycles' pages")
    target = CONNECTORS[-1]
    alert = harness.alerts(external_id_for(target, incident))[0]
    harness.state.signl4.register_webhook(harness.world.signl4_subscription_id,
                                          f"http://127.0.0.1:{workers.port}/webhooks/signl4/{target}/{TOKEN}")
    harness.state.signl4.acknowledge(alert.id, harness.world.users[0].mail)
    async with httpx.AsyncClient(timeout=15.0) as client:
        report = await harness.state.signl4.deliver_outbound(client)
    assert report.failed == 0, report
    name = next(i["name"] for i in harness.incidents() if str(i["id"]) == incident)

    def acknowledged() -> bool:
        return bool(harness.incident(name)["properties"]["status"] == "Active")

    await workers.until(acknowledged, f"{target}'s worker to apply the acknowledgement")
    assert harness.incident(name)["properties"]["owner"]["objectId"] == harness.world.users[0].object_id
    assert workers.stop() == 0, workers.tail()


async def test_a_reload_reaches_the_workers_and_a_new_connector_pages(harness: Harness, workers: WorkersRun) -> None:
    workers.write("1s")
    workers.start_workers()
    await workers.until(lambda: workers.ready() is not None, "/readyz 200")
    grown = [*CONNECTORS, "tenant6"]
    workers.write("1s", names=grown)
    assert workers.proc is not None
    workers.signal(signal.SIGHUP)
    await workers.until(lambda: (workers.ready() or {}).get("connectors", {}).get("tenant6") == "ok",
                        "the new connector's first cycle, reported by its worker")
    incidents = workers.incidents(2, "After the reload")
    await workers.until(lambda: len(workers.paged(incidents, grown)) == 2 * len(grown), "pages of all seven")
    assert set(workers.paged(incidents, grown).values()) == {1}
    assert not workers.events("worker_exited")  # reloaded in place, not restarted
    assert workers.stop() == 0, workers.tail()
