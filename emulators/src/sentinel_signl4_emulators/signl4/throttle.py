"""SIGNL4's throttling: per-plan limits and fixed windows with the documented penalty block (ref §1.7)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sentinel_signl4_emulators.signl4.errors import InvalidRequestError

__all__ = [
    "COMMERCIAL_LIMITS",
    "FREE_LIMITS",
    "INVALID_REQUEST_LIMITS",
    "FixedWindows",
    "RateDecision",
    "RateLimit",
    "RateLimitPolicy",
    "limits_for_plan",
]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``limit`` requests per ``window``."""

    limit: int
    window: timedelta

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window <= timedelta(0):
            raise ValueError("limit must be >= 1 and window positive")


@dataclass(frozen=True, slots=True)
class RateLimitPolicy:
    """The limits of one subscription: inbound events (webhook and ``/api/v2/events``) and other REST calls."""

    events: tuple[RateLimit, ...]
    rest: tuple[RateLimit, ...]

    def __post_init__(self) -> None:
        if not self.events or not self.rest:
            raise ValueError("events and rest need at least one limit each")


def _tiers(*pairs: tuple[int, int]) -> tuple[RateLimit, ...]:
    return tuple(RateLimit(limit, timedelta(seconds=seconds)) for limit, seconds in pairs)


#: Commercial plan: 150 / 15 s, 600 / min, 36 000 / h, 864 000 / day; REST 150 / 15 s and 36 000 / h (ref §1.7).
COMMERCIAL_LIMITS = RateLimitPolicy(
    events=_tiers((150, 15), (600, 60), (36_000, 3_600), (864_000, 86_400)),
    rest=_tiers((150, 15), (36_000, 3_600)),
)
#: Free plan: 10 / 15 s, 240 / min, 1 200 / h, 4 800 / day; REST 10 / 15 s and 1 200 / h (ref §1.7).
FREE_LIMITS = RateLimitPolicy(
    events=_tiers((10, 15), (240, 60), (1_200, 3_600), (4_800, 86_400)),
    rest=_tiers((10, 15), (1_200, 3_600)),
)
#: Wrong team secret or corrupted payload: "10 per min" (ref §1.7).
INVALID_REQUEST_LIMITS = _tiers((10, 60))

_PLANS = {"commercial": COMMERCIAL_LIMITS, "free": FREE_LIMITS}


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Outcome of one throttling check, with what the ``X-RateLimit-*`` headers report."""

    allowed: bool
    limit: int
    remaining: int
    reset: datetime

    @property
    def reset_unix(self) -> int:
        """``X-RateLimit-Reset`` is a unix timestamp (ref §1.7); rounded up so a client never wakes too early."""
        return math.ceil(self.reset.timestamp())


@dataclass(slots=True)
class _Window:
    start: datetime
    count: int = 0
    blocked_until: datetime | None = None


class FixedWindows:
    """Fixed windows per (key, tier) with SIGNL4's penalty: "if an account surpasses the throttling limit, event
    receiving is blocked for the same time period (e.g. limit reached within 15 seconds → blocked for 15 seconds)"
    (ref §1.7).

    Unverified choices: a window starts with the first request (not on wall-clock boundaries), the block starts at
    the refused request, and requests refused while blocked do not extend the block. With several tiers the headers
    report the tier with the fewest remaining requests.
    """

    def __init__(self) -> None:
        self._windows: dict[tuple[str, int], _Window] = {}

    def clear(self) -> None:
        self._windows.clear()

    def _current(self, key: str, tiers: Sequence[RateLimit], now: datetime) -> list[_Window]:
        windows = []
        for index, tier in enumerate(tiers):
            window = self._windows.get((key, index))
            expired = window is not None and (
                now >= window.blocked_until if window.blocked_until is not None else now >= window.start + tier.window
            )
            if window is None or expired:
                window = _Window(start=now)
                self._windows[(key, index)] = window
            windows.append(window)
        return windows

    def check(self, key: str, tiers: Sequence[RateLimit], now: datetime, *, consume: bool = True) -> RateDecision:
        """Count one request (unless ``consume`` is false) and say whether it may pass."""
        windows = self._current(key, tiers, now)
        blocked = [(w.blocked_until, t) for w, t in zip(windows, tiers, strict=True) if w.blocked_until is not None]
        if not blocked and consume:
            exhausted = [(w, t) for w, t in zip(windows, tiers, strict=True) if w.count >= t.limit]
            for window, tier in exhausted:
                window.blocked_until = now + tier.window
            blocked = [(w.blocked_until, t) for w, t in exhausted if w.blocked_until is not None]
        if blocked:
            until, tier = max(blocked, key=lambda pair: pair[0])
            return RateDecision(allowed=False, limit=tier.limit, remaining=0, reset=until)
        if consume:
            for window in windows:
                window.count += 1
        remaining, index = min((t.limit - w.count, i) for i, (w, t) in enumerate(zip(windows, tiers, strict=True)))
        tier, window = tiers[index], windows[index]
        return RateDecision(allowed=True, limit=tier.limit, remaining=max(0, remaining),
                            reset=window.start + tier.window)


def limits_for_plan(name: str) -> RateLimitPolicy:
    """The documented limits of a plan, "commercial" or "free" (ref §1.7)."""
    try:
        return _PLANS[name.casefold()]
    except KeyError:
        raise InvalidRequestError("Unknown plan.", f"Plan must be one of {sorted(_PLANS)}.") from None
