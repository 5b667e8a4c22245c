"""The outbox worker: performs due side effects, one row at a time per incident, and records the outcome.

Rules (ARCHITECTURE §1): a row exists before its side effect is attempted; ``IN_FLIGHT`` is written before the
remote call; ``DONE`` only after the remote side confirmed. A row found ``IN_FLIGHT`` or ``in_doubt`` may already
have taken effect, so its handler reconciles before acting again.

Every state change carries the cycle's lease fence (``engine.leases.current_fence``): once another replica took the
connector over, the store refuses it with ``LeaseLostError`` and the pass ends at once, rows in progress included.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

import structlog

from sentinel_signl4.domain import ActionKind, ActionState
from sentinel_signl4.domain.actions import ActionPayload, PayloadError, payload_of
from sentinel_signl4.engine.backoff import OutboxBackoff
from sentinel_signl4.engine.failures import describe_error
from sentinel_signl4.engine.leases import current_fence
from sentinel_signl4.engine.pacing import WritePacer, priority_of
from sentinel_signl4.engine.report import PollReport
from sentinel_signl4.errors import (
    AuthError,
    ConflictError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitedError,
    RemoteError,
)
from sentinel_signl4.store import LeaseLostError, Link, OutboxAction, StateStore
from sentinel_signl4.store.base import ActionClosedError

__all__ = ["Done", "Handler", "OutboxWorker", "payload"]

log = structlog.get_logger("sentinel_signl4.outbox")


@dataclass(frozen=True, slots=True)
class Done:
    """A handler's success: what to record, atomically, with the row."""

    result: Mapping[str, Any] = field(default_factory=dict)
    link: Link | None = None
    follow_ups: Sequence[OutboxAction] = ()


Handler = Callable[[OutboxAction, datetime], Awaitable[Done]]

_P = TypeVar("_P", bound=ActionPayload)


def payload(row: OutboxAction, kind: type[_P]) -> _P:
    """``row``'s payload as ``kind``. ``PayloadError`` (the row is dead-lettered) when it cannot be read as such."""
    found = payload_of(row.kind, row.payload)
    if not isinstance(found, kind):
        raise PayloadError(f"a {row.kind.value} row cannot be handled as {kind.__name__}")
    return found

# Configuration problems (wrong secret, missing role) are retried slowly, never dead-lettered: the page must go
# out once the operator fixes the config, and the connector's status says what is wrong meanwhile.
_CONFIG_RETRY = timedelta(seconds=60)


class OutboxWorker:
    def __init__(self, connector: str, store: StateStore, handlers: Mapping[ActionKind, Handler], *,
                 backoff: OutboxBackoff | None = None, max_attempts: int = 25, concurrency: int = 4,
                 batch: int = 200, pacer: WritePacer | None = None) -> None:
        self.connector = connector
        #: Admits rows that write to the incident source against its budget (Sentinel); None: no pacing.
        self.pacer = pacer
        self.store = store
        self.handlers = dict(handlers)
        self.backoff = backoff or OutboxBackoff()
        self.max_attempts = max_attempts
        self.concurrency = concurrency
        self.batch = batch
        #: Refusals no retry can fix, by origin, since the connector last took them: ``send`` (SIGNL4 refused our
        #: credentials or team secret for a raise), ``write`` (the incident source refused a write for lack of rights).
        self.refusals: dict[str, RemoteError] = {}

    async def drain(self, now: datetime, report: PollReport, *, max_passes: int = 5,
                    stop: asyncio.Event | None = None) -> None:
        """Run due rows until none is due or ``max_passes`` passes are done (follow-ups become due at once).

        Once ``stop`` is set no further row is started; rows already started finish and are recorded. A graceful
        shutdown then takes as long as the attempts in progress, not as long as the backlog (a 1,000-incident burst
        paced at SIGNL4's rate limit lasts minutes, longer than any termination grace period), and leaves nothing
        in doubt. The rows not started stay pending for the next start.
        """
        for _ in range(max_passes):
            if stop is not None and stop.is_set():
                return
            rows = await self.store.due_actions(self.connector, now, self.batch)
            if not rows:
                return
            await self._run_rows(rows, now, report, stop)

    async def _run_rows(self, rows: Sequence[OutboxAction], now: datetime, report: PollReport,
                        stop: asyncio.Event | None = None) -> None:
        # Rows of one incident run in order; different incidents run concurrently (bounded).
        by_incident: dict[str, list[OutboxAction]] = {}
        for row in rows:
            by_incident.setdefault(row.incident_id, []).append(row)
        gate = asyncio.Semaphore(self.concurrency)
        # An unexpected error in one incident's rows must not cancel the others mid-send (a cancelled send is in
        # doubt): each incident's task keeps its error, and the pass raises them once every task has finished.
        failures: list[Exception] = []
        lost: list[LeaseLostError] = []

        async def run_incident(items: list[OutboxAction]) -> None:
            async with gate:
                for row in items:
                    if (stop is not None and stop.is_set()) or lost:
                        return  # stopping, or another replica runs this connector now: start nothing more
                    try:
                        if not await self._run_one(row, now, report):
                            return  # keep order: later rows of this incident wait for the failed one
                    except ActionClosedError as exc:
                        # Another worker finished this row since this pass read it (two replicas on one
                        # connector): nothing to do here, and its incident's later rows are that worker's too.
                        report.errors.append(f"outbox: {describe_error(exc)}")
                        log.warning("action_already_finished", connector=self.connector, key=exc.key,
                                    state=exc.state.value)
                        return
                    except LeaseLostError as exc:
                        lost.append(exc)
                        return
                    except Exception as exc:  # noqa: BLE001 - re-raised below, after the other incidents' rows
                        failures.append(exc)
                        return

        # Incidents start in priority order (pages, then reverse sync, then resolves, then tags): when the source's
        # write budget is short, what responders are waiting for is admitted first. Within one incident the order
        # of its rows stays as queued.
        ordered = sorted(by_incident.values(), key=lambda items: min(priority_of(row.kind) for row in items))
        async with asyncio.TaskGroup() as group:
            for items in ordered:
                group.create_task(run_incident(items))
        if lost:
            raise lost[0]  # the lease is gone: that, not what else failed meanwhile, is what the connector reports
        if len(failures) == 1:
            raise failures[0]
        if failures:
            raise ExceptionGroup(f"{len(failures)} outbox rows failed", failures)

    async def _run_one(self, row: OutboxAction, now: datetime, report: PollReport) -> bool:
        handler = self.handlers.get(row.kind)
        fence = current_fence()
        if handler is None:
            await self.store.mark_dead(row.key, now, f"no handler for action kind {row.kind!r}", fence=fence)
            report.dead[row.kind] += 1
            return False
        if "send" in self.refusals and row.kind is ActionKind.RAISE_SIGNL:
            # SIGNL4 just refused our credentials: the other sends of this pass would fail the same way (and count
            # against SIGNL4's low budget for bad requests). They stay queued for the next cycle.
            return False
        if row.state is ActionState.IN_FLIGHT:
            # Left by a crash mid-attempt: the side effect may have happened.
            row = _replace(row, in_doubt=True)
        if self.pacer is not None:
            admission = self.pacer.admit(row)
            if admission.wait > 0:
                # Not attempted: put off until the budget has room. No attempt is counted, nothing is sent.
                await self.store.defer(row.key, now, now + timedelta(seconds=admission.wait), in_doubt=row.in_doubt,
                                       fence=fence)
                report.paced[row.kind] += 1
                log.debug("action_paced", connector=self.connector, key=row.key, kind=row.kind.value,
                          budget=admission.budget, in_seconds=round(admission.wait, 1))
                return False
        try:
            started = await self.store.mark_in_flight(row.key, now, fence=fence)
        except ActionClosedError as exc:
            if exc.state is not ActionState.DISCARDED:
                raise
            # An operator discarded it (``outbox discard``) after this pass read it: nothing to do.
            log.info("action_discarded_meanwhile", connector=self.connector, key=row.key)
            return False
        row = _replace(started, in_doubt=row.in_doubt or started.in_doubt)
        try:
            done = await handler(row, now)
        except RemoteError as exc:
            await _shielded(self._failed(row, now, exc, report))
            return False
        except PayloadError as exc:
            # Written by a later version, or edited by hand: retrying cannot help. Kept (with its payload) as a
            # dead letter that says why; ``outbox requeue`` brings it back once a version that reads it runs.
            await _shielded(self.store.mark_dead(row.key, now, f"unreadable payload: {exc}", fence=fence))
            report.dead[row.kind] += 1
            log.error("action_dead", connector=self.connector, key=row.key, kind=row.kind.value, error=str(exc))
            return False
        await _shielded(self.store.complete(row.key, now, done.result, link=done.link,
                                            follow_ups=done.follow_ups, fence=fence))
        report.done[row.kind] += 1
        if done.result.get("reconciled"):
            report.reconciled_sends += 1
        return True

    def take_refusals(self) -> dict[str, RemoteError]:
        """The refusals recorded since the last call (the connector folds them into its health), and forget them."""
        taken, self.refusals = self.refusals, {}
        return taken

    async def _failed(self, row: OutboxAction, now: datetime, exc: RemoteError, report: PollReport) -> None:
        error = f"{type(exc).__name__}: {exc.message}"
        if isinstance(exc, AuthError | NotFoundError) and row.kind is ActionKind.RAISE_SIGNL:
            self.refusals["send"] = exc
        elif isinstance(exc, AuthError) and not exc.retryable:
            # A missing role on a write (tag, owner, status, comment): no retry fixes it, an operator must.
            self.refusals["write"] = exc
        # A conflict that outlasted the handler's re-reads (other writers busy on the incident) is transient too.
        if exc.retryable or isinstance(exc, AuthError | NotFoundError | ConflictError):
            if row.attempts >= self.max_attempts:
                await self.store.mark_dead(row.key, now, f"gave up after {row.attempts} attempts: {error}",
                                           fence=current_fence())
                report.dead[row.kind] += 1
                log.error("action_dead", connector=self.connector, key=row.key, kind=row.kind.value, error=error)
                return
            if isinstance(exc, AuthError | NotFoundError) and not exc.retryable:
                delay = max(_CONFIG_RETRY, self.backoff.delay(row.attempts))
            else:
                hint = exc.retry_after if isinstance(exc, RateLimitedError) and exc.retry_after else 0.0
                delay = self.backoff.delay(row.attempts, at_least=hint)
            await self.store.mark_retry(row.key, now, now + delay, error,
                                        in_doubt=isinstance(exc, OutcomeUnknownError), fence=current_fence())
            report.retried[row.kind] += 1
            log.warning("action_retry", connector=self.connector, key=row.key, kind=row.kind.value,
                        attempt=row.attempts, in_seconds=round(delay.total_seconds(), 1), error=error)
            return
        await self.store.mark_dead(row.key, now, error, fence=current_fence())
        report.dead[row.kind] += 1
        log.error("action_dead", connector=self.connector, key=row.key, kind=row.kind.value, error=error)


async def _shielded(work: Awaitable[None]) -> None:
    """``work`` to its end even if the caller is cancelled (an outcome is recorded, not dropped half-way). When the
    caller was cancelled meanwhile (a sibling lost the lease), its error is still collected, not left unretrieved."""
    task = asyncio.ensure_future(work)
    task.add_done_callback(_collect)
    await asyncio.shield(task)


def _collect(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()



def _replace(row: OutboxAction, **changes: Any) -> OutboxAction:
    return replace(row, **changes)
