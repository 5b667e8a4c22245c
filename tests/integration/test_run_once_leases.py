"""``run --once`` takes the connector's lease: it never runs a connector a live ``run`` holds, but takes over at
once from a process of this host that died (so recovery after ``kill -9`` need not wait for the lease to expire)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime

from integration_harness import Harness

from sentinel_signl4.engine.health import HealthState


async def test_run_once_leaves_a_connector_held_by_a_live_replica_alone(harness: Harness) -> None:
    runtime = await harness.runtime()
    live_other = f"{socket.gethostname()}:{os.getppid()}:0a0a0a0a"
    assert await runtime.store.acquire_lease("connector:contoso", live_other, datetime.now(UTC), 600)
    reports = await runtime.supervisor().run_each_once()
    assert reports == {"contoso": None}
    assert runtime.connectors["contoso"].runtime.health.state is HealthState.STANDBY
    assert harness.alerts() == []
    assert await runtime.store.lease_holder("connector:contoso") == live_other


async def test_run_once_takes_over_from_a_dead_process_of_this_host(harness: Harness) -> None:
    runtime = await harness.runtime()
    dead = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", "import os; print(os.getpid())"],
                                   capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout.strip())
    await runtime.store.acquire_lease("connector:contoso", f"{socket.gethostname()}:{dead_pid}:0b0b0b0b",
                                      datetime.now(UTC), 600)
    reports = await runtime.supervisor().run_each_once()
    assert reports["contoso"] is not None and reports["contoso"].enqueued
    assert harness.alerts()
