"""One connector: ``run_once(now)`` is the deterministic single step that tests and the supervisor call."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import structlog

from sentinel_signl4.clients.errors import RemoteError
from sentinel_signl4.domain import ActionKind, ActionState
from sentinel_signl4.engine.forward import ForwardPath
from sentinel_signl4.engine.health import ConnectorHealth
from sentinel_signl4.engine.outbox import Handler, OutboxWorker
from sentinel_signl4.engine.report import PollReport
from sentinel_signl4.engine.reverse import ReversePath
from sentinel_signl4.engine.signl4_poll import Signl4Poller
from sentinel_signl4.metrics import Metrics
from sentinel_signl4.store import LeaseLostError, StateStore

__all__ = ["ConnectorRuntime"]

log = structlog.get_logger("sentinel_signl4.connector")

RECONCILE_CURSOR = "reconciled_at"


class ConnectorRuntime:
    def __init__(self, name: str, *, store: StateStore, forward: ForwardPath, metrics: Metrics,
                 reverse: ReversePath | None = None, signl4_poller: Signl4Poller | None = None,
                 reconcile_every: timedelta = timedelta(minutes=15), retention: timedelta = timedelta(days=30),
                 max_attempts: int = 25) -> None:
        self.name = name
        self.store = store
        self.forward = forward
        self.reverse = reverse
        self.signl4_poller = signl4_poller
        self.reconcile_every = reconcile_every
        self.retention = retention
        self.metrics = metrics
        handlers: dict[ActionKind, Handler] = {
            ActionKind.RAISE_SIGNL: forward.raise_signl,
            ActionKind.TAG_INCIDENT: forward.tag_incident,
        }
        if reverse is not None:
            handlers[ActionKind.UPDATE_INCIDENT] = reverse.update_incident
            handlers[ActionKind.ADD_COMMENT] = reverse.add_comment
            handlers[ActionKind.RESOLVE_SIGNL] = reverse.resolve_signl
            handlers[ActionKind.ANNOTATE_SIGNL] = reverse.annotate_signl
        self.outbox = OutboxWorker(name, store, handlers, max_attempts=max_attempts)
        self.health = ConnectorHealth(name)

    async def run_once(self, now: datetime, *, stop: asyncio.Event | None = None) -> PollReport:
        """Poll once, then perform every due side effect. Never raises a ``RemoteError``: it lands in health.

        ``stop`` (the supervisor's shutdown event) ends the outbox pass early: rows in progress finish, no new one
        starts.
        """
        report = PollReport(self.name)
        step_error: str | None = None
        # Each step may fail on its own; the others still run (queued rows and in-doubt sends must be worked off).
        for label, step in self._steps():
            try:
                await step(now, report)
            except LeaseLostError:
                raise  # another replica runs this connector now: stop the cycle at once, the supervisor reports it
            except RemoteError as exc:
                step_error = step_error or f"{type(exc).__name__}: {exc.message}"
                report.errors.append(f"{label}: {exc.message}")
            except Exception as exc:
                log.exception("cycle_step_crashed", connector=self.name, step=label)
                step_error = step_error or f"{label} failed: {type(exc).__name__}: {exc}"
                report.errors.append(f"{label}: {type(exc).__name__}: {exc}")
        await self.outbox.drain(now, report, stop=stop)
        for outcome, counter in (("done", report.done), ("retry", report.retried), ("dead", report.dead)):
            for kind, count in counter.items():
                self.metrics.actions.labels(self.name, kind.value, outcome).inc(count)
        counts = await self.store.count_actions(self.name)
        self.metrics.outbox_pending.labels(self.name).set(
            counts.get(ActionState.PENDING, 0) + counts.get(ActionState.IN_FLIGHT, 0))
        config_error = self.outbox.last_config_error
        self.outbox.last_config_error = None
        error = step_error or (f"{type(config_error).__name__}: {config_error.message}" if config_error else None)
        if error is not None:
            self.health.failed(now, error)
            self.metrics.connector_up.labels(self.name).set(0)
        else:
            self.health.ok(now)
            self.metrics.connector_up.labels(self.name).set(1)
        return report

    def _steps(self) -> list[tuple[str, Callable[[datetime, PollReport], Awaitable[None]]]]:
        steps: list[tuple[str, Callable[[datetime, PollReport], Awaitable[None]]]] = []
        if self.reverse is not None:
            # Before the poll: a Defender merge moves a Signl onto the surviving incident first, so the poll sees
            # that incident linked and does not page it a second time.
            steps.append(("lifecycle", self.reverse.detect_lifecycle))
        steps.append(("poll", self.forward.poll))
        if self.signl4_poller is not None:
            steps.append(("signl4 poll", self.signl4_poller.poll))
        if self.reverse is not None:
            steps.append(("inbox", self.reverse.process_inbox))
            steps.append(("reconcile", self._reconcile_if_due))
        return steps

    async def _reconcile_if_due(self, now: datetime, report: PollReport) -> None:
        assert self.reverse is not None
        last = await self.store.get_cursor(self.name, RECONCILE_CURSOR)
        if last is not None and now - datetime.fromisoformat(last) < self.reconcile_every:
            return
        report.reconciled += await self.reverse.resolve_closed_links(now)
        pruned = await self.store.prune(self.name, now - self.retention)
        if any(pruned):
            log.info("store_pruned", connector=self.name, outbox_rows=pruned[0], inbox_events=pruned[1])
        await self.store.set_cursor(self.name, RECONCILE_CURSOR, now.isoformat())
