"""Graph's per-app-per-tenant request budget (reference §3.4)."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = ["DEFAULT_THROTTLE_LIMIT", "DEFAULT_THROTTLE_WINDOW", "SlidingWindow", "ThrottleDecision"]

DEFAULT_THROTTLE_LIMIT: Final = 150  # requests per minute per app per tenant (reference §3.4)
DEFAULT_THROTTLE_WINDOW: Final = 60.0


@dataclass(frozen=True, slots=True)
class ThrottleDecision:
    allowed: bool
    retry_after: int  # whole seconds until the oldest counted request leaves the window; 0 when allowed


class SlidingWindow:
    """At most ``limit`` requests in any ``window`` seconds per key. Graph documents "150 requests per minute";
    whether its window slides or is fixed is unverified — sliding is the stricter reading."""

    def __init__(self, limit: int, window: float, monotonic: Callable[[], float]) -> None:
        self.limit = limit
        self.window = window
        self._monotonic = monotonic
        self._seen: dict[tuple[str, str], deque[float]] = {}

    def take(self, key: tuple[str, str]) -> ThrottleDecision:
        now = self._monotonic()
        seen = self._seen.setdefault(key, deque())
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        if len(seen) >= self.limit:
            wait = seen[len(seen) - self.limit] + self.window - now
            return ThrottleDecision(False, max(1, math.ceil(wait)))
        seen.append(now)
        return ThrottleDecision(True, 0)
