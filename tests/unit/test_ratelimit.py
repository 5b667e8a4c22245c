"""SlidingWindowLimiter on a fake clock: never more than N grants in any window; server hints block."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from fake_clock import FakeClock
from sentinel_signl4.clients.ratelimit import (
    DEFAULT_LIMIT,
    DEFAULT_WINDOW,
    SlidingWindowLimiter,
    limiter_for,
    reset_limiters,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def limiter(clock: FakeClock, limit: int = 10, window: float = 15.0, **kwargs: float) -> SlidingWindowLimiter:
    return SlidingWindowLimiter(limit, window, clock=clock.monotonic, wall_clock=clock.wall, sleep=clock.sleep,
                                **kwargs)


def max_in_any_window(grants: list[float], window: float) -> int:
    grants = sorted(grants)
    return max(sum(1 for t in grants if start <= t < start + window) for start in grants)


async def test_sequential_grants_never_exceed_the_limit_in_any_window(clock: FakeClock) -> None:
    lim, grants = limiter(clock), []
    for _ in range(95):
        await lim.acquire()
        grants.append(clock.monotonic())
        clock.advance(0.3)  # a sender faster than the budget
    assert max_in_any_window(grants, 15.0) <= 10


async def test_the_eleventh_grant_waits_exactly_until_the_first_leaves_the_window(clock: FakeClock) -> None:
    lim = limiter(clock)
    for _ in range(10):
        assert await lim.acquire() == 0.0
    waited = await lim.acquire()
    assert waited == pytest.approx(15.0)


async def test_concurrent_waiters_never_exceed_the_limit(clock: FakeClock) -> None:
    lim, grants = limiter(clock, limit=7, window=10.0), []

    async def send() -> None:
        await lim.acquire()
        grants.append(clock.monotonic())

    await asyncio.gather(*(send() for _ in range(60)))
    assert len(grants) == 60
    assert max_in_any_window(grants, 10.0) <= 7


async def test_remaining_zero_blocks_until_the_advertised_reset(clock: FakeClock) -> None:
    lim = limiter(clock)
    lim.observe(150, 0, clock.wall() + 6.0)
    assert lim.delay() == pytest.approx(6.0)
    assert await lim.acquire() == pytest.approx(6.0)
    assert lim.delay() == 0.0


async def test_remaining_budget_from_the_server_is_spent_before_blocking(clock: FakeClock) -> None:
    lim = limiter(clock, limit=100)
    lim.observe(150, 2, clock.wall() + 9.0)
    assert await lim.acquire() == 0.0
    assert await lim.acquire() == 0.0
    assert await lim.acquire() == pytest.approx(9.0)


def test_headers_are_parsed_and_a_smaller_server_limit_lowers_ours(clock: FakeClock) -> None:
    lim = limiter(clock, limit=140)
    lim.observe_headers({"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0",
                         "X-RateLimit-Reset": str(int(clock.wall() + 4))})
    assert lim.limit == 10
    assert lim.delay() == pytest.approx(4.0)


def test_a_larger_server_limit_never_raises_our_budget(clock: FakeClock) -> None:
    lim = limiter(clock, limit=140)
    lim.observe(600, 500, clock.wall() + 30.0)
    assert lim.limit == 140


def test_malformed_headers_are_ignored(clock: FakeClock) -> None:
    lim = limiter(clock)
    lim.observe_headers({"X-RateLimit-Limit": "lots", "X-RateLimit-Remaining": "", "X-RateLimit-Reset": "soon"})
    assert lim.limit == 10
    assert lim.delay() == 0.0


def test_an_absurd_reset_is_capped_by_max_block(clock: FakeClock) -> None:
    lim = limiter(clock, max_block=60.0)
    lim.observe(None, 0, clock.wall() + 86_400.0)  # a skewed clock must not silence paging for a day
    assert lim.delay() == pytest.approx(60.0)


def test_out_of_order_answers_keep_the_smallest_remaining(clock: FakeClock) -> None:
    lim = limiter(clock, limit=100)
    reset = clock.wall() + 10.0
    lim.observe(150, 0, reset)
    lim.observe(150, 3, reset)  # an older answer arriving late
    assert lim.delay() == pytest.approx(10.0)


def test_limiters_are_shared_per_group() -> None:
    reset_limiters()
    try:
        first = limiter_for("subscription-a")
        assert limiter_for("subscription-a") is first
        assert limiter_for("subscription-b") is not first
        assert (first.limit, first.window) == (DEFAULT_LIMIT, DEFAULT_WINDOW)
        assert DEFAULT_LIMIT < 150  # headroom under SIGNL4's commercial 150 / 15 s
    finally:
        reset_limiters()


def test_invalid_configuration_is_rejected() -> None:
    with pytest.raises(ValueError, match="limit"):
        SlidingWindowLimiter(0, 15.0)


@pytest.fixture(autouse=True)
def _no_leaked_limiters() -> Iterator[None]:
    yield
    reset_limiters()


async def test_an_idle_limiter_holds_no_grant_queue_and_counts_again_after_it(clock: FakeClock) -> None:
    lim = limiter(clock, limit=2, window=10.0)
    assert lim._grants is None  # white-box: one limiter per workspace budget and subscription, mostly idle
    await lim.acquire()
    await lim.acquire()
    assert lim.delay() == pytest.approx(10.0)
    clock.advance(10.0)
    assert lim.delay() == 0.0
    assert lim._grants is None  # every grant left the window: the queue is freed
    await lim.acquire()
    await lim.acquire()
    assert lim.delay() == pytest.approx(10.0)  # the limit still holds after the queue was freed
