"""The shared HTTP client and the shared failure classification of every remote call.

All clients (Sentinel, SIGNL4, …) send through one :class:`httpx.AsyncClient` built here, and turn every non-2xx
response and every transport failure into one of the typed errors of :mod:`sentinel_signl4.errors` with
:func:`classify_response` and :func:`classify_transport_error`. Messages name the service, the method, the
*redacted* URL, the status and the remote error code and message; never a header or a secret.

On the network the client's requests go through :class:`AiohttpTransport`: httpx's interface (requests, responses,
the error types the classification reads) on aiohttp's connection pool and C-accelerated HTTP parser, about five
times less CPU per request than httpx's own transport (``docs/performance.md``, ``docs/decisions.md``). Tests
replace the network with ``httpx.ASGITransport`` as before.
"""

from __future__ import annotations

import json
import os
import ssl
import time
import urllib.request
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import certifi
import httpx
import yarl

from sentinel_signl4 import __version__
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
from sentinel_signl4.redact import Redactor, redact_url

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "AiohttpTransport",
    "RemoteErrorBody",
    "build_http_client",
    "classify_response",
    "classify_transport_error",
    "describe_failure",
    "parse_error_body",
    "parse_retry_after",
    "ssl_context",
    "tls_failure",
]

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=5.0)
# A connector talks to three or four hosts; 20 kept-alive connections cover bursts of PUTs without opening a
# socket per request, and the 30 s expiry stays below the idle timeouts of Azure front ends (about 4 minutes).
DEFAULT_LIMITS = httpx.Limits(max_connections=50, max_keepalive_connections=20, keepalive_expiry=30.0)

_MAX_REMOTE_TEXT = 300


def ssl_context(ca_bundle: str | None = None) -> ssl.SSLContext:
    """A verifying TLS context: ``ca_bundle`` if given, else ``SSL_CERT_FILE``/``SSL_CERT_DIR``, else certifi."""
    if ca_bundle:
        return ssl.create_default_context(cafile=ca_bundle)
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    return ssl.create_default_context(cafile=certifi.where())


def build_http_client(
    *,
    ca_bundle: str | None = None,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    transport: httpx.AsyncBaseTransport | None = None,
    limits: httpx.Limits = DEFAULT_LIMITS,
) -> httpx.AsyncClient:
    """The one HTTP client of the process (HTTP/1.1 keep-alive, verified TLS, no redirects).

    On the network: :class:`AiohttpTransport`, unless the environment names a proxy (``HTTPS_PROXY`` …), which
    httpx's own transport honours (with ``NO_PROXY``) exactly as it always did.

    ``transport`` replaces the network (tests pass ``httpx.ASGITransport(app=emulator)``). Redirects are not
    followed: none of our APIs redirects, and following one would carry the bearer token to another host.
    """
    verify: ssl.SSLContext | bool = True
    if transport is None:
        verify = ssl_context(ca_bundle)
        if not uses_proxy():
            transport = AiohttpTransport(verify, limits=limits)
    return httpx.AsyncClient(
        verify=verify,
        timeout=timeout,
        limits=limits,
        transport=transport,
        http1=True,
        http2=False,
        follow_redirects=False,
        headers={"User-Agent": f"sentinel-signl4/{__version__}"},
    )


def uses_proxy() -> bool:
    """Whether the environment names an HTTP(S) proxy, the way httpx reads it (``urllib.request.getproxies``)."""
    return any(scheme in ("http", "https", "all") for scheme in urllib.request.getproxies())


# Set by aiohttp from the URL and the body; the values httpx computed are not passed on.
_AIOHTTP_OWN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport on an :class:`aiohttp.ClientSession` (created on first use, in the running loop).

    HTTP/1.1 with keep-alive (``limits``: at most ``max_connections`` open, idle ones closed after
    ``keepalive_expiry``), TLS verified with ``ssl_context``, no proxy (``build_http_client`` uses httpx's own
    transport when the environment names one), no redirects, no cookies, no ``.netrc``. The URL is sent exactly as
    httpx encoded it, the body as httpx serialised it, and the answer's bytes are handed back undecoded (httpx
    decodes ``Content-Encoding``).
    Timeouts come from the request (``connect``/``pool`` bound the wait for a connection, ``read`` each read).

    aiohttp's failures become the httpx errors with the same meaning for :func:`classify_transport_error`: no
    connection (refused, DNS, TLS, proxy, connect timeout) is ``ConnectError``/``ConnectTimeout``/``ProxyError``
    (the request never left); a failure after the request may have been written (read timeout, a dropped or reset
    connection, a malformed answer) is ``ReadTimeout``/``RemoteProtocolError``/``ReadError``: outcome unknown.
    """

    def __init__(self, ssl_context: ssl.SSLContext, *, limits: httpx.Limits = DEFAULT_LIMITS) -> None:
        self._ssl = ssl_context
        self._limits = limits
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                ssl=self._ssl, limit=self._limits.max_connections or 0, limit_per_host=0,
                keepalive_timeout=self._limits.keepalive_expiry or 15.0)
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, trust_env=False, cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=None), skip_auto_headers=("User-Agent", "Accept-Encoding"))
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        limits: Mapping[str, float | None] = request.extensions.get("timeout", {})
        wait = [t for t in (limits.get("pool"), limits.get("connect")) if t is not None]
        timeout = aiohttp.ClientTimeout(total=None, connect=sum(wait) if wait else None,
                                        sock_connect=limits.get("connect"), sock_read=limits.get("read"))
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw
                   if k.lower().decode("latin-1") not in _AIOHTTP_OWN_HEADERS]
        body = await request.aread()
        try:
            async with self._client().request(
                    request.method, yarl.URL(str(request.url), encoded=True), headers=headers, data=body or None,
                    allow_redirects=False, timeout=timeout) as answer:
                content = await answer.read()
                status, raw_headers = answer.status, list(answer.raw_headers)
        except aiohttp.ClientError as exc:
            raise _httpx_error(exc, request) from exc
        except TimeoutError as exc:  # a timeout aiohttp did not classify: the request may have left
            raise httpx.ReadTimeout(f"timed out: {exc}", request=request) from exc
        return httpx.Response(status, headers=raw_headers, content=content, request=request,
                              extensions={"http_version": b"HTTP/1.1"})

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _httpx_error(exc: aiohttp.ClientError, request: httpx.Request) -> httpx.TransportError:
    """The httpx error that means what ``exc`` means (see :class:`AiohttpTransport`)."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return httpx.ProxyError(text, request=request)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(text, request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):  # refused, DNS, TLS (certificate errors included)
        return httpx.ConnectError(text, request=request)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(text, request=request)
    if isinstance(exc, aiohttp.SocketTimeoutError | aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(text, request=request)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(text, request=request)
    return httpx.ReadError(text, request=request)  # reset, payload errors, anything else: it may have left


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or HTTP-date), ``retry-after-ms`` or ``x-ms-retry-after-ms``.

    Same precedence as azure-core. ``now`` (epoch seconds) is only used for the HTTP-date form. Negative values
    (a date in the past) become 0; unparseable values are ignored.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    value = lowered.get("retry-after")
    if value:
        seconds = _parse_seconds_or_date(value.strip(), now)
        if seconds is not None:
            return max(0.0, seconds)
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        value = lowered.get(name)
        if value:
            try:
                return max(0.0, float(value) / 1000.0)
            except ValueError:
                continue
    return None


def _parse_seconds_or_date(value: str, now: float | None) -> float | None:
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - (time.time() if now is None else now)


class RemoteErrorBody:
    """The code, message and details a remote system put in an error body (ARM, Graph, Entra, SIGNL4)."""

    __slots__ = ("code", "details", "message")

    def __init__(self, code: str | None = None, message: str | None = None, details: str | None = None) -> None:
        self.code = code
        self.message = message
        self.details = details

    def describe(self) -> str:
        parts = [part for part in (self.message, self.details) if part]
        text = " — ".join(parts)
        if len(text) > _MAX_REMOTE_TEXT:
            text = text[: _MAX_REMOTE_TEXT - 1] + "…"
        return f"{self.code}: {text}" if self.code and text else (self.code or text)


def parse_error_body(response: httpx.Response) -> RemoteErrorBody:
    """Best-effort parse of an error body. Never raises: a proxy's HTML page yields an empty result."""
    try:
        data: Any = json.loads(response.content) if response.content else None
    except ValueError:
        return RemoteErrorBody()
    if not isinstance(data, dict):
        return RemoteErrorBody()
    error = data.get("error")
    if isinstance(error, dict):
        # ARM / Graph: {"error": {"code", "message", "details": [...]}}
        return RemoteErrorBody(_text(error.get("code")), _text(error.get("message")))
    if isinstance(error, str):
        # Entra token endpoint: {"error": "invalid_client", "error_description": "AADSTS…\r\nTrace ID…"}
        description = _text(data.get("error_description"))
        first_line = description.splitlines()[0] if description else None
        return RemoteErrorBody(error, first_line)
    # SIGNL4 ErrorResponseContent: {"code": 3004, "message": "...", "details": "...", "requestId": "..."}
    return RemoteErrorBody(_text(data.get("code")), _text(data.get("message")), _text(data.get("details")))


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def classify_response(
    response: httpx.Response, service: str, *, redactor: Redactor | None = None
) -> RemoteError | None:
    """The typed error for a non-2xx ``response``, or ``None`` for 2xx.

    429 → :class:`RateLimitedError` (with Retry-After), 408/5xx → :class:`TransientError`, 401/403 →
    :class:`AuthError`, 404 → :class:`NotFoundError`, 409 → :class:`ConflictError`, other 4xx (and unexpected 1xx/3xx)
    → :class:`PermanentError`.
    """
    status = response.status_code
    if 200 <= status < 300:
        return None
    body = parse_error_body(response)
    message = describe_failure(response.request, service, f"HTTP {status}", body.describe(), redactor)
    code = body.code
    if status == 429:
        return RateLimitedError(message, retry_after=parse_retry_after(response.headers), status=status, code=code)
    if status == 408 or status >= 500:
        return TransientError(message, status=status, code=code)
    if status in (401, 403):
        return AuthError(message, status=status, code=code)
    if status == 404:
        return NotFoundError(message, status=status, code=code)
    if status == 409:
        return ConflictError(message, status=status, code=code)
    return PermanentError(message, status=status, code=code)


def classify_transport_error(
    exc: httpx.TransportError, request_sent: bool, *, service: str = "remote", redactor: Redactor | None = None
) -> RemoteError:
    """Map an httpx transport failure to a typed error.

    Failures before a connection was usable (connect, pool) mean the request never left: :class:`TransientError`.
    Failures while waiting for or reading the answer mean it may have been applied: :class:`OutcomeUnknownError`.
    For anything else ``request_sent`` decides (``False`` only when the caller knows nothing was written).
    """
    request = _request_of(exc)
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    tls = tls_failure(exc)
    if tls is not None:
        # An untrusted or mismatched certificate does not heal by retrying: say what to configure instead.
        reason = getattr(tls, "verify_message", None) or getattr(tls, "reason", None) or str(tls)
        return PermanentError(describe_failure(
            request, service, "not sent", f"TLS handshake failed ({reason}); check the CA bundle (tls.ca_bundle "
            "or SSL_CERT_FILE) and the host name", redactor))
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return TransientError(describe_failure(request, service, "not sent", detail, redactor))
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.ProxyError) and not request_sent:
        return PermanentError(describe_failure(request, service, "not sent", detail, redactor))
    if isinstance(
        exc, httpx.ReadTimeout | httpx.WriteTimeout | httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError
    ) or request_sent:
        return OutcomeUnknownError(describe_failure(request, service, "outcome unknown", detail, redactor))
    return TransientError(describe_failure(request, service, "not sent", detail, redactor))


def tls_failure(exc: BaseException) -> ssl.SSLError | None:
    """The certificate-verification error behind ``exc`` (httpx and azure-core wrap it), if that is the cause."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _request_of(exc: httpx.TransportError) -> httpx.Request | None:
    try:
        return exc.request
    except RuntimeError:  # httpx raises when the exception was created without a request
        return None


def describe_failure(
    request: httpx.Request | None, service: str, outcome: str, detail: str, redactor: Redactor | None
) -> str:
    """``"<service>: <METHOD> <redacted url> -> <outcome>: <detail>"`` with every known secret masked."""
    target = f"{request.method} {redact_url(request.url)}" if request is not None else "request"
    text = f"{service}: {target} -> {outcome}" + (f": {detail}" if detail else "")
    return redactor.redact(text) if redactor is not None else Redactor().redact(text)
