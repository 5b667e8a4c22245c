"""What the parent of ``run --workers N`` and its worker processes say to each other, and who runs which connector.

* **Partition**: connector ``name`` belongs to worker ``partition_of(name, count)``, a stable hash (the same in every
  process and every run, unlike Python's ``hash``), so a restarted worker serves the same connectors and its
  replacement finds its leases. The leases stay the guard: a worker runs a connector only while it holds its lease.
* **Wake** (parent → worker, the worker's stdin): one connector name per line; a SIGNL4 webhook arrived for it.
  End of input means the parent is gone: the worker stops.
* **Health** (worker → parent, the worker's stdout): one line per changed connector health, ``HEALTH_PREFIX`` and a
  JSON object; the parent copies it onto its own ``ConnectorHealth`` so that probes, the status page and
  ``s4s_connector_up`` show every connector. Logs go to stderr, so nothing else is expected on stdout; a line
  without the prefix is ignored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog

from sentinel_signl4.config import Config
from sentinel_signl4.engine.health import ConnectorHealth, HealthState

__all__ = ["HEALTH_PREFIX", "apply_health", "health_line", "health_snapshot", "partition", "partition_of"]

log = structlog.get_logger("sentinel_signl4.workers")

HEALTH_PREFIX = "s4s-health "

_TIMES = ("since", "last_cycle_at", "last_success_at", "failing_since", "oldest_pending_at")


def partition_of(name: str, count: int) -> int:
    """The worker (0 … ``count`` − 1) that runs connector ``name``."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


def partition(config: Config, index: int, count: int, *, state_dir: str | None = None) -> Config:
    """``config`` with only the connectors of worker ``index`` of ``count`` (the rest is unchanged); ``state_dir``:
    where the workers register their instance files when the config names no directory (PostgreSQL)."""
    mine = [c for c in config.connectors if partition_of(c.name, count) == index]
    update: dict[str, Any] = {"connectors": mine}
    if state_dir is not None and not config.store.state_dir:
        update["store"] = config.store.model_copy(update={"state_dir": state_dir})
    return config.model_copy(update=update)


def health_snapshot(health: ConnectorHealth) -> dict[str, Any]:
    """The public fields of ``health`` as JSON values (the reason is already free of secrets: it is what the status
    page shows, redacted there as here)."""
    snapshot: dict[str, Any] = {"connector": health.connector, "state": health.state.value, "reason": health.reason,
                                "dead_letters": health.dead_letters, "cycles": health.cycles}
    for name in _TIMES:
        value: datetime | None = getattr(health, name)
        snapshot[name] = value.isoformat() if value is not None else None
    return snapshot


def health_line(snapshot: dict[str, Any]) -> str:
    return HEALTH_PREFIX + json.dumps(snapshot, separators=(",", ":")) + "\n"


def apply_health(line: str, find: Callable[[str], ConnectorHealth | None]) -> str | None:
    """Copy the snapshot in ``line`` onto ``find(connector)`` (a ``ConnectorHealth`` or None) and tell its listener
    (metrics). Returns the connector's name, or None for a line that is not a health report."""
    if not line.startswith(HEALTH_PREFIX):
        return None
    try:
        data = json.loads(line[len(HEALTH_PREFIX):])
        name, state = str(data["connector"]), HealthState(data["state"])
    except (ValueError, KeyError, TypeError):
        return None
    health = find(name)
    if health is None:
        return name
    health.state, health.reason = state, data.get("reason")
    health.dead_letters, health.cycles = int(data.get("dead_letters") or 0), int(data.get("cycles") or 0)
    for field_name in _TIMES:
        raw = data.get(field_name)
        setattr(health, field_name, datetime.fromisoformat(raw) if isinstance(raw, str) else None)
    if health.on_update is not None:
        try:
            health.on_update(health)
        except Exception:  # reporting must never break the parent
            log.exception("health_listener_failed", connector=name)
    return name
