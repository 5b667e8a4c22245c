"""Token buckets, the shape of ARM's request throttling since 2024.

ARM documents buckets per (subscription, principal, operation type) — reads 250 deep refilling 25/s, writes and
deletes 200 deep refilling 10/s — and answers an empty bucket with 429 and ``Retry-After`` (seconds).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass

__all__ = ["ARM_DEFAULT_POLICIES", "BucketPolicy", "Decision", "TokenBuckets"]


@dataclass(frozen=True, slots=True)
class BucketPolicy:
    capacity: float
    refill_per_second: float

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.refill_per_second <= 0:
            raise ValueError("capacity must be >= 1 and refill_per_second > 0")


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    remaining: int
    retry_after: int  # whole seconds until one token is back; 0 when allowed


#: Subscription-scope limits from learn.microsoft.com "request-limits-and-throttling" (token bucket, since 2024).
ARM_DEFAULT_POLICIES: Mapping[str, BucketPolicy] = {
    "reads": BucketPolicy(capacity=250, refill_per_second=25),
    "writes": BucketPolicy(capacity=200, refill_per_second=10),
    "deletes": BucketPolicy(capacity=200, refill_per_second=10),
}


class TokenBuckets:
    """One bucket per (key, operation type); thread-safe because the HTTPS server runs in its own thread."""

    def __init__(
        self,
        policies: Mapping[str, BucketPolicy] = ARM_DEFAULT_POLICIES,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._defaults = dict(policies)
        self._policies = dict(policies)
        self._monotonic = monotonic
        self._buckets: dict[tuple[Hashable, str], tuple[float, float]] = {}  # -> (tokens, last refill time)
        self._lock = threading.Lock()

    def configure(self, operation: str, policy: BucketPolicy) -> None:
        """Change one operation type's policy; existing buckets start over full."""
        with self._lock:
            self._policies[operation] = policy
            self._buckets = {k: v for k, v in self._buckets.items() if k[1] != operation}

    def policies(self) -> dict[str, BucketPolicy]:
        with self._lock:
            return dict(self._policies)

    def reset(self) -> None:
        """Back to the construction-time policies with full buckets."""
        with self._lock:
            self._policies = dict(self._defaults)
            self._buckets.clear()

    def take(self, key: Hashable, operation: str) -> Decision:
        """Take one token for ``operation`` from ``key``'s bucket, or say how long to wait."""
        with self._lock:
            policy = self._policies[operation]
            now = self._monotonic()
            tokens, last = self._buckets.get((key, operation), (policy.capacity, now))
            tokens = min(policy.capacity, tokens + (now - last) * policy.refill_per_second)
            if tokens >= 1:
                tokens -= 1
                self._buckets[(key, operation)] = (tokens, now)
                return Decision(allowed=True, remaining=int(tokens), retry_after=0)
            self._buckets[(key, operation)] = (tokens, now)
            wait = (1 - tokens) / policy.refill_per_second
            return Decision(allowed=False, remaining=0, retry_after=max(1, math.ceil(wait)))
