"""Outbox errors tell their cause and stay local: a row another worker finished meanwhile (the store's per-row
guard, ``ActionClosedError``) does not abort the other rows of the pass, and a cycle that crashes reports the
underlying error, never "ExceptionGroup: unhandled errors in a TaskGroup"."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from integration_harness import Harness
from sentinel_signl4.domain import ActionKind, ActionState, external_id_for
from sentinel_signl4.engine.report import PollReport
from sentinel_signl4.store import OutboxAction
from sync_support import start

ONLY_BURST = {"severities": ["High"], "max_age": "15m"}


def seed(harness: Harness, count: int, label: str) -> list[str]:
    now = datetime.now(UTC)
    return [harness.state.sentinel.create_incident(
        harness.world.workspace, title=f"{label} {n}", severity="High",
        created=now - timedelta(minutes=5, seconds=n))["name"] for n in range(count)]


def signls_per_incident(harness: Harness, names: list[str]) -> list[int]:
    incidents = {i["name"]: i for i in harness.incidents()}
    counts = Counter(a.external_id for a in harness.alerts())
    return [counts[external_id_for("contoso", incidents[name]["id"])] for name in names]


async def test_a_row_another_worker_finished_does_not_abort_the_other_rows_of_the_pass(harness: Harness) -> None:
    first = seed(harness, 3, "Early")
    worker_a = (await harness.runtime(overrides={"filter": ONLY_BURST})).connectors["contoso"].runtime
    worker_b = (await harness.runtime(overrides={"filter": ONLY_BURST})).connectors["contoso"].runtime
    now = datetime.now(UTC)
    await worker_a.forward.poll(now, PollReport("contoso"))
    # Worker B reads the due rows; before it starts them, worker A performs them all (two replicas that both
    # believe they hold the connector, or a pass that outlived its lease).
    stale = await worker_b.store.due_actions("contoso", now, 100)
    assert {row.kind for row in stale} == {ActionKind.RAISE_SIGNL}
    await worker_a.outbox.drain(now, PollReport("contoso"))
    later = seed(harness, 2, "Later")
    await worker_b.forward.poll(now, PollReport("contoso"))
    fresh = [row for row in await worker_b.store.due_actions("contoso", now, 100)
             if row.key not in {s.key for s in stale}]
    report = PollReport("contoso")
    await worker_b.outbox._run_rows([*stale, *fresh], now, report)  # the pass B was about to run

    assert signls_per_incident(harness, first) == [1, 1, 1]
    assert signls_per_incident(harness, later) == [1, 1], "the rows after the finished ones were aborted"
    assert report.done[ActionKind.RAISE_SIGNL] >= 2
    assert any("ActionClosedError" in error and "already done" in error for error in report.errors), report.errors


async def test_a_crashing_cycle_reports_the_underlying_error_and_the_other_rows_still_go_out(
        harness: Harness) -> None:
    s = await start(harness, api_key=False)
    runtime = s.runtime
    # A row the handler cannot perform (written by a newer version, or by hand): a plain ValueError in one task.
    await runtime.store.enqueue(OutboxAction(
        key="contoso|bogus-update", connector="contoso", kind=ActionKind.UPDATE_INCIDENT,
        incident_id=s.resource_id, payload={"op": "teleport"}), datetime.now(UTC))
    names = seed(harness, 2, "Alongside")
    reports = await runtime.supervisor().run_each_once()

    health = s.connector.health
    assert health.error is not None
    assert "ValueError: unknown update op 'teleport'" in health.error, health.error
    assert "TaskGroup" not in health.error and "ExceptionGroup" not in health.error
    report = reports["contoso"]
    assert report is not None  # the outbox pass failed, the cycle still finished and reported it …
    assert report.errors == ["outbox: ValueError: unknown update op 'teleport'"], report.errors
    assert signls_per_incident(harness, names) == [1, 1]  # … after every other row of the pass was performed
    in_flight = [row.key for row in await runtime.store.list_actions("contoso", states=[ActionState.IN_FLIGHT])]
    assert in_flight == ["contoso|bogus-update"], "rows of other incidents were cancelled mid-attempt"
