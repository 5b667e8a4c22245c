"""One connector: ``run_once(now)`` is the deterministic single step that tests and the supervisor call."""

from __future__ import annotations

from datetime import datetime

import structlog

from sentinel_signl4.clients.errors import RemoteError
from sentinel_signl4.domain import ActionKind, ActionState
from sentinel_signl4.engine.forward import ForwardPath
from sentinel_signl4.engine.health import ConnectorHealth
from sentinel_signl4.engine.outbox import Handler, OutboxWorker
from sentinel_signl4.engine.report import PollReport
from sentinel_signl4.metrics import Metrics
from sentinel_signl4.store import StateStore

__all__ = ["ConnectorRuntime"]

log = structlog.get_logger("sentinel_signl4.connector")


class ConnectorRuntime:
    def __init__(self, name: str, *, store: StateStore, forward: ForwardPath, metrics: Metrics,
                 extra_handlers: dict[ActionKind, Handler] | None = None, max_attempts: int = 25) -> None:
        self.name = name
        self.store = store
        self.forward = forward
        self.metrics = metrics
        handlers: dict[ActionKind, Handler] = {
            ActionKind.RAISE_SIGNL: forward.raise_signl,
            ActionKind.TAG_INCIDENT: forward.tag_incident,
        }
        handlers.update(extra_handlers or {})
        self.outbox = OutboxWorker(name, store, handlers, max_attempts=max_attempts)
        self.health = ConnectorHealth(name)

    async def run_once(self, now: datetime) -> PollReport:
        """Poll once, then perform every due side effect. Never raises a ``RemoteError``: it lands in health."""
        report = PollReport(self.name)
        poll_error: RemoteError | None = None
        try:
            await self.forward.poll(now, report)
        except RemoteError as exc:
            # Keep going: rows queued earlier (or in-doubt sends) must still be worked off.
            poll_error = exc
            report.errors.append(f"poll: {exc.message}")
        await self.outbox.drain(now, report)
        counts = await self.store.count_actions(self.name)
        self.metrics.outbox_pending.labels(self.name).set(
            counts.get(ActionState.PENDING, 0) + counts.get(ActionState.IN_FLIGHT, 0))
        error = poll_error or self.outbox.last_config_error
        self.outbox.last_config_error = None
        if error is not None:
            self.health.failed(now, f"{type(error).__name__}: {error.message}")
            self.metrics.connector_up.labels(self.name).set(0)
        else:
            self.health.ok(now)
            self.metrics.connector_up.labels(self.name).set(1)
        return report
