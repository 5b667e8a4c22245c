"""Two replicas that look alike to every PID-based rule: each is PID 1 in a PID namespace of its own, under one host
name (what two containers with host networking are), sharing one store. Neither may take the other's lease, and
each incident pages exactly once.

Built with ``unshare --pid --fork --uts --mount-proc`` (root, as in CI). Skipped with the reason when namespaces
cannot be created here, except when ``CI=true``: there it fails, so the case is never silently untested.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from integration_harness import Harness
from replica_support import LEASE, ReplicaSet
from sentinel_signl4.store.factory import open_store
from store_fixtures import any_store_url  # noqa: F401 - fixture

pytestmark = pytest.mark.slow

HOST = "replica-host"
# --kill-child: when the test kills unshare, the replica (PID 1 of its namespace) dies with it.
UNSHARE = ["unshare", "--pid", "--fork", "--uts", "--mount-proc", "--kill-child"]
# Inside: one host name for both, then exec the replica so that it, not the shell, is PID 1.
PREFIX = [*UNSHARE, "sh", "-c", f'hostname {HOST} && exec "$@"', "sh"]


def _namespaces_or_skip() -> list[str]:
    try:
        probe = subprocess.run([*UNSHARE, "true"], capture_output=True, text=True, timeout=30, check=False)
        reason = f"unshare exited {probe.returncode}: {probe.stderr.strip()}" if probe.returncode else ""
    except FileNotFoundError:
        reason = "unshare is not installed"
    if not reason:
        return PREFIX
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"cannot create PID/UTS namespaces ({reason}); this test must run when CI=true")
    pytest.skip(f"cannot create PID/UTS namespaces here ({reason}); run as root (CI does)")


@pytest.fixture
async def replicas(harness: Harness, any_store_url: str) -> AsyncIterator[ReplicaSet]:  # noqa: F811
    store = open_store(any_store_url)
    await store.migrate()
    made = ReplicaSet.build(harness, store, any_store_url, incidents=40, ttl=30.0, poll="0.2s")
    yield made
    await made.close()


async def test_two_pid_1_replicas_under_one_host_name_never_take_each_others_lease(replicas: ReplicaSet) -> None:
    r = replicas
    prefix = _namespaces_or_skip()
    a, b = await r.start_together(2, prefix)
    assert (a.info["pid"], b.info["pid"]) == (1, 1), "each replica should be PID 1 of its own namespace"
    assert a.info["host"] == b.info["host"] == HOST
    assert a.id != b.id

    await r.wait_until("every incident paged and the outbox quiet", r.all_paged_and_quiet)
    first = await r.store.get_lease(LEASE)
    assert first is not None and first.owner in (a.id, b.id)
    standby = b if first.owner == a.id else a
    # Let the replica without the lease try again and again: the holder renews at every poll (0.2 s), so two
    # seconds of renewals are ten claims or so by the other one, each of which used to take the lease over.
    target = first.expires_at + timedelta(seconds=2)

    async def renewed() -> bool:
        lease = await r.store.get_lease(LEASE)
        return lease is not None and (lease.owner != first.owner or lease.expires_at >= target)

    await r.wait_until("the holder to renew its lease for two more seconds", renewed)
    last = await r.store.get_lease(LEASE)
    assert last is not None
    assert (last.owner, last.epoch) == (first.owner, 1), f"the lease changed hands: {first} -> {last}\n{r.logs()}"
    assert "connector_standby" in standby.text()
    await r.assert_exactly_once()
