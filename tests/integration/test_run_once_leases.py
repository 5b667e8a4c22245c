"""``run --once`` takes the connector's lease: it never runs a connector a live replica holds, but takes over at once
from a replica that provably died (its instance file's lock is free), so recovery after ``kill -9`` need not wait
for the lease to expire. Sharing a host name and a PID with the holder proves nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from integration_harness import Harness
from sentinel_signl4.bootstrap import instance_directory
from sentinel_signl4.engine.health import HealthState
from sentinel_signl4.engine.instances import InstanceRegistry

LEASE = "connector:contoso"

# A replica that registers in argv[2], takes the lease of the store at argv[1] for 10 minutes, says so, and waits
# (the test then kills it with SIGKILL: no release, no clean-up, exactly like a crash).
_HOLD_LEASE = """
import asyncio, sys
from datetime import UTC, datetime
from pathlib import Path
from sentinel_signl4.engine.instances import InstanceRegistry
from sentinel_signl4.engine.leases import replica_id
from sentinel_signl4.store.factory import open_store

async def main() -> None:
    registration = InstanceRegistry(Path(sys.argv[2])).register(replica_id())
    store = open_store(sys.argv[1])
    lease = await store.acquire_lease(sys.argv[3], registration.replica, datetime.now(UTC), 600)
    assert lease is not None
    print(registration.replica, flush=True)
    await asyncio.to_thread(sys.stdin.read)

asyncio.run(main())
"""


def _start_holder(store_url: str, directory: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", _HOLD_LEASE, store_url, str(directory), LEASE],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


async def _replica_holding_the_lease(store_url: str, directory: Path) -> tuple[subprocess.Popen[str], str]:
    proc = _start_holder(store_url, directory)
    assert proc.stdout is not None
    holder = (await asyncio.to_thread(proc.stdout.readline)).strip()
    assert holder, "the holder process did not start"
    return proc, holder


async def test_run_once_leaves_a_connector_held_by_a_live_replica_alone(harness: Harness) -> None:
    runtime = await harness.runtime()
    directory = instance_directory(runtime.config)
    assert directory is not None
    proc, holder = await _replica_holding_the_lease(runtime.config.store.url, directory)
    try:
        reports = await runtime.supervisor().run_each_once()
        assert reports == {"contoso": None}
        assert runtime.connectors["contoso"].runtime.health.state is HealthState.STANDBY
        assert harness.alerts() == []
        assert await runtime.store.lease_holder(LEASE) == holder
    finally:
        proc.kill()
        await asyncio.to_thread(proc.wait)


async def test_run_once_takes_over_at_once_from_a_replica_killed_with_sigkill(harness: Harness) -> None:
    runtime = await harness.runtime()
    directory = instance_directory(runtime.config)
    assert directory is not None
    proc, holder = await _replica_holding_the_lease(runtime.config.store.url, directory)
    os.kill(proc.pid, signal.SIGKILL)
    await asyncio.to_thread(proc.wait)
    assert InstanceRegistry(directory).proven_dead(holder)
    reports = await runtime.supervisor().run_each_once()
    report = reports["contoso"]
    assert report is not None and report.enqueued
    assert harness.alerts()


async def test_a_holder_with_our_host_name_and_pid_but_no_proof_is_not_taken_over(harness: Harness) -> None:
    # What two containers with host networking, both PID 1, look like to each other: same host, same PID. The old
    # rule ("same PID, other nonce: an earlier incarnation of us") took such a lease from a live replica.
    runtime = await harness.runtime()
    lookalike = f"{socket.gethostname()}:{os.getpid()}:{'0' * 16}"
    assert await runtime.store.acquire_lease(LEASE, lookalike, datetime.now(UTC), 600) is not None
    reports = await runtime.supervisor().run_each_once()
    assert reports == {"contoso": None}
    assert await runtime.store.lease_holder(LEASE) == lookalike
    assert harness.alerts() == []
