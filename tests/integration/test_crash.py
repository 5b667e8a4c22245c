"""kill -9 and SIGTERM against a real ``sentinel-signl4 run`` process (ARCHITECTURE §5): every incident that matches
the filter gets exactly one Signl, whenever the process dies.

The emulators run in this process (session fixture ``emulator``); the connector runs as a subprocess that reaches
them over HTTPS, with its state in a SQLite file (``crash_support.Scenario``). Kills are placed with fault
rules, not with sleeps:

* SIGNL4 (or Sentinel) applies each request and answers a little later, as over a real network;
* from a chosen request on, a *hold* rule keeps the answers back, and the test waits until the connector's whole
  outbox concurrency is stuck there and the store shows those rows IN_FLIGHT. The kill then lands with exactly that
  many side effects applied remotely but not recorded locally: the in-doubt rows the restart must reconcile (with a
  SIGNL4 API key) or re-send (without one: the documented duplicate window). One more kill lands at whatever moment
  the process happens to be in.

Recovery is ``run --once`` until the outbox is quiescent (it takes the killed process's lease over at once: the
process's instance lock died with it). A plain restarted ``run`` does the same
(``test_a_run_restarted_after_kill_9_takes_its_dead_predecessors_lease_over_at_once``).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest

from crash_support import CONCURRENCY, DEADLINE, INCIDENT_PUT, SLOW, Scenario
from integration_harness import Harness
from sentinel_signl4.domain import ActionKind, ActionState
from sentinel_signl4.store.factory import open_store
from sentinel_signl4_emulators.common.faults import FaultRule

pytestmark = pytest.mark.slow

# Below the connector's SIGNL4 budget (140 events / 15 s): the burst fits one rate-limit window, so these tests are
# about crashes, not about throttling (bench/burst.py covers that).
BURST = 120
WEBHOOK = r"^/webhook/"
# Only the burst seeded here (High, created 5 minutes ago), not the demo world's incidents.
ONLY_BURST = {"severities": ["High"], "max_age": "15m"}


@pytest.fixture
async def scenario_factory(harness: Harness) -> AsyncIterator[Callable[..., Scenario]]:
    made: list[Scenario] = []

    def make(*, api_key: bool = True) -> Scenario:
        now = datetime.now(UTC)
        names = [harness.state.sentinel.create_incident(
            harness.world.workspace, title=f"Crash burst {n}", severity="High",
            created=now - timedelta(minutes=5, seconds=n))["name"] for n in range(BURST)]
        # About crashes, not Sentinel's write limits (test_sentinel_write_limits.py): the burst's tags fit them.
        harness.state.sentinel.write_limits.configure(limits={"incidents": 10_000, "comments": 10_000})
        config = harness.tmp / "config.toml"
        config.write_text(harness.config_text(
            api_key=api_key, server={"host": "127.0.0.1", "port": 0},
            overrides={"filter": ONLY_BURST, "connector": {"poll_interval": "1s"},
                       "limits": {"incident_writes": 5_000, "comment_writes": 5_000}},
            # Enrichment is read-only and runs before anything is queued (a kill there loses nothing to recover);
            # off, each scenario saves seconds of alert and entity reads.
            extra_tables="[connectors.enrichment]\nenabled = false\n"), encoding="utf-8")
        store = open_store(f"sqlite:///{harness.tmp / 'state.db'}")
        made.append(Scenario(harness, store, config, names))
        return made[-1]

    yield make
    for scenario in made:
        await scenario.close()


@pytest.mark.parametrize("kill_at", [0.25, 0.75])
async def test_kill_9_while_sends_are_in_doubt_pages_each_incident_exactly_once(
        scenario_factory: Callable[..., Scenario], kill_at: float) -> None:
    s = scenario_factory()
    point = int(BURST * kill_at)
    hold = s.arm(path=WEBHOOK, method="POST", after=point)
    proc = s.start()
    doubtful = await s.kill_when_held(proc, hold, kind=ActionKind.RAISE_SIGNL,
                                      applied=lambda: len(s.harness.alerts()))
    assert len(s.harness.alerts()) == point + CONCURRENCY

    await s.recover()

    await s.assert_exactly_once()
    # The in-doubt rows were settled by looking the alert up by ExternalID, not by sending again.
    for key in doubtful:
        row = await s.store.get_action(key)
        assert row is not None and row.state is ActionState.DONE
        assert row.result is not None and row.result.get("reconciled") is True, f"{key}: {row.result}"


async def test_kill_9_at_an_arbitrary_moment_pages_each_incident_exactly_once(
        scenario_factory: Callable[..., Scenario]) -> None:
    # No hold: the kill lands wherever the connector happens to be (mid-send, mid-commit, between rows).
    s = scenario_factory()
    s.harness.state.faults.add(FaultRule(path=WEBHOOK, method="POST", kind="delay", phase="after", delay=SLOW))
    proc = s.start()
    await s.wait_until(f"{BURST // 2} alerts", lambda: len(s.harness.alerts()) >= BURST // 2, proc=proc)
    s.kill(proc)
    s.harness.state.faults.clear()
    assert len(await s.in_doubt()) <= CONCURRENCY

    await s.recover()

    await s.assert_exactly_once()


async def test_kill_9_during_tagging_tags_and_pages_each_incident_once(
        scenario_factory: Callable[..., Scenario]) -> None:
    s = scenario_factory()
    # Tags are written after every Signl of the pass was raised, so the tagging phase is the only one held.
    hold = s.arm(path=INCIDENT_PUT, method="PUT", after=BURST // 2)
    proc = s.start()
    await s.kill_when_held(proc, hold, kind=ActionKind.TAG_INCIDENT, applied=s.tagged)
    assert len(s.harness.alerts()) == BURST and s.tagged() == BURST // 2 + CONCURRENCY

    await s.recover()

    # A tag applied but unrecorded is read back on restart and not written twice (labels are checked for that).
    await s.assert_exactly_once()


async def test_kill_9_without_api_key_misses_nothing_and_duplicates_only_in_flight_sends(
        scenario_factory: Callable[..., Scenario]) -> None:
    s = scenario_factory(api_key=False)
    hold = s.arm(path=WEBHOOK, method="POST", after=BURST // 2)
    proc = s.start()
    doubtful = await s.kill_when_held(proc, hold, kind=ActionKind.RAISE_SIGNL,
                                      applied=lambda: len(s.harness.alerts()))
    in_flight_names = {s.external_ids()[row.payload["request"]["external_id"]] for row in doubtful.values()}

    await s.recover()

    # docs/decisions.md "Duplicate window without an API key": nothing is missed; a send that was in flight at the
    # crash cannot be checked without the REST API, so it is sent again and may page twice.
    s.assert_matching_set()
    ids, counts = s.external_ids(), s.alert_counts()
    missed = [ids[ext] for ext in ids if counts[ext] == 0]
    assert not missed, f"incidents never paged: {missed}"
    duplicated = {ids[ext] for ext in ids if counts[ext] > 1}
    assert duplicated <= in_flight_names, f"duplicates outside the in-flight sends: {duplicated - in_flight_names}"
    assert all(counts[ext] <= 2 for ext in ids), "an in-flight send was repeated more than once"
    assert len(duplicated) <= len(in_flight_names) <= CONCURRENCY
    assert sum(counts.values()) == BURST + len(duplicated)
    s.assert_all_tagged()
    await s.assert_clean_outbox()


async def test_sigterm_mid_burst_exits_cleanly_and_a_restart_completes_exactly_once(
        scenario_factory: Callable[..., Scenario]) -> None:
    s = scenario_factory()
    # Slow enough that the whole burst takes several seconds: a shutdown that waited for the backlog would show.
    s.harness.state.faults.add(FaultRule(path=WEBHOOK, method="POST", kind="delay", phase="after", delay=0.25))
    proc = s.start()
    await s.wait_until(f"{BURST // 10} alerts", lambda: len(s.harness.alerts()) >= BURST // 10, proc=proc)
    proc.send_signal(signal.SIGTERM)
    try:
        code = await asyncio.to_thread(proc.wait, DEADLINE)
    except subprocess.TimeoutExpired:
        pytest.fail(f"no exit within {DEADLINE:.0f} s of SIGTERM\n{s.log_tail()}")
    assert code == 0, f"exit code {code} after SIGTERM\n{s.log_tail()}"
    sent = len(s.harness.alerts())
    # Graceful: the sends in progress finished and were recorded (nothing in doubt), the backlog was left queued.
    assert await s.in_doubt() == {}, "a graceful stop left sends in doubt"
    assert sent < BURST, "SIGTERM waited for the whole backlog instead of stopping after the sends in progress"
    s.harness.state.faults.clear()

    # A plain restart (not --once): the stopped process released its lease, so this one takes over at once.
    proc = s.start()

    async def quiescent() -> bool:
        return len(s.harness.alerts()) >= BURST and s.tagged() >= BURST and await s.open_rows() == 0

    await s.wait_until("the restarted connector to finish the burst", quiescent, proc=proc)
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, DEADLINE) == 0, s.log_tail()
    await s.assert_exactly_once()


async def test_a_run_restarted_after_kill_9_takes_its_dead_predecessors_lease_over_at_once(
        scenario_factory: Callable[..., Scenario]) -> None:
    s = scenario_factory()
    s.harness.state.faults.add(FaultRule(path=WEBHOOK, method="POST", kind="delay", phase="after", delay=SLOW))
    proc = s.start()
    await s.wait_until(f"{BURST // 4} alerts", lambda: len(s.harness.alerts()) >= BURST // 4, proc=proc)
    s.kill(proc)
    s.harness.state.faults.clear()

    # A plain restart (not --once), as systemd or a container runtime does. The killed process's lease has a minute
    # to run, but its instance file's lock died with it: that is proof, so the lease is taken over at once (the
    # expiry path logs no take-over).
    proc = s.start()
    await s.wait_until("the restart to take the lease over", lambda: "lease_taken_over" in s.log_tail(400),
                       proc=proc)

    async def quiescent() -> bool:
        return len(s.harness.alerts()) >= BURST and s.tagged() >= BURST and await s.open_rows() == 0

    await s.wait_until("the restarted connector to finish the burst", quiescent, proc=proc)
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, DEADLINE) == 0, s.log_tail()
    await s.assert_exactly_once()
