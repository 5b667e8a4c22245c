"""``LoginThrottle``: the lock after repeated wrong passwords, its doubling, its end, and its bounded memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fake_clock import FakeClock
from sentinel_signl4.web.login_throttle import LoginThrottle

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_the_nth_failure_locks_for_the_lockout_and_each_failure_after_a_lock_doubles_it() -> None:
    clock = FakeClock(T0)
    throttle = LoginThrottle(clock, failures=3, lockout=timedelta(seconds=10), max_lockout=timedelta(seconds=35))
    assert [throttle.failed(["user:a"]) for _ in range(3)] == [False, False, True]
    assert throttle.retry_after(["user:a"]) == 10
    assert throttle.retry_after(["user:b"]) is None
    waits = []
    for _ in range(3):
        clock.advance(throttle.retry_after(["user:a"]) or 0)
        assert throttle.retry_after(["user:a"]) is None
        assert throttle.failed(["user:a"])
        waits.append(throttle.retry_after(["user:a"]))
    assert waits == [20, 35, 35]  # doubled, then capped at max_lockout


def test_failures_spread_over_more_than_the_window_do_not_add_up() -> None:
    clock = FakeClock(T0)
    throttle = LoginThrottle(clock, failures=3, window=timedelta(minutes=15))
    throttle.failed(["k"])
    throttle.failed(["k"])
    clock.advance(minutes=16)
    assert not throttle.failed(["k"])
    assert not throttle.failed(["k"])
    assert throttle.failed(["k"])


def test_a_long_quiet_time_after_a_lock_starts_the_key_afresh() -> None:
    clock = FakeClock(T0)
    throttle = LoginThrottle(clock, failures=2, lockout=timedelta(minutes=1), window=timedelta(minutes=15))
    throttle.failed(["k"])
    assert throttle.failed(["k"])
    clock.advance(minutes=30)
    assert not throttle.failed(["k"])  # not "a failure after a lock" any more: counting restarts


def test_success_clears_every_key_given() -> None:
    throttle = LoginThrottle(FakeClock(T0), failures=1)
    assert throttle.failed(["user:a", "address:x"])
    throttle.succeeded(["user:a", "address:x"])
    assert throttle.retry_after(["user:a", "address:x"]) is None
    assert len(throttle) == 0


def test_the_table_is_bounded_and_drops_expired_entries_first_then_the_oldest() -> None:
    clock = FakeClock(T0)
    throttle = LoginThrottle(clock, failures=1, lockout=timedelta(seconds=1), max_lockout=timedelta(seconds=1),
                             max_keys=3)
    throttle.failed(["old"])
    clock.advance(minutes=1)  # "old" is long expired
    throttle.failed(["a"])
    throttle.failed(["b"])
    throttle.failed(["c"])
    assert len(throttle) == 3
    assert throttle.retry_after(["a"]) is not None  # "old" went, not "a"
    throttle.failed(["d"])
    assert len(throttle) == 3
    assert throttle.retry_after(["a"]) is None  # full of live entries: the oldest went


def test_at_least_one_failure() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LoginThrottle(FakeClock(T0), failures=0)
