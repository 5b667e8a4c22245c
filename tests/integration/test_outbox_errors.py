"""Outbox errors tell their cause and stay local: a row another worker finished meanwhile (the store's per-row
guard, ``ActionClosedError``) does not abort the other rows of the pass, and a row that cannot be read is a dead
letter saying why while the other rows go out. (Describing a crash by its underlying error, never "ExceptionGroup:
unhandled errors in a TaskGroup", is ``tests/unit/test_failures.py``.)"""

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
        # Within the poll's overlap: an incident stamped further back than the last read of changes minus the
        # overlap is, to the connector, one that was there before and is left to the full scan.
        created=now - timedelta(minutes=1, seconds=n))["name"] for n in range(count)]


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


async def test_an_unreadable_row_is_a_dead_letter_with_its_reason_and_the_other_rows_still_go_out(
        harness: Harness) -> None:
    s = await start(harness, api_key=False)
    runtime = s.runtime
    # A row the handler cannot read (written by a newer version, or by hand). It used to crash its task and stay
    # in flight for ever; it is a dead letter now, kept with its payload and the reason.
    await runtime.store.enqueue(OutboxAction(
        key="contoso|bogus-update", connector="contoso", kind=ActionKind.UPDATE_INCIDENT,
        incident_id=s.resource_id, payload={"op": "teleport"}), datetime.now(UTC))
    names = seed(harness, 2, "Alongside")
    reports = await runtime.supervisor().run_each_once()

    report = reports["contoso"]
    assert report is not None and report.errors == [], report.errors
    assert report.dead[ActionKind.UPDATE_INCIDENT] == 1
    assert signls_per_incident(harness, names) == [1, 1]
    row = await runtime.store.get_action("contoso|bogus-update")
    assert row is not None and row.state is ActionState.DEAD
    assert row.last_error == "unreadable payload: unknown update op 'teleport'", row.last_error
    assert dict(row.payload) == {"op": "teleport"}
    assert await runtime.store.list_actions("contoso", states=[ActionState.IN_FLIGHT]) == []
    health = s.connector.health
    assert health.error is None or ("TaskGroup" not in health.error and "ExceptionGroup" not in health.error)
