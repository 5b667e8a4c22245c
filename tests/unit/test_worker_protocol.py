"""What ``run --workers N`` relies on: a partition that is stable and covers every connector once, and health
reports that carry a connector's state from a worker to the parent unchanged."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from sentinel_signl4.engine.health import ConnectorHealth, CycleOutcome, HealthState
from sentinel_signl4.worker_protocol import apply_health, health_line, health_snapshot, partition_of


def test_the_partition_is_a_stable_hash_that_spreads_connectors_evenly() -> None:
    names = [f"tenant-{n:04d}" for n in range(1000)]
    # Fixed values: the same in every process and run (Python's own hash is salted per process).
    assert [partition_of(name, 4) for name in ("contoso", "fabrikam", "tenant-0001")] == [0, 3, 3]
    assert partition_of("contoso", 1) == 0
    spread = Counter(partition_of(name, 4) for name in names)
    assert set(spread) == {0, 1, 2, 3} and min(spread.values()) > 200, spread


def test_a_health_report_reproduces_the_workers_state_on_the_parent() -> None:
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    worker = ConnectorHealth("contoso")
    worker.record(now, CycleOutcome(transient_error="sentinel: 503", oldest_pending_at=now - timedelta(minutes=1)))
    updates: list[HealthState] = []
    parent = ConnectorHealth("contoso", on_update=lambda h: updates.append(h.state))
    assert apply_health(health_line(health_snapshot(worker)), {"contoso": parent}.get) == "contoso"
    assert health_snapshot(parent) == health_snapshot(worker)
    assert parent.state is HealthState.DEGRADED and parent.reason == "sentinel: 503"
    assert updates == [HealthState.DEGRADED]  # the parent's metrics are told


def test_lines_that_are_not_health_reports_are_ignored() -> None:
    parent = ConnectorHealth("contoso")
    assert apply_health("some library printed this\n", {"contoso": parent}.get) is None
    assert apply_health("s4s-health {not json\n", {"contoso": parent}.get) is None
    assert apply_health('s4s-health {"connector": "contoso", "state": "bogus"}\n', {"contoso": parent}.get) is None
    assert parent.state is HealthState.STARTING
