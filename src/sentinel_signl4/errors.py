"""Typed failures of remote calls, vendor-neutral: adapters classify; only the engine decides whether to retry.

Messages never contain secrets: every client builds them from redacted URLs (see ``sentinel_signl4.redact``).
"""

from __future__ import annotations

__all__ = [
    "BUDGET_SPENT",
    "AuthError",
    "ConflictError",
    "NotFoundError",
    "OutcomeUnknownError",
    "PermanentError",
    "RateLimitedError",
    "RemoteError",
    "TransientError",
]


class RemoteError(Exception):
    """Base of every failure talking to a remote system."""

    retryable: bool = False

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class TransientError(RemoteError):
    """5xx, connection refused before the request left, DNS hiccups: safe to try again."""

    retryable = True


class OutcomeUnknownError(TransientError):
    """The request may have reached the remote side (timeout after sending, connection reset mid-response).

    For non-idempotent calls (raising a Signl) the engine must reconcile before re-sending.
    """


class RateLimitedError(TransientError):
    """429 or equivalent. ``retry_after`` is in seconds, from Retry-After / X-RateLimit-Reset when given."""

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = 429,
                 code: str | None = None) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


#: ``code`` of a :class:`RateLimitedError` for a call that was not made because our own tracked budget is spent
#: (no request left the process; nothing was throttled remotely).
BUDGET_SPENT = "BudgetSpent"


class AuthError(RemoteError):
    """401/403, a rejected credential or a missing role. Retrying will not help until config changes."""


class NotFoundError(RemoteError):
    """404: wrong workspace, wrong SIGNL4 team secret (code 3004), unknown incident."""


class ConflictError(RemoteError):
    """409: a stale etag (Sentinel) or a lifecycle violation (SIGNL4). Re-read and re-apply."""


class PermanentError(RemoteError):
    """400 and other answers that will not change on retry."""
