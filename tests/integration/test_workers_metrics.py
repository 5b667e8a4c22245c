"""``/metrics`` of ``sentinel-signl4 run --workers 2`` (a real process tree, SQLite store, the emulators): the
parent runs no connector, yet its scrape shows the counters the workers' cycles increment, once each; after
``kill -9`` of a worker and its restart, its connector's counters go on from where they were, never back."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from integration_harness import Harness
from process_support import DEADLINE, RunProcess
from sentinel_signl4.domain import external_id_for
from sentinel_signl4.worker_protocol import partition_of

pytestmark = pytest.mark.slow

#: One connector in each worker (``partition_of``), so that the victim's partition is not the whole run.
VICTIM, OTHER = "tenant0", "tenant5"
CONNECTORS = [VICTIM, OTHER]
PAGES = ("s4s_signls_raised_total", {})
PAGE_ACTIONS = ("s4s_actions_total", {"kind": "raise_signl", "outcome": "done"})

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


class MetricsRun(RunProcess):
    """``run --workers 2`` on a config with ``CONNECTORS``, each paging the fresh High incidents of the demo
    workspace under its own ExternalID; ``/metrics`` on the public listener (no console user)."""

    def __init__(self, harness: Harness, tmp: Path) -> None:
        super().__init__(tmp)
        self.harness = harness

    def start(self, *args: str) -> None:
        texts = [self.harness.config_text(
            name=name, server={"host": "127.0.0.1", "port": self.port},
            overrides={"logging": {"format": "json"}, "filter": {"severities": ["High"], "max_age": "15m"},
                       "signl4": {"allow_shared_team": True}, "connector": {"poll_interval": "1s"},
                       "sync": {"tag": f"SIGNL4-{name}"}})
                 for name in CONNECTORS]
        text = texts[0] + "".join("\n" + t[t.index("[[connectors]]"):] for t in texts[1:])
        self.path.write_text(text, encoding="utf-8")
        super().start("--workers", "2", *args)

    def worker_pids(self) -> dict[int, int]:
        """The latest PID of each worker, from the parent's ``worker_started`` lines."""
        return {int(e["worker"]): int(e["pid"]) for e in self.events("worker_started")}

    def scrape(self) -> Series | None:
        """The parent's ``/metrics``, every sample by name and labels (None while it does not answer)."""
        try:
            response = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5.0)
        except httpx.HTTPError:
            return None
        assert response.status_code == 200, response.text
        families = list(text_string_to_metric_families(response.text))
        names = [f.name for f in families]
        assert len(names) == len(set(names)), f"a family is exposed twice: {names}"
        return {(s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples}

    def incidents(self, count: int, title: str) -> list[str]:
        now = datetime.now(UTC)
        return [str(self.harness.state.sentinel.create_incident(
            self.harness.world.workspace, title=f"{title} {n}", severity="High",
            created=now - timedelta(minutes=1, seconds=n))["id"]) for n in range(count)]

    def signls(self, connector: str) -> int:
        """The Signls SIGNL4 holds for ``connector`` (its ExternalIDs of every incident of the workspace)."""
        wanted = {external_id_for(connector, str(i["id"])) for i in self.harness.incidents()}
        return sum(1 for a in self.harness.alerts() if a.external_id in wanted)


def value(series: Series | None, metric: tuple[str, dict[str, str]], connector: str) -> float:
    name, labels = metric
    return (series or {}).get((name, frozenset({**labels, "connector": connector}.items())), 0.0)


@pytest.fixture
async def metrics_run(harness: Harness, tmp_path: Path) -> AsyncIterator[MetricsRun]:
    run = MetricsRun(harness, tmp_path)
    yield run
    run.finish()
    for pid in run.worker_pids().values() if run.log.exists() else ():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_one_connector_in_each_worker() -> None:
    assert {partition_of(VICTIM, 2), partition_of(OTHER, 2)} == {0, 1}


async def test_worker_counters_reach_the_parent_and_survive_a_kill_9_of_the_worker(
        metrics_run: MetricsRun) -> None:
    run = metrics_run
    run.incidents(3, "Before the kill")
    run.start()

    def counted_as_sent() -> bool:
        # Every Signl SIGNL4 holds is counted once, by the worker that raised it, on the parent's scrape.
        series = run.scrape()
        return series is not None and all(
            value(series, metric, c) == run.signls(c) > 0 for c in CONNECTORS for metric in (PAGES, PAGE_ACTIONS))

    await run.until(counted_as_sent, "the pages of both workers counted on the parent's /metrics")
    before = run.scrape()
    assert before is not None
    had = value(before, PAGES, VICTIM)
    # Counted by the workers that polled, not by the parent: the counts sum both workers' connectors.
    assert value(before, ("s4s_incidents_seen_total", {}), VICTIM) >= had
    assert value(before, ("s4s_page_latency_seconds_count", {}), VICTIM) == had

    victim = run.worker_pids()[partition_of(VICTIM, 2)]
    os.kill(victim, signal.SIGKILL)
    lowest: list[float] = []

    def restarted() -> bool:
        lowest.append(value(run.scrape(), PAGES, VICTIM))  # scraped while the worker is dead and restarting
        return run.worker_pids()[partition_of(VICTIM, 2)] != victim

    await run.until(restarted, "the victim's worker restarted")
    assert min(lowest) == had, lowest
    created = run.incidents(2, "After the kill")

    def paged_after_restart() -> bool:
        lowest.append(value(run.scrape(), PAGES, VICTIM))
        return run.signls(VICTIM) == had + len(created) and value(run.scrape(), PAGES, VICTIM) == had + len(created)

    await run.until(paged_after_restart, "the new worker's pages added to the count the parent had")
    assert min(lowest) == had, lowest  # never below what it was before the kill
    after = run.scrape()
    assert value(after, PAGE_ACTIONS, VICTIM) == had + len(created)
    assert value(after, PAGES, OTHER) == run.signls(OTHER)

    assert run.proc is not None
    run.proc.send_signal(signal.SIGTERM)
    assert run.proc.wait(timeout=DEADLINE) == 0, run.tail()
