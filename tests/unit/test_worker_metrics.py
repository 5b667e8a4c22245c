"""The parent's ``/metrics`` under ``run --workers N`` with the series its workers write (``worker_metrics``): real
worker-side processes (``python -c`` in prometheus-client's multiprocess mode) write the files, the parent's
``Metrics`` reads them. Counters and histograms are summed over live and dead workers, a worker's outbox gauge
leaves with it, and the workers' copies of the health gauges are never added to the parent's own."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from sentinel_signl4.engine.health import ConnectorHealth, HealthState
from sentinel_signl4.metrics import Metrics
from sentinel_signl4.worker_metrics import forget_worker, worker_environment

WORKER = textwrap.dedent("""
    import os, sys
    from sentinel_signl4.engine.health import ConnectorHealth, HealthState
    from sentinel_signl4.metrics import Metrics
    name, pages, pending = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    m = Metrics()
    m.actions.labels(name, "raise_signl", "done").inc(pages)
    m.remote_retries.labels("signl4").inc()
    m.page_latency.labels(name).observe(3.0)
    if pending >= 0:
        m.outbox_pending.labels(name).set(pending)
    health = ConnectorHealth(name)
    health.state = HealthState.OK
    m.publish_health(health)
    print(os.getpid())
""")


def run_worker(directory: Path, name: str, pages: int, pending: int) -> int:
    """One short-lived worker-side process that records ``pages`` pages of ``name`` and, unless negative, its
    ``pending`` rows; returns its PID."""
    done = subprocess.run([sys.executable, "-c", WORKER, name, str(pages), str(pending)], check=True,
                          capture_output=True, text=True, env=worker_environment(directory), timeout=120)
    return int(done.stdout.strip())


def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = metrics.exposition().decode()
    names = [f.name for f in text_string_to_metric_families(text)]
    assert len(names) == len(set(names)), f"a family is exposed twice: {names}"
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def test_counters_and_histograms_add_up_over_workers_dead_and_alive(tmp_path: Path) -> None:
    parent = Metrics()
    parent.include_workers(tmp_path)
    parent.remote_retries.labels("signl4").inc()  # the parent's own count is added, not replaced
    first = run_worker(tmp_path, "tenant0", pages=2, pending=5)
    before = samples(parent)
    assert before[key("s4s_outbox_pending", connector="tenant0")] == 5
    forget_worker(tmp_path, first)  # it exited, like a worker killed with kill -9
    after = samples(parent)
    # Its gauge left with it; its counts stay, folded into the exited workers' file, its own files are gone.
    assert key("s4s_outbox_pending", connector="tenant0") not in after
    assert {k: v for k, v in before.items() if k[0] != "s4s_outbox_pending"} == after
    assert not list(tmp_path.glob(f"*_{first}.db")) and (tmp_path / "counter_exited.db").exists()
    second = run_worker(tmp_path, "tenant0", pages=3, pending=-1)  # its replacement, before its first figures
    forget_worker(tmp_path, second)  # died too: folded onto the first one's counts
    run_worker(tmp_path, "tenant0", pages=0, pending=-1)  # and the next one runs
    run_worker(tmp_path, "tenant1", pages=4, pending=0)  # another worker's connector

    seen = samples(parent)
    assert seen[key("s4s_actions_total", connector="tenant0", kind="raise_signl", outcome="done")] == 5
    assert seen[key("s4s_actions_total", connector="tenant1", kind="raise_signl", outcome="done")] == 4
    assert seen[key("s4s_remote_retries_total", service="signl4")] == 5
    assert seen[key("s4s_page_latency_seconds_count", connector="tenant0")] == 3
    assert seen[key("s4s_page_latency_seconds_bucket", connector="tenant0", le="5.0")] == 3
    assert seen[key("s4s_page_latency_seconds_bucket", connector="tenant0", le="2.0")] == 0
    assert seen[key("s4s_page_latency_seconds_bucket", connector="tenant0", le="+Inf")] == 3
    assert seen[key("s4s_page_latency_seconds_sum", connector="tenant0")] == 9.0
    # The dead worker's gauge left with it; a live one is shown once, without a pid label.
    assert key("s4s_outbox_pending", connector="tenant0") not in seen
    assert seen[key("s4s_outbox_pending", connector="tenant1")] == 0
    assert not [k for k in seen if dict(k[1]).get("pid")]


def test_health_gauges_are_the_parents_alone(tmp_path: Path) -> None:
    parent = Metrics()
    parent.include_workers(tmp_path)
    run_worker(tmp_path, "tenant0", pages=1, pending=0)  # its health says ok
    health = ConnectorHealth("tenant0")
    health.state = HealthState.ERROR
    parent.publish_health(health)  # the parent's copy says error (a later report)

    seen = samples(parent)
    assert seen[key("s4s_connector_up", connector="tenant0")] == 0
    assert seen[key("s4s_connector_state", connector="tenant0", state="error")] == 1
    assert seen[key("s4s_connector_state", connector="tenant0", state="ok")] == 0


def test_without_workers_the_exposition_is_the_registrys(tmp_path: Path) -> None:
    run_worker(tmp_path, "tenant0", pages=7, pending=0)
    alone = Metrics()  # never told about the directory
    alone.actions.labels("tenant0", "raise_signl", "done").inc()
    seen = samples(alone)
    assert seen[key("s4s_actions_total", connector="tenant0", kind="raise_signl", outcome="done")] == 1
