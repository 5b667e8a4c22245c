"""Fencing with real processes: a replica frozen with SIGSTOP past its lease TTL, while another replica took the
connector over, and then resumed with SIGCONT, cannot start a send or record work; no incident pages twice and
none is missed. On SQLite and on PostgreSQL.

The moment is placed with fault rules, not sleeps: SIGNL4 answers the first sends at once, then applies every
later send and holds its answer. Replica A is frozen once its whole outbox concurrency is stuck there (rows IN_FLIGHT
in the store, Signls applied). Replica B takes the lease when A's expires, settles A's in-doubt rows by ExternalID
lookup and gets stuck on its own held sends, rows still open. Only then is A resumed: its held sends time out and
every write it tries is refused (``LeaseLostError``: another replica holds a newer epoch), and it sends nothing more.
Without fencing, A would go on with the rows of its stale pass, B's open ones included (each replica's Signls carry
its own service name, so the test counts what A sent).
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator

import pytest

from crash_support import CONCURRENCY, HOLD, SLOW
from integration_harness import Harness
from replica_support import LEASE, ReplicaSet
from sentinel_signl4.store.factory import open_store
from sentinel_signl4_emulators.common.faults import FaultRule
from store_fixtures import any_store_url  # noqa: F401 - fixture

pytestmark = pytest.mark.slow

WEBHOOK = r"^/webhook/"
BURST = 24
ANSWERED = 6  # sends answered before the hold starts
TTL = 3.0
# Held sends end by timing out, A's once it is resumed and B's once the test lets go: 5 s per request instead of the
# product's 15 s, which the test would otherwise sit through twice. Each replica is checked (and A frozen) within
# milliseconds of its sends being held, long before they could time out.
REQUEST_TIMEOUT = 5.0


@pytest.fixture
async def replicas(harness: Harness, any_store_url: str) -> AsyncIterator[ReplicaSet]:  # noqa: F811
    store = open_store(any_store_url)
    await store.migrate()
    made = ReplicaSet.build(harness, store, any_store_url, incidents=BURST, ttl=TTL, poll="0.5s",
                          request_timeout=REQUEST_TIMEOUT)
    yield made
    await made.close()


async def test_a_replica_resumed_after_a_pause_past_its_ttl_pages_nothing_twice(replicas: ReplicaSet) -> None:
    r = replicas
    faults = r.harness.state.faults
    faults.add(FaultRule(path=WEBHOOK, method="POST", kind="delay", phase="after", delay=SLOW, count=ANSWERED))
    hold = faults.add(FaultRule(path=WEBHOOK, method="POST", kind="delay", phase="after", delay=HOLD))

    a = await r.start()
    await r.wait_until("A to hold the lease", lambda: r.held_by(a))
    b = await r.start()
    await r.wait_until(f"A stuck on {CONCURRENCY} held sends", lambda: r.stuck(hold, CONCURRENCY))
    first = await r.store.get_lease(LEASE)
    assert first is not None and first.owner == a.id

    assert r.sent_by(a) == ANSWERED + CONCURRENCY
    os.kill(a.proc.pid, signal.SIGSTOP)
    await r.wait_until("B to take the lease over once A's expired", lambda: r.held_by(b))
    await r.wait_until(f"B stuck on {CONCURRENCY} held sends of its own", lambda: r.stuck(hold, 2 * CONCURRENCY))
    taken = await r.store.get_lease(LEASE)
    assert taken is not None and taken.epoch > first.epoch

    os.kill(a.proc.pid, signal.SIGCONT)
    await r.wait_until("A to find its lease lost", lambda: "LeaseLostError" in a.text())
    faults.clear()
    await r.wait_until("every incident paged and the outbox quiet", r.all_paged_and_quiet)

    await r.assert_exactly_once()
    assert "lease_lost" in a.text()
    assert await r.holder() == b.id
    # Nothing A sent after it was resumed: its Signls are the ones it had sent before the pause.
    assert r.sent_by(a) == ANSWERED + CONCURRENCY, r.logs()
