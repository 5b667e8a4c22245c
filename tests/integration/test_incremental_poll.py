"""The incremental poll (engine/incident_poll.py) against the Sentinel emulator: one list read per idle poll, no store
write when nothing changed, and no change missed through clock skew, page boundaries, concurrent edits or an
interrupted poll."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta

import pytest

from integration_harness import Harness
from sentinel_signl4.domain import ActionKind, ActionState, external_id_for
from sentinel_signl4.engine.connector import ConnectorRuntime
from sentinel_signl4.engine.incident_poll import CHANGES_CURSOR, CURSOR_STEP, OVERLAP
from sentinel_signl4_emulators.common.faults import FaultRule
from source_sides import side_for

INCIDENTS_PATH = r"/providers/Microsoft\.SecurityInsights/incidents$"
ALERTS_PATH = r"/incidents/[^/]+/alerts$"
ONLY_HIGH = {"severities": ["High"], "max_age": "24h"}
DEADLINE = 30.0


def create(harness: Harness, title: str, *, severity: str = "High", status: str = "New",
           created: datetime | None = None) -> str:
    name: str = harness.state.sentinel.create_incident(harness.world.workspace, title=title, severity=severity,
                                                       status=status, created=created)["name"]
    return name


def signls(harness: Harness, name: str) -> int:
    return len(harness.alerts(external_id_for("contoso", harness.incident(name)["id"])))


async def settle(connector: ConnectorRuntime, now: datetime) -> datetime:
    """Cycles until nothing is pending (raises sent, tags written, and the tags' own changes read back)."""
    for _ in range(10):
        report = await connector.run_once(now)
        assert not report.errors, report.errors
        counts = await connector.store.count_actions("contoso")
        pending = counts[ActionState.PENDING] + counts[ActionState.IN_FLIGHT]
        if not pending and not report.enqueued and not any(report.done.values()):
            return now
        now += timedelta(seconds=30)
    raise AssertionError("the connector did not settle")


async def wait_for(condition: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@contextmanager
def emulator_clock(harness: Harness, offset: timedelta) -> Iterator[None]:
    """The Sentinel emulator's clock runs ``offset`` away from ours (restored after: the emulator is shared)."""
    model = harness.state.sentinel
    original = model.clock
    model.clock = lambda: datetime.now(UTC) + offset
    try:
        yield
    finally:
        model.clock = original


def data_version(db: sqlite3.Connection) -> int:
    """Changes whenever another connection commits a write to the database file (SQLite ``data_version``)."""
    value: int = db.execute("PRAGMA data_version").fetchone()[0]
    return value


async def test_an_idle_poll_makes_one_list_read_and_writes_nothing(harness: Harness) -> None:
    names = [create(harness, f"Backlog {n}") for n in range(5)]
    runtime = await harness.runtime(api_key=False, overrides={"filter": ONLY_HIGH})
    connector = runtime.connectors["contoso"].runtime
    now = await settle(connector, datetime.now(UTC))
    assert all(signls(harness, name) == 1 for name in names)
    assert await runtime.store.get_cursor("contoso", CHANGES_CURSOR) is not None
    lists = harness.state.faults.add(FaultRule(path=INCIDENTS_PATH, method="GET", kind="delay", delay=0.0))
    db = sqlite3.connect(harness.tmp / "state.db")
    try:
        version = data_version(db)
        for _ in range(3):
            now += timedelta(seconds=30)
            before = lists.fired
            report = await connector.run_once(now)
            assert not report.errors and not report.enqueued
            assert lists.fired - before == 1  # one read of changes, not the filtered list plus a lifecycle read
            assert data_version(db) == version  # nothing changed, nothing written (no cursor, no lifecycle mark)
    finally:
        db.close()


async def test_the_full_scan_runs_at_start_and_again_after_its_interval(harness: Harness) -> None:
    runtime = await harness.runtime(api_key=False, overrides={"filter": ONLY_HIGH,
                                                              "connector": {"full_scan_interval": "10m"}})
    connector = runtime.connectors["contoso"].runtime
    lists = harness.state.faults.add(FaultRule(path=INCIDENTS_PATH, method="GET", kind="delay", delay=0.0))
    start = datetime.now(UTC)
    await connector.run_once(start)
    assert lists.fired == 2  # the read of changes and the full filtered scan
    now = await settle(connector, start + timedelta(seconds=30))
    fired = lists.fired
    await connector.run_once(now + timedelta(seconds=30))
    assert lists.fired - fired == 1
    assert connector.incident_poll.full_scan_due(start + timedelta(minutes=10))
    fired = lists.fired
    await connector.run_once(start + timedelta(minutes=10))
    assert lists.fired - fired == 2


async def test_a_change_stamped_by_a_server_clock_behind_ours_within_the_overlap_is_not_missed(
        harness: Harness) -> None:
    runtime = await harness.runtime(api_key=False, overrides={"filter": ONLY_HIGH})
    connector = runtime.connectors["contoso"].runtime
    skew = OVERLAP - timedelta(seconds=45)  # our clock runs ahead of the server's by almost the whole overlap
    name = create(harness, "Skewed")
    first = datetime.now(UTC) + skew
    now = await settle(connector, first)
    assert signls(harness, name) == 1
    link = await runtime.store.get_link("contoso", harness.incident(name)["id"])
    assert link is not None and link.open
    harness.state.sentinel.close_incident_as_analyst(harness.world.workspace, name, classification="Undetermined")
    now = first + CURSOR_STEP  # the cursor moves past the close by our clock: only the overlap keeps it in view
    assert not connector.incident_poll.full_scan_due(now)  # only the read of changes can find the close
    report = await connector.run_once(now)
    assert report.done[ActionKind.RESOLVE_SIGNL] == 1
    link = await runtime.store.get_link("contoso", harness.incident(name)["id"])
    assert link is not None and not link.open


async def test_incidents_with_equal_timestamps_across_page_boundaries_are_each_paged_once(harness: Harness) -> None:
    runtime = await harness.runtime(api_key=False, overrides={"filter": ONLY_HIGH, "azure": {"page_size": 2}})
    connector = runtime.connectors["contoso"].runtime
    now = await settle(connector, datetime.now(UTC))
    frozen = datetime.now(UTC)
    model = harness.state.sentinel
    original = model.clock
    model.clock = lambda: frozen
    try:
        names = [create(harness, f"Same instant {n}") for n in range(7)]
    finally:
        model.clock = original
    modified = {harness.incident(name)["properties"]["lastModifiedTimeUtc"] for name in names}
    assert len(modified) == 1  # seven incidents, one timestamp: pages break inside the tie
    lists = harness.state.faults.add(FaultRule(path=INCIDENTS_PATH, method="GET", kind="delay", delay=0.0))
    now += timedelta(seconds=30)
    assert not connector.incident_poll.full_scan_due(now)
    report = await connector.run_once(now)
    assert lists.fired >= 4  # 7 changed incidents at 2 per page
    assert {i.name for i in report.enqueued} == set(names)
    await settle(connector, now + timedelta(seconds=30))
    assert Counter(signls(harness, name) for name in names) == Counter({1: 7})


async def test_an_incident_changed_while_the_pages_are_read_is_decided_on_the_next_poll(harness: Harness) -> None:
    low = create(harness, "Low for now", severity="Low")
    runtime = await harness.runtime(api_key=False, overrides={"filter": ONLY_HIGH})
    connector = runtime.connectors["contoso"].runtime
    now = await settle(connector, datetime.now(UTC))
    assert signls(harness, low) == 0
    # The emulator answers the read of changes, then holds the answer back while an analyst raises the severity.
    held = harness.state.faults.add(FaultRule(path=INCIDENTS_PATH, method="GET", kind="delay", delay=1.0,
                                              phase="after", count=1))
    now += timedelta(seconds=30)
    cycle = asyncio.create_task(connector.run_once(now))
    await wait_for(lambda: held.fired == 1, "the held read of changes")
    harness.state.sentinel.update_incident_as_analyst(harness.world.workspace, low, severity="High")
    report = await cycle
    assert low not in {i.name for i in report.enqueued}  # the read saw it Low
    report = await connector.run_once(now + timedelta(seconds=30))
    assert low in {i.name for i in report.enqueued}
    assert signls(harness, low) == 1


async def test_an_incident_that_comes_to_match_later_is_paged_once(harness: Harness) -> None:
    low = create(harness, "Raised later", severity="Low")
    active = create(harness, "Set back to New", status="Active")
    runtime = await harness.runtime(api_key=False, overrides={"filter": ONLY_HIGH})
    connector = runtime.connectors["contoso"].runtime
    now = await settle(connector, datetime.now(UTC))
    assert signls(harness, low) == signls(harness, active) == 0
    harness.state.sentinel.update_incident_as_analyst(harness.world.workspace, low, severity="High")
    harness.state.sentinel.update_incident_as_analyst(harness.world.workspace, active, status="New")
    now += timedelta(seconds=30)
    assert not connector.incident_poll.full_scan_due(now)
    report = await connector.run_once(now)
    assert {low, active} <= {i.name for i in report.enqueued}
    await settle(connector, now + timedelta(seconds=30))
    assert signls(harness, low) == signls(harness, active) == 1


async def test_a_poll_interrupted_between_its_read_and_the_cursor_write_misses_nothing(harness: Harness) -> None:
    runtime = await harness.runtime(api_key=False, overrides={"filter": ONLY_HIGH,
                                                              "connector": {"full_scan_interval": "1h"}})
    connector = runtime.connectors["contoso"].runtime
    now = await settle(connector, datetime.now(UTC))
    fresh = create(harness, "New during the outage")
    with emulator_clock(harness, CURSOR_STEP * 2):  # ten minutes pass, on the server's clock and on ours
        # The poll stops between its read and its cursor write: enrichment of the new incident gets no answer.
        alerts = harness.state.faults.add(FaultRule(path=ALERTS_PATH, method="POST", kind="delay", delay=DEADLINE))
        now = datetime.now(UTC) + CURSOR_STEP * 2
        cycle = asyncio.create_task(connector.run_once(now))
        await wait_for(lambda: alerts.fired >= 1, "enrichment of the new incident")
        cycle.cancel()
        with suppress(asyncio.CancelledError):
            await cycle
        harness.state.faults.clear()
        assert signls(harness, fresh) == 0
        now += timedelta(seconds=30)
        assert not connector.incident_poll.full_scan_due(now)  # only the read of changes can find it
        await settle(connector, now)
    assert signls(harness, fresh) == 1


LIST_PATHS = {"sentinel": INCIDENTS_PATH, "graph": r"^/v1\.0/security/incidents$"}


@pytest.mark.parametrize("source", ["sentinel", "graph"])
async def test_each_source_polls_idle_with_one_read_and_sees_a_close_in_it(harness: Harness, source: str) -> None:
    side = side_for(source, harness)
    name = side.create("Closed by an analyst later")
    runtime = await harness.runtime(source=source, api_key=False, overrides={"filter": ONLY_HIGH})
    connector = runtime.connectors["contoso"].runtime
    now = await settle(connector, datetime.now(UTC))
    link = await runtime.store.get_link("contoso", side.resource_id(name))
    assert link is not None and link.open
    lists = harness.state.faults.add(FaultRule(path=LIST_PATHS[source], method="GET", kind="delay", delay=0.0))
    now += timedelta(seconds=30)
    report = await connector.run_once(now)
    assert lists.fired == 1 and not report.enqueued
    side.analyst_close(name, "Undetermined")
    now += timedelta(seconds=30)
    assert not connector.incident_poll.full_scan_due(now)
    report = await connector.run_once(now)
    assert lists.fired == 2
    assert report.done[ActionKind.RESOLVE_SIGNL] == 1
