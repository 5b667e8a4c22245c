"""Compatibility alias: the error types live in :mod:`sentinel_signl4.errors`, which the engine may import."""

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

__all__ = [
    "AuthError",
    "ConflictError",
    "NotFoundError",
    "OutcomeUnknownError",
    "PermanentError",
    "RateLimitedError",
    "RemoteError",
    "TransientError",
]
