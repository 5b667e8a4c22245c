"""Who runs a connector: a lease in the store, held by one replica at a time, and the fence its writes carry.

* Identity: ``replica_id()`` is ``host:pid:nonce`` with a random 64-bit nonce, so it is unique even between
  replicas that share a host name and a PID (containers with host networking are all PID 1; two supervisors in
  one process share both). Host and PID are there for people reading logs; nothing infers anything from them.
* Early take-over: a lease is taken before it expires only from a holder *proven* dead through its instance file
  (``engine.instances``: registered in our state directory, and its ``flock`` is free). Never from PIDs. Without
  that proof (another host, no shared state directory) the lease has to expire.
* Fencing: every acquisition increments the lease's epoch; the cycle run under it gets a ``Fence`` (lease, owner,
  epoch), bound for the cycle with ``fenced``. The store checks it in the transaction of every outbox and inbox
  state change, so a replica paused past its TTL (SIGSTOP, a frozen VM) and then resumed cannot start a send or
  record work once another replica took over: it gets ``LeaseLostError`` and stops its cycle.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from datetime import datetime

import structlog

from sentinel_signl4.engine.instances import InstanceRegistry
from sentinel_signl4.store import Fence, Lease, StateStore

__all__ = ["claim_lease", "current_fence", "fence_for", "fenced", "replica_id"]

log = structlog.get_logger("sentinel_signl4.leases")

_FENCE: ContextVar[Fence | None] = ContextVar("sentinel_signl4_fence", default=None)


def replica_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:16]}"


async def claim_lease(store: StateStore, name: str, owner: str, now: datetime, ttl: float, *,
                      instances: InstanceRegistry | None = None) -> Lease | None:
    """Take or renew ``name``; take it over early only from a holder ``instances`` proves dead. None while another
    replica holds it."""
    lease = await store.acquire_lease(name, owner, now, ttl)
    if lease is not None or instances is None:
        return lease
    holder = await store.lease_holder(name)
    if holder is None or holder == owner or not instances.proven_dead(holder):
        return None
    lease = await store.take_over_lease(name, holder, owner, now, ttl)
    if lease is not None:
        log.info("lease_taken_over", lease=name, from_owner=holder, epoch=lease.epoch,
                 reason="the holder's instance lock is free: it has exited")
    return lease


def fence_for(lease: Lease, clock: Callable[[], datetime]) -> Fence:
    return Fence(lease.name, lease.owner, lease.epoch, clock)


def current_fence() -> Fence | None:
    """The fence of the cycle this code runs in (None outside a leased cycle: tests, one-off commands)."""
    return _FENCE.get()


@contextlib.contextmanager
def fenced(fence: Fence | None) -> Iterator[None]:
    """Bind ``fence`` to this task (and the tasks it starts) for the duration of the block."""
    token = _FENCE.set(fence)
    try:
        yield
    finally:
        _FENCE.reset(token)
