"""One connector: ``run_once(now)`` is the deterministic single step that tests and the supervisor call."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import structlog

from sentinel_signl4.domain import ActionKind
from sentinel_signl4.engine.credential_expiry import CredentialExpiry
from sentinel_signl4.engine.cursor_cache import CursorCache
from sentinel_signl4.engine.failures import describe_error, leaf_errors
from sentinel_signl4.engine.forward import ForwardPath
from sentinel_signl4.engine.health import DEFAULT_STUCK_AFTER, ConnectorHealth, CycleOutcome, store_error_message
from sentinel_signl4.engine.incident_poll import DEFAULT_FULL_SCAN_INTERVAL, IncidentPoll
from sentinel_signl4.engine.outbox import Handler, OutboxWorker
from sentinel_signl4.engine.pacing import WritePacer
from sentinel_signl4.engine.report import PollReport
from sentinel_signl4.engine.reverse import ReversePath
from sentinel_signl4.engine.signl4_poll import Signl4Poller
from sentinel_signl4.errors import AuthError, NotFoundError, RemoteError
from sentinel_signl4.metrics import Metrics
from sentinel_signl4.store import LeaseLostError, OutboxHealth, StateStore, is_store_error

__all__ = ["ConnectorRuntime"]

log = structlog.get_logger("sentinel_signl4.connector")

RECONCILE_CURSOR = "reconciled_at"
#: A cycle that found nothing to do reuses the outbox figures (health, ``s4s_outbox_pending``) read at most this
#: long ago instead of reading them again; a cycle that may have changed the outbox reads them. An operator's change
#: made from another process (``outbox retry``/``discard``) shows within this time.
FIGURES_MAX_AGE = timedelta(seconds=30)


class ConnectorRuntime:
    def __init__(self, name: str, *, store: StateStore, forward: ForwardPath, metrics: Metrics,
                 reverse: ReversePath | None = None, signl4_poller: Signl4Poller | None = None,
                 reconcile_every: timedelta = timedelta(minutes=15), retention: timedelta = timedelta(days=30),
                 max_attempts: int = 25, stuck_after: timedelta = DEFAULT_STUCK_AFTER,
                 credential_expiry: Callable[[], CredentialExpiry | None] | None = None,
                 pacer: WritePacer | None = None,
                 full_scan_interval: timedelta = DEFAULT_FULL_SCAN_INTERVAL) -> None:
        self.name = name
        self.store = store
        self.forward = forward
        self.reverse = reverse
        self.incident_poll = IncidentPoll(name, source=forward.source, store=store, forward=forward, reverse=reverse,
                                          full_scan_interval=full_scan_interval)
        self.signl4_poller = signl4_poller
        self.cursors = CursorCache(store, name)
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
        self.outbox = OutboxWorker(name, store, handlers, max_attempts=max_attempts, pacer=pacer)
        self._credential_expiry = credential_expiry
        self._figures: OutboxHealth | None = None
        self._figures_at: datetime | None = None
        self._expiry_problem: str | None = None
        # Gauges follow every update; /metrics also refreshes them for enabled connectors (a disabled one, built
        # but never run, gets no series).
        self.health = ConnectorHealth(name, stuck_after=stuck_after, on_update=metrics.publish_health)

    async def run_once(self, now: datetime, *, stop: asyncio.Event | None = None) -> PollReport:
        """Poll once, then perform every due side effect. Never raises a ``RemoteError`` or a store error: both
        land in health.

        ``stop`` (the supervisor's shutdown event) ends the outbox pass early: rows in progress finish, no new one
        starts.
        """
        report = PollReport(self.name)
        outcome = CycleOutcome()
        # Each step may fail on its own; the others still run (queued rows and in-doubt sends must be worked off).
        for label, step in self._steps():
            try:
                await step(now, report)
            except LeaseLostError:
                raise  # another replica runs this connector now: stop the cycle at once, the supervisor reports it
            except Exception as exc:  # noqa: BLE001 - classified and reported in health
                self._step_failed(label, exc, report, outcome)
            else:
                outcome.recovered.add(label)
        try:
            await self.outbox.drain(now, report, stop=stop)
        except LeaseLostError:
            raise
        except Exception as exc:  # noqa: BLE001 - classified and reported in health
            self._step_failed("outbox", exc, report, outcome)
        else:
            outcome.recovered.add("outbox")
        for outcome_name, counter in (("done", report.done), ("retry", report.retried), ("dead", report.dead),
                                      ("paced", report.paced)):
            for kind, count in counter.items():
                self.metrics.actions.labels(self.name, kind.value, outcome_name).inc(count)
        refusals = self.outbox.take_refusals()
        for origin, refusal in refusals.items():
            outcome.config_errors[origin] = f"{type(refusal).__name__}: {refusal.message}"
        if report.done[ActionKind.RAISE_SIGNL]:
            outcome.recovered.add("send")
        if any(count for kind, count in report.done.items() if kind is not ActionKind.RAISE_SIGNL):
            outcome.recovered.add("write")  # a write went through: the rights are there (again)
        outcome.failed_actions = sum(report.retried.values()) + sum(report.dead.values()) - len(refusals)
        try:
            figures = await self._outbox_figures(now, report)
        except Exception as exc:  # noqa: BLE001 - a store failure is an error with the store's message
            self._figures = None
            outcome.store_error = outcome.store_error or store_error_message(exc)
            log.error("store_failed", connector=self.name, error=outcome.store_error)
        else:
            self.metrics.outbox_pending.labels(self.name).set(figures.open_rows)
            outcome.dead_letters = figures.dead_raises
            outcome.oldest_pending_at = figures.oldest_pending_at
            outcome.open_raises = figures.open_raises
            outcome.retrying = figures.retrying
        self._check_credential()
        self.health.record(now, outcome)
        return report

    async def _outbox_figures(self, now: datetime, report: PollReport) -> OutboxHealth:
        """The outbox's health figures: read again (one statement) unless this cycle found nothing to do and the
        last read is recent (``FIGURES_MAX_AGE``)."""
        fresh = (self._figures is not None and self._figures_at is not None and not report.outbox_may_have_changed()
                 and timedelta(0) <= now - self._figures_at < FIGURES_MAX_AGE)
        if not fresh or self._figures is None:
            self._figures = await self.store.outbox_health(self.name)
            self._figures_at = now
        return self._figures

    def _check_credential(self) -> None:
        if self._credential_expiry is None:
            return
        try:
            self.health.credential = self._credential_expiry()
        except ValueError as exc:
            if str(exc) != self._expiry_problem:  # once per distinct problem, not every cycle
                log.warning("credential_expiry_unknown", connector=self.name, error=str(exc))
            self._expiry_problem = str(exc)
            self.health.credential = None
        else:
            self._expiry_problem = None

    def _step_failed(self, label: str, exc: Exception, report: PollReport, outcome: CycleOutcome) -> None:
        cause = leaf_errors(exc)[0]  # classify by the first cause; describe them all
        if isinstance(cause, RemoteError):
            exc = cause
            message = f"{type(exc).__name__}: {exc.message}"
            report.errors.append(f"{label}: {exc.message}")
            if isinstance(exc, AuthError | NotFoundError) and not exc.retryable:
                outcome.config_errors[label] = message
            else:
                outcome.transient_error = outcome.transient_error or message
            return
        if is_store_error(cause):
            message = store_error_message(cause)
            log.error("store_failed", connector=self.name, step=label, error=message)
            outcome.store_error = outcome.store_error or message
            report.errors.append(f"{label}: {message}")
            return
        detail = describe_error(exc)
        log.exception("cycle_step_crashed", connector=self.name, step=label, error=detail)
        outcome.transient_error = outcome.transient_error or f"{label} failed: {detail}"
        report.errors.append(f"{label}: {detail}")

    def _steps(self) -> list[tuple[str, Callable[[datetime, PollReport], Awaitable[None]]]]:
        steps: list[tuple[str, Callable[[datetime, PollReport], Awaitable[None]]]] = []
        # One read of what changed feeds both the lifecycle (merges first) and the forward decisions.
        steps.append(("poll", self.incident_poll.poll))
        if self.signl4_poller is not None:
            steps.append(("signl4 poll", self.signl4_poller.poll))
        if self.reverse is not None:
            steps.append(("inbox", self.reverse.process_inbox))
            steps.append(("reconcile", self._reconcile_if_due))
        return steps

    async def _reconcile_if_due(self, now: datetime, report: PollReport) -> None:
        assert self.reverse is not None
        last = await self.cursors.get(RECONCILE_CURSOR)
        if last is not None and now - datetime.fromisoformat(last) < self.reconcile_every:
            return
        report.reconciled += await self.reverse.resolve_closed_links(now)
        pruned = await self.store.prune(self.name, now - self.retention)
        if any(pruned):
            log.info("store_pruned", connector=self.name, outbox_rows=pruned[0], inbox_events=pruned[1])
        await self.cursors.set(RECONCILE_CURSOR, now.isoformat())
