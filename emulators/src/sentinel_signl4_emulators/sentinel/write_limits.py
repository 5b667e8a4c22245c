"""Microsoft Sentinel's own per-operation request limits, on top of ARM's token buckets.

learn.microsoft.com, "Microsoft Sentinel REST API: request limits and throttling" lists minimum limits "per 5 minutes,
and per subscription and endpoint": PUT incident 75, PUT comments 75, GET incident alerts 100, GET incident entities
100 (the API calls the last two with POST). Past a limit the answer is 429 with ``Retry-After`` seconds. The emulator
counts per workspace and operation in a sliding window (the service's window shape is not documented [unverified]),
and keeps how many 429s it answered, so tests and benches can prove that a client never provoked one.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass

__all__ = ["DEFAULT_WRITE_LIMITS", "DEFAULT_WRITE_WINDOW", "LimitDecision", "WriteLimits"]

#: Operation → requests per window (the documented minimums).
DEFAULT_WRITE_LIMITS: Mapping[str, int] = {"incidents": 75, "comments": 75, "alerts": 100, "entities": 100}
DEFAULT_WRITE_WINDOW = 300.0


@dataclass(frozen=True, slots=True)
class LimitDecision:
    allowed: bool
    retry_after: int  # whole seconds until the oldest request of the window drops out; 0 when allowed


class WriteLimits:
    """Sliding-window counters per (workspace, operation); thread-safe (the HTTPS server runs in its own thread)."""

    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._limits = dict(DEFAULT_WRITE_LIMITS)
        self._window = DEFAULT_WRITE_WINDOW
        self._seen: dict[tuple[Hashable, str], deque[float]] = {}
        self._refused: dict[str, int] = dict.fromkeys(DEFAULT_WRITE_LIMITS, 0)
        self._granted: dict[str, int] = dict.fromkeys(DEFAULT_WRITE_LIMITS, 0)

    def configure(self, *, window: float | None = None, limits: Mapping[str, int] | None = None) -> None:
        """Change the window and/or some operations' limits; counting starts over."""
        with self._lock:
            if window is not None:
                if window <= 0:
                    raise ValueError("window must be > 0")
                self._window = float(window)
            for operation, limit in (limits or {}).items():
                if operation not in self._limits:
                    raise ValueError(f"unknown operation {operation!r}; known: {sorted(self._limits)}")
                if int(limit) < 1:
                    raise ValueError(f"limit of {operation!r} must be >= 1")
                self._limits[operation] = int(limit)
            self._seen.clear()

    def reset(self) -> None:
        """Documented limits, empty windows, counters at zero."""
        with self._lock:
            self._limits = dict(DEFAULT_WRITE_LIMITS)
            self._window = DEFAULT_WRITE_WINDOW
            self._seen.clear()
            self._refused = dict.fromkeys(DEFAULT_WRITE_LIMITS, 0)
            self._granted = dict.fromkeys(DEFAULT_WRITE_LIMITS, 0)

    def take(self, key: Hashable, operation: str) -> LimitDecision:
        """Count one ``operation`` request of ``key`` (a workspace), or refuse it with the wait."""
        with self._lock:
            now = self._monotonic()
            seen = self._seen.setdefault((key, operation), deque())
            while seen and seen[0] <= now - self._window:
                seen.popleft()
            if len(seen) < self._limits[operation]:
                seen.append(now)
                self._granted[operation] += 1
                return LimitDecision(allowed=True, retry_after=0)
            self._refused[operation] += 1
            wait = seen[0] + self._window - now
            return LimitDecision(allowed=False, retry_after=max(1, math.ceil(wait)))

    def snapshot(self) -> dict[str, object]:
        """The settings and the counters: ``{"window", "limits", "granted", "refused"}``."""
        with self._lock:
            return {"window": self._window, "limits": dict(self._limits), "granted": dict(self._granted),
                    "refused": dict(self._refused)}
