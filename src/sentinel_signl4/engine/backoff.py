"""Delays for outbox retries. The schedule is stored in the outbox so it survives restarts; the curve is
tenacity's full-jitter exponential, so it matches the in-call retries of the clients."""

from __future__ import annotations

from datetime import timedelta

from tenacity import RetryCallState, wait_random_exponential

__all__ = ["OutboxBackoff"]


class OutboxBackoff:
    def __init__(self, *, base_seconds: float = 2.0, max_seconds: float = 300.0) -> None:
        self._wait = wait_random_exponential(multiplier=base_seconds, max=max_seconds)
        self.max_seconds = max_seconds

    def delay(self, attempts: int, *, at_least: float = 0.0) -> timedelta:
        """Delay before attempt ``attempts + 1``; never shorter than ``at_least`` (a server's Retry-After)."""
        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = max(1, attempts)
        return timedelta(seconds=max(at_least, self._wait(state)))
