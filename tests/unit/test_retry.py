"""RetryPolicy / call_with_retry: bounded by attempts and time, Retry-After honoured, unsafe retries refused."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from sentinel_signl4.clients.retry import RetryPolicy, RetryStats, call_with_retry, is_retryable, set_testing
from sentinel_signl4.errors import (
    AuthError,
    ConflictError,
    NotFoundError,
    OutcomeUnknownError,
    PermanentError,
    RateLimitedError,
    RemoteError,
    TransientError,
)


@pytest.fixture(autouse=True)
def instant_sleeps() -> Iterator[None]:
    set_testing(True)
    yield
    set_testing(False)


class Script:
    """An async callable that raises the scripted errors in order, then returns ``"ok"``."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


class Always:
    def __init__(self, error: RemoteError) -> None:
        self.error = error
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        raise self.error


async def test_gives_up_after_the_configured_number_of_attempts() -> None:
    fn, stats = Always(TransientError("503")), RetryStats()
    with pytest.raises(TransientError):
        await call_with_retry(fn, RetryPolicy(attempts=4), idempotent=True, on_retry=stats)
    assert fn.calls == 4
    assert stats.retries == 3


async def test_a_transient_failure_followed_by_success_returns_the_result() -> None:
    fn, stats = Script(TransientError("503"), TransientError("503")), RetryStats()
    assert await call_with_retry(fn, RetryPolicy(attempts=3), idempotent=True, on_retry=stats) == "ok"
    assert fn.calls == 3
    assert stats.retries == 2


async def test_retry_after_is_waited_exactly_and_reported() -> None:
    fn, stats = Script(RateLimitedError("429", retry_after=7.0)), RetryStats()
    assert await call_with_retry(fn, RetryPolicy(max_delay=1.0), idempotent=True, on_retry=stats) == "ok"
    assert stats.delays == [7.0]
    assert stats.rate_limited == 1


async def test_retry_after_beyond_the_time_budget_is_reraised_at_once_for_the_caller_to_schedule() -> None:
    fn, stats = Script(RateLimitedError("429", retry_after=120.0)), RetryStats()
    with pytest.raises(RateLimitedError) as caught:
        await call_with_retry(fn, RetryPolicy(total_timeout=30.0), idempotent=True, on_retry=stats)
    assert caught.value.retry_after == 120.0
    assert fn.calls == 1
    assert stats.delays == []


async def test_total_time_bounds_the_sum_of_planned_sleeps() -> None:
    policy = RetryPolicy(attempts=100, base_delay=1.0, max_delay=1.0, total_timeout=5.0, jitter=0.0)
    fn, stats = Always(TransientError("503")), RetryStats()
    with pytest.raises(TransientError):
        await call_with_retry(fn, policy, idempotent=True, on_retry=stats)
    assert sum(stats.delays) <= policy.total_timeout
    assert fn.calls == 5  # 4 sleeps of 1 s fit into 5 s, a 5th would not


async def test_outcome_unknown_is_never_retried_for_a_non_idempotent_call() -> None:
    fn = Always(OutcomeUnknownError("read timeout after sending"))
    with pytest.raises(OutcomeUnknownError):
        await call_with_retry(fn, RetryPolicy(attempts=5), idempotent=False)
    assert fn.calls == 1


async def test_outcome_unknown_is_retried_for_an_idempotent_call() -> None:
    fn = Script(OutcomeUnknownError("reset"))
    assert await call_with_retry(fn, RetryPolicy(attempts=2), idempotent=True) == "ok"
    assert fn.calls == 2


@pytest.mark.parametrize("error", [TransientError("connect refused"), RateLimitedError("429", retry_after=1.0)])
async def test_failures_that_never_reached_the_remote_are_retried_even_when_not_idempotent(error: RemoteError) -> None:
    fn = Script(error)
    assert await call_with_retry(fn, RetryPolicy(attempts=2), idempotent=False) == "ok"
    assert fn.calls == 2


@pytest.mark.parametrize(
    "error", [AuthError("403"), PermanentError("400"), ConflictError("409"), NotFoundError("404")]
)
async def test_non_retryable_errors_fail_on_the_first_attempt(error: RemoteError) -> None:
    fn = Always(error)
    with pytest.raises(type(error)):
        await call_with_retry(fn, RetryPolicy(attempts=5), idempotent=True)
    assert fn.calls == 1


async def test_a_bug_is_not_retried() -> None:
    fn = Script(ValueError("bug"))
    with pytest.raises(ValueError, match="bug"):
        await call_with_retry(fn, RetryPolicy(attempts=5), idempotent=True)
    assert fn.calls == 1


async def test_backoff_delays_stay_within_full_jitter_bounds() -> None:
    policy = RetryPolicy(attempts=8, base_delay=0.5, max_delay=4.0, total_timeout=1000.0, jitter=1.0)
    for _ in range(50):
        stats = RetryStats()
        with pytest.raises(TransientError):
            await call_with_retry(Always(TransientError("503")), policy, idempotent=True, on_retry=stats)
        for retry_number, delay in enumerate(stats.delays, start=1):
            cap = min(policy.max_delay, policy.base_delay * 2 ** (retry_number - 1))
            assert 0.0 < delay <= cap


def test_backoff_without_jitter_is_exponential_and_capped() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0, jitter=0.0)
    assert [policy.backoff(n, 0.99) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_partial_jitter_keeps_a_floor() -> None:
    policy = RetryPolicy(base_delay=2.0, max_delay=2.0, jitter=0.25)
    assert policy.backoff(1, 0.0) == 2.0
    assert policy.backoff(1, 0.999999) == pytest.approx(1.5, abs=1e-5)


@pytest.mark.parametrize(
    "kwargs", [{"attempts": 0}, {"base_delay": -1.0}, {"total_timeout": 0.0}, {"jitter": 1.5}]
)
def test_nonsensical_policies_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is not the point
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_is_retryable_table() -> None:
    assert is_retryable(TransientError("x"), idempotent=False)
    assert is_retryable(RateLimitedError("x"), idempotent=False)
    assert not is_retryable(OutcomeUnknownError("x"), idempotent=False)
    assert is_retryable(OutcomeUnknownError("x"), idempotent=True)
    assert not is_retryable(AuthError("x"), idempotent=True)
    assert not is_retryable(RuntimeError("x"), idempotent=True)


async def test_outside_testing_mode_the_sleep_really_happens() -> None:
    set_testing(False)
    started = time.monotonic()
    fn = Script(TransientError("503"))
    await call_with_retry(fn, RetryPolicy(base_delay=0.05, max_delay=0.05, jitter=0.0), idempotent=True)
    assert time.monotonic() - started >= 0.05
