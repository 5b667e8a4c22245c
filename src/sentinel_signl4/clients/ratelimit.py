"""Client-side rate limiting for SIGNL4, so we never *cause* a 429.

SIGNL4 throttles per subscription: 150 events per 15 s on commercial plans (10 per 15 s on the free plan), and
when the limit is hit "event receiving is blocked for the same time period" (shared/reference/signl4-api.md §1.7).
A blocked window at 3 a.m. means delayed pages, so we stay under the limit ourselves:

* :class:`SlidingWindowLimiter` grants at most ``limit`` acquisitions in any ``window`` seconds.
* The default budget is **140 per 15 s**, not 150: other senders share the subscription's budget (a second
  integration, a manual test), our window and SIGNL4's are not aligned (theirs may be fixed, ours slides), and
  events that SIGNL4 counts but we do not (a request that timed out and was still received) would otherwise push
  us over. Ten events of headroom cost nothing in practice.
* The limiter also absorbs the server's own view from the ``X-RateLimit-Limit/Remaining/Reset`` headers:
  when ``remaining`` is 0 it blocks until ``reset``, and a smaller advertised limit (free plan) lowers ours.
* :func:`limiter_for` shares one limiter per group (one SIGNL4 subscription), so several connectors that page
  the same subscription draw from one budget.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping

__all__ = [
    "DEFAULT_LIMIT",
    "DEFAULT_WINDOW",
    "SlidingWindowLimiter",
    "limiter_for",
    "reset_limiters",
]

DEFAULT_LIMIT = 140
DEFAULT_WINDOW = 15.0


class SlidingWindowLimiter:
    """At most ``limit`` grants in any sliding ``window`` seconds, plus server-imposed blocks.

    ``clock`` is monotonic seconds, ``wall_clock`` epoch seconds (only to convert ``X-RateLimit-Reset``),
    ``sleep`` waits; all three are injectable so tests run on a fake clock. ``max_block`` bounds how long one
    server hint can block us, in case of a skewed clock or a nonsensical reset value.
    """

    def __init__(
        self,
        limit: int = DEFAULT_LIMIT,
        window: float = DEFAULT_WINDOW,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_block: float = 60.0,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self._configured_limit = limit
        self._limit = limit
        self._window = window
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._max_block = max_block
        # Grants in the window, oldest first; None while there is none (most limiters are idle most of the time, and
        # an empty deque still holds a 0.6-KiB block: one limiter per workspace budget and SIGNL4 subscription).
        self._grants: deque[float] | None = None
        self._server_remaining: int | None = None
        self._server_reset = 0.0

    def __repr__(self) -> str:
        return f"SlidingWindowLimiter(limit={self._limit}, window={self._window})"

    @property
    def limit(self) -> int:
        """The limit in force (the configured one, or a smaller one the server advertised)."""
        return self._limit

    @property
    def window(self) -> float:
        return self._window

    def delay(self, headroom: int = 0) -> float:
        """Seconds until the next acquisition would be granted (0 when one is free now).

        ``headroom`` keeps that many grants of the window free for others (callers of lower priority pass it, so
        callers of higher priority still find a slot): the answer is then when fewer than ``limit - headroom``
        grants are in the window."""
        now = self._clock()
        self._prune(now)
        wait = 0.0
        cap = max(1, self._limit - max(0, headroom))
        if self._grants is not None and len(self._grants) >= cap:
            wait = self._grants[len(self._grants) - cap] + self._window - now
        if self._server_remaining is not None and self._server_remaining <= 0:
            wait = max(wait, self._server_reset - now)
        return max(0.0, wait)

    async def acquire(self) -> float:
        """Wait until a slot is free and take it; returns how long it waited."""
        waited = 0.0
        while True:
            wait = self.delay()
            if wait <= 0:
                self.take()
                return waited
            # No lock: asyncio is single-threaded, and the check-and-take above has no await in between, so
            # concurrent waiters simply re-check after waking up.
            await self._sleep(wait)
            waited += wait

    def take(self) -> None:
        """Record a grant now, without waiting (the caller checked :meth:`delay` first, with no await between)."""
        if self._grants is None:
            self._grants = deque()
        self._grants.append(self._clock())
        if self._server_remaining is not None:
            self._server_remaining -= 1

    def observe(self, limit: int | None, remaining: int | None, reset_epoch: float | None) -> None:
        """Absorb the server's ``X-RateLimit-Limit/Remaining/Reset`` (reset as a unix timestamp)."""
        if limit is not None and limit > 0:
            # Never above the configured budget; follows the server down (free plan) and back up (upgrade).
            self._limit = min(self._configured_limit, limit)
        if remaining is None:
            return
        now = self._clock()
        if reset_epoch is not None:
            until_reset = min(self._max_block, max(0.0, reset_epoch - self._wall_clock()))
        else:
            until_reset = self._window if remaining <= 0 else 0.0
        reset = now + until_reset
        if until_reset <= 0:
            return
        same_window = self._server_remaining is not None and abs(reset - self._server_reset) < 1.0
        if same_window and self._server_remaining is not None:
            # Answers to concurrent requests arrive out of order: the smallest "remaining" is the truest.
            self._server_remaining = min(self._server_remaining, remaining)
            self._server_reset = max(self._server_reset, reset)
        else:
            self._server_remaining = remaining
            self._server_reset = reset

    def observe_headers(self, headers: Mapping[str, str]) -> None:
        """:meth:`observe` from response headers; missing or malformed values are ignored."""
        lowered = {key.lower(): value for key, value in headers.items()}
        self.observe(
            _int(lowered.get("x-ratelimit-limit")),
            _int(lowered.get("x-ratelimit-remaining")),
            _float(lowered.get("x-ratelimit-reset")),
        )

    def _prune(self, now: float) -> None:
        horizon = now - self._window
        grants = self._grants
        if grants is not None:
            while grants and grants[0] <= horizon:
                grants.popleft()
            if not grants:
                self._grants = None
        if self._server_remaining is not None and now >= self._server_reset:
            self._server_remaining = None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


_registry: dict[str, SlidingWindowLimiter] = {}


def limiter_for(group: str, *, limit: int = DEFAULT_LIMIT, window: float = DEFAULT_WINDOW) -> SlidingWindowLimiter:
    """The process-wide limiter of ``group`` (e.g. a SIGNL4 subscription), created on first use.

    ``limit`` and ``window`` apply only when the limiter is created; later callers share the existing one.
    """
    limiter = _registry.get(group)
    if limiter is None:
        limiter = _registry[group] = SlidingWindowLimiter(limit, window)
    return limiter


def reset_limiters() -> None:
    """Forget every shared limiter (tests; a reload of the configuration)."""
    _registry.clear()
