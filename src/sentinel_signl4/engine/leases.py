"""Who runs a connector: a lease in the store, held by one replica (``host:pid:nonce``) at a time.

A replica that died on *this* host (kill -9, OOM, a crash loop under systemd) is known to be dead — its PID is gone,
or it is our own PID from a previous incarnation (PID 1 in a container) — so its lease is taken over at once instead
of after expiry. A lease held from another host is only ever taken when it has expired.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime

import structlog

from sentinel_signl4.store import StateStore

__all__ = ["claim_lease", "holder_is_dead_here", "replica_id"]

log = structlog.get_logger("sentinel_signl4.leases")


def replica_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_is_dead_here(holder: str, me: str) -> bool:
    """True when ``holder`` is a process of this host that no longer runs (never for another host's replica)."""
    try:
        host, pid_text, _nonce = holder.rsplit(":", 2)
        my_host, my_pid, _ = me.rsplit(":", 2)
        pid = int(pid_text)
    except ValueError:
        return False
    if holder == me or host != my_host or pid <= 0:
        return False
    if str(pid) == my_pid:
        return True  # same PID, other nonce: an earlier incarnation of this very process slot (e.g. PID 1)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, owned by another user
    return False


async def claim_lease(store: StateStore, name: str, owner: str, now: datetime, ttl: float) -> bool:
    """Take or renew ``name``; take it over from a dead holder on this host. False while someone else holds it."""
    if await store.acquire_lease(name, owner, now, ttl):
        return True
    holder = await store.lease_holder(name)
    if holder is not None and holder_is_dead_here(holder, owner):
        taken = await store.take_over_lease(name, holder, owner, now, ttl)
        if taken:
            log.info("lease_taken_over", lease=name, from_owner=holder, reason="holder process is gone")
        return taken
    return False
