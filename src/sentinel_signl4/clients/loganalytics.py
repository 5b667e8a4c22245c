"""Log Analytics queries through azure-monitor-query's async ``LogsQueryClient``, with our error contract.

Why the SDK and not one more ``httpx`` POST: it handles the response shapes for us — typed cells (``datetime``
columns become ``datetime``), and the difference between a result, a *partial* result (HTTP 200 with an
``error`` member, ``LogsQueryPartialResult``) and a failure (``HttpResponseError``) — and it is what Microsoft
maintains when the API moves. It runs unchanged: its own transport (aiohttp), TLS verification via
``connection_verify`` (the configured CA bundle, like every other client), its own bearer-token policy fed by our
:class:`~sentinel_signl4.clients.identity.TokenProvider` so there is one token cache and one error contract.

What we change is the policy, not the client: azure-core's retries are off (``retry_total=0``) because its
defaults (10 retries, Retry-After honoured whatever its length) would blow any time budget; the caller applies a
bounded :class:`~sentinel_signl4.clients.retry.RetryPolicy` instead. And every query passes a
:class:`QueryGate`, so one principal never has more than 5 queries in flight nor more than 200 per 30 seconds —
the service's documented per-user limits (reference microsoft-apis.md §2.4), shared by every connector that uses
the same credential.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import weakref
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

import certifi
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.monitor.query import LogsQueryPartialResult
from azure.monitor.query.aio import LogsQueryClient

from sentinel_signl4.clients.azure_actions import (
    QUERY_READ,
    WORKSPACE_READ,
    missing_action_hint,
    query_table_actions,
    requires_actions,
    table_read_action,
)
from sentinel_signl4.clients.http import parse_retry_after
from sentinel_signl4.clients.identity import TokenProvider
from sentinel_signl4.clients.ratelimit import SlidingWindowLimiter
from sentinel_signl4.clients.retry import OnRetry, RetryPolicy, call_with_retry
from sentinel_signl4.domain.kql import LogRows
from sentinel_signl4.errors import (
    AuthError,
    NotFoundError,
    OutcomeUnknownError,
    PermanentError,
    RateLimitedError,
    RemoteError,
    TransientError,
)

__all__ = [
    "LOG_ANALYTICS_ENDPOINT",
    "LOG_ANALYTICS_SCOPE",
    "LogAnalyticsClient",
    "LogRows",
    "QueryGate",
    "query_gate_for",
    "reset_query_gates",
]

LOG_ANALYTICS_ENDPOINT = "https://api.loganalytics.io"
LOG_ANALYTICS_SCOPE = "https://api.loganalytics.io/.default"
MAX_CONCURRENT_QUERIES = 5
QUERIES_PER_WINDOW = 200
QUERY_WINDOW_SECONDS = 30.0

_SERVICE = "loganalytics"
_MAX_REMOTE_TEXT = 300


class QueryGate:
    """At most ``concurrent`` queries in flight and ``rate`` per ``window`` seconds, for one principal.

    The concurrency limit is an ``asyncio.Semaphore`` per event loop (a semaphore is bound to the loop it first
    waits on; tests and the CLI may run several loops in one process).
    """

    def __init__(self, concurrent: int = MAX_CONCURRENT_QUERIES, rate: int = QUERIES_PER_WINDOW,
                 window: float = QUERY_WINDOW_SECONDS) -> None:
        if concurrent < 1:
            raise ValueError("concurrent must be at least 1")
        self.concurrent = concurrent
        self._limiter = SlidingWindowLimiter(rate, window)
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self.in_flight = 0
        self.max_in_flight = 0

    def __repr__(self) -> str:
        return f"QueryGate(concurrent={self.concurrent}, limiter={self._limiter!r})"

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self.concurrent)
        return semaphore

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for a free slot and a rate-limit grant; hold the slot while the block runs."""
        async with self._semaphore():
            await self._limiter.acquire()
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                yield
            finally:
                self.in_flight -= 1


_gates: dict[str, QueryGate] = {}


def query_gate_for(principal: str) -> QueryGate:
    """The process-wide gate of ``principal`` (e.g. ``"<tenant>/<client id>"``), created on first use."""
    gate = _gates.get(principal)
    if gate is None:
        gate = _gates[principal] = QueryGate()
    return gate


def reset_query_gates() -> None:
    """Forget every shared gate (tests; a reload of the configuration)."""
    _gates.clear()


class _ProviderCredential:
    """An azure-core ``AsyncTokenCredential`` over our :class:`TokenProvider` (one cache, one error contract).

    Our provider does not expose expiry; the bearer policy is told five minutes, so it asks again well before a
    real token (an hour) expires, and the provider answers from azure-identity's cache.
    """

    def __init__(self, tokens: TokenProvider) -> None:
        self._tokens = tokens

    async def get_token(self, *scopes: str, **_kwargs: Any) -> AccessToken:
        token = await self._tokens.token(scopes[0])
        return AccessToken(token, int(time.time()) + 300)

    async def close(self) -> None:
        """The provider is owned (and closed) by whoever built it."""

    async def __aenter__(self) -> _ProviderCredential:
        return self

    async def __aexit__(self, *_args: object) -> None:
        return None


def _verify(ca_bundle: str | None) -> str | bool:
    # The same trust as the shared httpx client (clients.http.ssl_context): the configured bundle, else
    # SSL_CERT_FILE, else certifi. aiohttp would otherwise use the system store, and read SSL_CERT_FILE only
    # if it was set before aiohttp was imported.
    if ca_bundle:
        return ca_bundle
    if os.environ.get("SSL_CERT_FILE"):
        return os.environ["SSL_CERT_FILE"]
    if os.environ.get("SSL_CERT_DIR"):
        return True
    return certifi.where()


def build_query_client(tokens: TokenProvider, *, endpoint: str = LOG_ANALYTICS_ENDPOINT,
                       audience: str = LOG_ANALYTICS_ENDPOINT, ca_bundle: str | None = None, timeout: float = 30.0,
                       transport: Any = None) -> LogsQueryClient:
    """An azure-monitor-query client for ``tokens``' principal at ``endpoint``. It names no workspace, so the
    connectors of one principal can share it (one pipeline and connection pool instead of one each)."""
    options: dict[str, Any] = {
        "endpoint": endpoint.rstrip("/"), "audience": audience.rstrip("/"), "retry_total": 0,
        "connection_verify": _verify(ca_bundle), "connection_timeout": min(10.0, timeout), "read_timeout": timeout,
    }
    if transport is not None:
        options["transport"] = transport
    return LogsQueryClient(_ProviderCredential(tokens), **options)


class LogAnalyticsClient:
    """Queries against one workspace (its GUID, ``workspace_id``).

    ``audience`` is the token audience (``https://api.loganalytics.io`` in the public cloud, whatever the
    endpoint); ``gate`` bounds concurrency and rate for the principal; ``retry`` bounds each query.
    ``transport`` replaces azure-core's transport (an ``AsyncHttpTransport``), for tests only. ``query_client``:
    a client from ``build_query_client`` shared with other workspaces of the same principal (then ``endpoint``,
    ``audience``, ``ca_bundle`` and ``transport`` are its own), which ``close`` leaves open for its owner.
    """

    def __init__(
        self,
        tokens: TokenProvider,
        *,
        workspace_id: str,
        endpoint: str = LOG_ANALYTICS_ENDPOINT,
        audience: str = LOG_ANALYTICS_ENDPOINT,
        ca_bundle: str | None = None,
        gate: QueryGate | None = None,
        retry: RetryPolicy | None = None,
        on_retry: OnRetry | None = None,
        timeout: float = 30.0,
        transport: Any = None,
        query_client: LogsQueryClient | None = None,
    ) -> None:
        self.workspace_id = workspace_id
        self._endpoint = endpoint.rstrip("/")
        self._gate = gate or QueryGate()
        self._retry = retry or RetryPolicy(attempts=2, total_timeout=timeout)
        self._on_retry = on_retry
        self._owns_client = query_client is None
        self._client = query_client or build_query_client(tokens, endpoint=endpoint, audience=audience,
                                                          ca_bundle=ca_bundle, timeout=timeout, transport=transport)

    def __repr__(self) -> str:
        return f"LogAnalyticsClient(workspace_id={self.workspace_id!r}, endpoint={self._endpoint!r})"

    @property
    def gate(self) -> QueryGate:
        return self._gate

    @property
    def query_client(self) -> LogsQueryClient:
        """The azure-monitor-query client the queries go through (shared, or this client's own)."""
        return self._client

    @requires_actions(WORKSPACE_READ, QUERY_READ, per_call=query_table_actions)
    async def query(self, kql: str, *, start: datetime, end: datetime, server_timeout: int | None = None) -> LogRows:
        """Run ``kql`` over ``[start, end]``; the first table's rows, or a typed :class:`RemoteError`.

        ``server_timeout`` (seconds) is sent as ``Prefer: wait=…`` so the service stops working on a query we
        will not wait for anyway.
        """

        async def attempt() -> LogRows:
            async with self._gate.slot():
                return await self._query_once(kql, start, end, server_timeout)

        return await call_with_retry(attempt, self._retry, idempotent=True, on_retry=self._on_retry,
                                     service="loganalytics")

    async def _query_once(self, kql: str, start: datetime, end: datetime, server_timeout: int | None) -> LogRows:
        try:
            result = await self._client.query_workspace(
                self.workspace_id, kql, timespan=(start, end), server_timeout=server_timeout,
            )
        except HttpResponseError as exc:
            raise self._classify(exc) from exc
        except ServiceRequestError as exc:
            raise TransientError(f"{_SERVICE}: query -> not sent: {_short(str(exc))}") from exc
        except ServiceResponseError as exc:
            # A read: repeating it is harmless, but the typed error says what happened.
            raise OutcomeUnknownError(f"{_SERVICE}: query -> no answer: {_short(str(exc))}") from exc
        tables = result.partial_data if isinstance(result, LogsQueryPartialResult) else result.tables
        partial = None
        if isinstance(result, LogsQueryPartialResult):
            error = result.partial_error
            partial = _short(f"{getattr(error, 'code', '')}: {getattr(error, 'message', '')}".strip(": "))
        if not tables:
            return LogRows((), (), partial)
        table = tables[0]
        columns = tuple(str(name) for name in table.columns)
        rows = tuple(dict(zip(columns, list(row), strict=False)) for row in table.rows)
        return LogRows(columns, rows, partial)

    def _classify(self, exc: HttpResponseError) -> RemoteError:
        status = exc.status_code
        model = getattr(exc, "model", None)
        code = getattr(model, "code", None) or None
        detail = getattr(model, "message", None) or _first_line(exc.message or str(exc))
        message = f"{_SERVICE}: query -> HTTP {status}: " + _short(f"{code}: {detail}" if code else str(detail))
        headers: Mapping[str, str] = getattr(exc.response, "headers", None) or {}
        if status == 429:
            return RateLimitedError(message, retry_after=parse_retry_after(dict(headers)), status=status, code=code)
        if status is not None and (status == 408 or status >= 500):
            return TransientError(message, status=status, code=code)
        if status in (401, 403):
            return AuthError(message, status=status, code=code)
        if status == 404:
            return NotFoundError(message, status=status, code=code)
        return PermanentError(message, status=status, code=code)

    @requires_actions(WORKSPACE_READ, QUERY_READ, table_read_action("SecurityAlert"))  # the query below
    async def check_access(self) -> None:
        """Prove the identity can query the workspace (one tiny query); raise a typed error saying what to fix."""
        end = datetime.now().astimezone()
        where = f"the workspace {self.workspace_id}"
        try:
            await self.query("SecurityAlert | take 1", start=end.replace(microsecond=0), end=end)
        except AuthError as exc:
            if exc.status != 403:
                raise
            # The query API's 403 does not name the action: every one this call declares is listed.
            declared = [WORKSPACE_READ, QUERY_READ, table_read_action("SecurityAlert")]
            raise AuthError(f"{exc.message} ({missing_action_hint(exc.message, declared, where)})",
                            status=exc.status, code=exc.code) from exc

    async def close(self) -> None:
        if self._owns_client:
            await self._client.close()


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _short(text: str) -> str:
    return text if len(text) <= _MAX_REMOTE_TEXT else text[: _MAX_REMOTE_TEXT - 1] + "…"
