"""Adapters to the remote systems: one client per system, one request choke point each, typed errors.

Clients classify failures (:mod:`~sentinel_signl4.clients.errors`) and retry only within a bounded
:class:`~sentinel_signl4.clients.retry.RetryPolicy`; the engine decides what happens after that.
"""

from sentinel_signl4.clients.errors import (
    AuthError,
    ConflictError,
    NotFoundError,
    OutcomeUnknownError,
    PermanentError,
    RateLimitedError,
    RemoteError,
    TransientError,
)
from sentinel_signl4.clients.http import build_http_client, classify_response, classify_transport_error
from sentinel_signl4.clients.identity import (
    CredentialKind,
    TokenProvider,
    build_credential,
)
from sentinel_signl4.clients.ratelimit import SlidingWindowLimiter, limiter_for
from sentinel_signl4.clients.retry import NO_RETRY, RetryPolicy, RetryStats, call_with_retry, set_testing
from sentinel_signl4.clients.sentinel import SentinelClient
from sentinel_signl4.clients.signl4 import Signl4AccessReport, Signl4Client

__all__ = [
    "NO_RETRY",
    "AuthError",
    "ConflictError",
    "CredentialKind",
    "NotFoundError",
    "OutcomeUnknownError",
    "PermanentError",
    "RateLimitedError",
    "RemoteError",
    "RetryPolicy",
    "RetryStats",
    "SentinelClient",
    "Signl4AccessReport",
    "Signl4Client",
    "SlidingWindowLimiter",
    "TokenProvider",
    "TransientError",
    "build_credential",
    "build_http_client",
    "call_with_retry",
    "classify_response",
    "classify_transport_error",
    "limiter_for",
    "set_testing",
]
