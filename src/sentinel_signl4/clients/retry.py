"""Bounded retries as data: a :class:`RetryPolicy` and one function that applies it, :func:`call_with_retry`.

Rules (mirroring azure-core's retry policy and stamina, see shared/reference/microsoft-apis.md §5.5):

* Only errors whose class says ``retryable`` are retried (transient, rate-limited, outcome unknown).
* :class:`OutcomeUnknownError` is never retried for a non-idempotent call: the request may have been applied, so
  re-sending could page twice. The caller reconciles first.
* A ``Retry-After`` hint is waited exactly. If it does not fit into what is left of the total time budget, the
  error is re-raised at once, so the caller can schedule the work for later instead of blocking a worker.
* Otherwise the wait is exponential with full jitter (AWS "full jitter"), capped by ``max_delay``.
* Bounded twice: by the number of attempts and by total time (time spent in attempts plus planned sleeps).

Tests call :func:`set_testing` to make sleeps instant; the planned delays are still reported to ``on_retry`` and
counted against the time budget, so a test can assert on what *would* have happened.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import structlog
from tenacity import AsyncRetrying, RetryCallState

from sentinel_signl4.errors import OutcomeUnknownError, RateLimitedError, RemoteError

__all__ = [
    "NO_RETRY",
    "OnRetry",
    "RetryPolicy",
    "RetryStats",
    "call_with_retry",
    "is_retryable",
    "set_testing",
]

T = TypeVar("T")

log = structlog.get_logger("sentinel_signl4.retry")

OnRetry = Callable[[RemoteError, float], None]
"""Called before each sleep with the error that caused the retry and the planned delay in seconds."""

_testing = False
_rng = random.Random()  # jitter, not cryptography


def set_testing(enabled: bool) -> None:
    """Make every retry sleep instant (process-wide), while still reporting and budgeting the planned delays."""
    global _testing
    _testing = enabled


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry one remote call.

    ``attempts`` counts the first try (1 = no retry). ``base_delay`` doubles per retry up to ``max_delay``.
    ``total_timeout`` bounds the whole call including attempts and sleeps. ``jitter`` is the randomised fraction of
    each backoff delay: 1.0 is full jitter (uniform in ``(0, cap]``), 0.0 is a fixed exponential schedule.
    """

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 10.0
    total_timeout: float = 60.0
    jitter: float = 1.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.total_timeout <= 0:
            raise ValueError("delays must be >= 0 and total_timeout > 0")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be between 0.0 and 1.0")

    def backoff(self, retry_number: int, unit_random: float) -> float:
        """Delay before retry number ``retry_number`` (1-based), given a uniform random value in ``[0, 1)``."""
        cap = min(self.max_delay, self.base_delay * 2.0 ** (retry_number - 1))
        return cap * (1.0 - self.jitter * unit_random)


NO_RETRY = RetryPolicy(attempts=1)


@dataclass(slots=True)
class RetryStats:
    """An ``on_retry`` hook that records what happened; handy for tests and for metrics."""

    errors: list[RemoteError] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)

    def __call__(self, error: RemoteError, delay: float) -> None:
        self.errors.append(error)
        self.delays.append(delay)

    @property
    def retries(self) -> int:
        return len(self.errors)

    @property
    def rate_limited(self) -> int:
        return sum(isinstance(error, RateLimitedError) for error in self.errors)


def is_retryable(error: BaseException, *, idempotent: bool) -> bool:
    """Whether ``error`` may be retried for a call that is (or is not) idempotent."""
    if not isinstance(error, RemoteError) or not error.retryable:
        return False
    return idempotent or not isinstance(error, OutcomeUnknownError)


@dataclass(slots=True)
class _Budget:
    """Total-time accounting. In testing mode skipped sleeps still count, so budgets behave as in production."""

    total: float
    started: float = field(default_factory=time.monotonic)
    skipped: float = 0.0

    def remaining(self) -> float:
        return self.total - (time.monotonic() - self.started + self.skipped)


async def call_with_retry(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    idempotent: bool,
    on_retry: OnRetry | None = None,
    service: str = "remote",
) -> T:
    """Await ``fn()`` and retry it under ``policy``; re-raise the last error when giving up.

    ``fn`` must build a fresh request on every call (a new token, a new body stream). Errors that are not
    :class:`RemoteError` are bugs and propagate at once. Every retry is logged at info as ``remote_retry`` with
    ``service``, ``status``, ``attempt`` (the one that failed) and ``delay`` (seconds until the next one).
    """
    budget = _Budget(policy.total_timeout)
    # The first attempt runs without tenacity: nearly every call succeeds at once, and building the retry machinery
    # for each of them was a measurable share of an idle connector cycle. Tenacity takes over after a retryable
    # failure, its attempt numbers shifted by the one already made.
    try:
        return await fn()
    except RemoteError as error:
        if not is_retryable(error, idempotent=idempotent):
            raise
        first = error

    def delay_for(error: RemoteError | None, attempt: int) -> float:
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            return max(0.0, error.retry_after)
        return policy.backoff(attempt, _rng.random())

    def announce(error: RemoteError, attempt: int, delay: float) -> None:
        log.info("remote_retry", service=service, status=error.status, code=error.code,
                 error=type(error).__name__, attempt=attempt, delay=round(delay, 3))
        if on_retry is not None:
            on_retry(error, delay)

    async def sleep(seconds: float) -> None:
        if _testing:
            budget.skipped += seconds
            return
        await asyncio.sleep(seconds)

    delay = delay_for(first, 1)
    if policy.attempts <= 1 or delay > budget.remaining():
        raise first
    announce(first, 1, delay)
    await sleep(delay)

    def should_retry(state: RetryCallState) -> bool:
        error = _error_of(state)
        return error is not None and is_retryable(error, idempotent=idempotent)

    def wait(state: RetryCallState) -> float:
        return delay_for(_error_of(state), state.attempt_number + 1)

    def stop(state: RetryCallState) -> bool:
        # tenacity computes the wait before asking stop, so a too-long Retry-After stops here.
        return state.attempt_number + 1 >= policy.attempts or state.upcoming_sleep > budget.remaining()

    def before_sleep(state: RetryCallState) -> None:
        error = _error_of(state)
        if error is not None:
            announce(error, state.attempt_number + 1, state.upcoming_sleep)

    retrying = AsyncRetrying(
        retry=should_retry, wait=wait, stop=stop, before_sleep=before_sleep, sleep=sleep, reraise=True,
    )
    return await retrying(fn)


def _error_of(state: RetryCallState) -> RemoteError | None:
    if state.outcome is None or not state.outcome.failed:
        return None
    error = state.outcome.exception()
    return error if isinstance(error, RemoteError) else None
