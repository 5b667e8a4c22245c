"""The SIGNL4 outbound-webhook receiver: authenticate → bound the body → validate → inbox → 202.

``POST /webhooks/signl4/{connector}/{token}``

**Why the token is a path segment.** SIGNL4 lets an outbound webhook have only a name and a URL: no header, no
signature (reference: signl4-api.md §2.1), so the secret has to be part of the URL. We put it in the path, not in
``?token=``:

* one URL shape per connector, and a request without the segment simply does not authenticate;
* query strings are what proxies, CDNs and analytics tools most often log, strip or forward elsewhere; paths are
  logged too (every access log has them), so neither is secret *from the operator's proxy*: treat the token as
  exposed to anyone who can read those logs and rotate it if they leak;
* inside this process nothing prints it: uvicorn's access log is off (``server.py``), this module never logs a
  path or a token, and the token is a ``SecretStr`` registered with the log redactor.

**What answers what.** (checked in this order, so an unauthenticated caller learns nothing but "not found"):

=====================================================================  ======================================
any method but POST                                                    405 (Starlette, before this code runs)
unknown connector, wrong or missing token, connector disabled, without
``webhook_token``, or whose (effective) ``sync.mode`` is poll/off      404 ``{"error": "not found"}``, same body
``Content-Length`` over ``max_body_bytes``, or a body that grows past
it while streaming (chunked, no length)                                413
bad ``Content-Length``, body not UTF-8 (UTF-16/32 with or without BOM,
Latin-1 bytes), not JSON, not an object, no string/integer ``id``, no
integer ``eventType``, NaN/Infinity, NUL characters, nesting deeper than
``MAX_JSON_DEPTH``                                                     400
body not complete within ``[server] body_timeout``                     408
event type 1 (test ping) or 300-303 (duty periods, punch in/out)       202 ``{"status": "ignored"}``, not stored
a new event                                                            202 ``{"status": "accepted"}``, inbox row
an event id already in the inbox                                       200 ``{"status": "duplicate"}``
the store fails                                                        503 (SIGNL4 may deliver again)
=====================================================================  ======================================

Tokens are compared with ``hmac.compare_digest`` on SHA-256 digests, so the comparison takes the same time
whatever the token's length or content; an unknown connector is compared against a random decoy digest, so
"no such connector" costs the same as "wrong token".

Why ignored types are not stored: they change nothing in Sentinel, duty events arrive at every shift change, and
the processor would only mark them done. Unknown event types *are* stored: the processor decides, so a type SIGNL4
adds later is not lost at the edge. Nothing is written for any answer but 202 ``accepted``.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import hashlib
import hmac
import json
import math
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote

import structlog
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from sentinel_signl4.config import Config, ConnectorConfig
from sentinel_signl4.metrics import Metrics
from sentinel_signl4.store import StateStore
from sentinel_signl4.store.base import InboxEvent
from sentinel_signl4.web.context import json_response

__all__ = [
    "IGNORED_EVENT_TYPES",
    "MAX_EVENT_ID_CHARS",
    "MAX_JSON_DEPTH",
    "WEBHOOK_PREFIX",
    "MalformedEventError",
    "WebhookEvent",
    "WebhookOutcome",
    "WebhookReceiver",
    "WebhookUrlError",
    "accepts_webhooks",
    "parse_event",
    "webhook_path",
    "webhook_url",
]

log = structlog.get_logger("sentinel_signl4.web.webhook")

WEBHOOK_PREFIX = "/webhooks/signl4"
# SIGNL4 ids are GUIDs (36 characters). The cap keeps one key inside PostgreSQL's B-tree entry limit (~2.7 kB).
MAX_EVENT_ID_CHARS = 256
# SIGNL4 payloads nest 3 levels deep; the cap keeps hostile nesting away from the processor and JSON columns.
MAX_JSON_DEPTH = 32
# 1 = test ping (observed, undocumented), 300/301 = duty period started/ended, 302/303 = punched in/out.
IGNORED_EVENT_TYPES = frozenset({1, 300, 301, 302, 303})
# Connector label for requests that named no configured connector (not a valid connector name, see metrics.py).
_NO_CONNECTOR = "-"


class WebhookOutcome(StrEnum):
    """How a webhook request was answered; the ``outcome`` label of ``s4s_webhook_events_total``."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    NOT_FOUND = "not_found"
    TOO_LARGE = "too_large"
    TOO_SLOW = "too_slow"
    MALFORMED = "malformed"
    STORE_UNAVAILABLE = "store_unavailable"


class MalformedEventError(ValueError):
    """The body is not a SIGNL4 outbound-webhook event; the message says why (safe to return to the caller)."""


class WebhookUrlError(ValueError):
    """The webhook URL of a connector cannot be built; the message says what to configure."""


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A validated event: the inbox key, its type, and the whole parsed body (stored as it came)."""

    event_id: str
    event_type: int
    payload: dict[str, Any]


# -- URLs ----------------------------------------------------------------------------------------------------------
def accepts_webhooks(connector: ConnectorConfig) -> bool:
    """Whether the receiver takes events for ``connector`` (enabled, effective sync mode webhook/both, token set)."""
    token = connector.sync.webhook_token
    return (connector.enabled and connector.sync_mode in ("webhook", "both")
            and token is not None and token.get_secret_value() != "")


def webhook_path(connector: str, token: str) -> str:
    """The path SIGNL4 must call for ``connector``. Contains the secret ``token``: never log it."""
    return f"{WEBHOOK_PREFIX}/{quote(connector, safe='')}/{quote(token, safe='')}"


def webhook_url(config: Config, connector: str) -> str:
    """The full URL to register in SIGNL4 for ``connector``; contains its secret token.

    Raises ``WebhookUrlError`` naming the missing setting when the server would not accept the URL.
    """
    try:
        cfg = config.connector(connector)
    except KeyError as exc:
        raise WebhookUrlError(str(exc.args[0])) from None
    public = config.server.public_url.strip().rstrip("/")
    if not public:
        raise WebhookUrlError("[server] public_url is not set: set it to the https:// address SIGNL4 reaches this "
                              "server at, e.g. public_url = \"https://signl4-connector.contoso.com\"")
    if not public.startswith(("https://", "http://")):
        raise WebhookUrlError(f"[server] public_url must start with https:// (or http://), got {public!r}")
    token = cfg.sync.webhook_token
    if token is None or not token.get_secret_value():
        raise WebhookUrlError(
            f"connector {connector!r} has no sync.webhook_token: set it to a long random value, e.g. the output "
            "of: python3 -c \"import secrets; print(secrets.token_urlsafe(32))\"")
    if cfg.sync_mode not in ("webhook", "both"):
        raise WebhookUrlError(f"connector {connector!r} has sync.mode = {cfg.sync_mode!r}: the server answers "
                              "404 to its webhooks; set mode = \"webhook\" or \"both\"")
    if not cfg.enabled:
        raise WebhookUrlError(f"connector {connector!r} is disabled (enabled = false): the server answers 404 "
                              "to its webhooks")
    return public + webhook_path(connector, token.get_secret_value())


# -- parsing -------------------------------------------------------------------------------------------------------
def _reject_constant(name: str) -> Any:
    raise MalformedEventError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        # 1e400 parses as inf, which no JSON column can store back.
        raise MalformedEventError("number out of range")
    return value


def _check_storable(payload: object) -> None:
    """Refuse what parses but cannot be stored: deep nesting, NUL and lone surrogates (PostgreSQL ``jsonb``
    rejects both; UTF-8 cannot encode the latter). Iterative, so hostile nesting cannot exhaust the stack."""
    stack: list[tuple[object, int]] = [(payload, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise MalformedEventError("strings must not contain NUL characters")
            if not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    raise MalformedEventError("strings must be valid Unicode (lone surrogate escape)") from None
        elif isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise MalformedEventError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
            items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)


def _utf8_text(body: bytes) -> str:
    """The body as text. SIGNL4 sends JSON in UTF-8 (reference signl4-api.md §2.3); ``json.loads`` would guess
    UTF-16 and UTF-32 from the first bytes and accept them, so the encoding is checked here, strictly."""
    if body.startswith(codecs.BOM_UTF8):
        return _utf8_text(body[len(codecs.BOM_UTF8):])  # RFC 8259 §8.1: a parser may ignore a UTF-8 BOM
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_BE)):
        raise MalformedEventError("body must be JSON encoded as UTF-8; it starts with a UTF-16/UTF-32 byte order "
                                  "mark")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedEventError(f"body must be JSON encoded as UTF-8; byte {exc.start} is not valid UTF-8 "
                                  "(Latin-1 or another encoding?)") from None
    if "\x00" in text:
        # Raw NUL bytes: ASCII text as UTF-16/UTF-32 without a byte order mark (JSON escapes a NUL as \u0000).
        raise MalformedEventError("body must be JSON encoded as UTF-8; it contains NUL bytes (UTF-16 or UTF-32?)")
    return text


def parse_event(body: bytes) -> WebhookEvent:
    """Validate a webhook body. Raises ``MalformedEventError`` with a reason fit for the 400 answer."""
    text = _utf8_text(body)
    try:
        parsed = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except MalformedEventError:
        raise
    except RecursionError:
        raise MalformedEventError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError:  # JSONDecodeError, ints over Python's digit limit
        raise MalformedEventError("body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise MalformedEventError("body must be a JSON object")
    _check_storable(parsed)
    raw_id = parsed.get("id")
    # bool is an int subclass, and true/false are not identifiers.
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int):
        raise MalformedEventError("\"id\" must be a string or an integer")
    event_id = str(raw_id)
    if not event_id.strip() or len(event_id) > MAX_EVENT_ID_CHARS:
        raise MalformedEventError(f"\"id\" must be 1 to {MAX_EVENT_ID_CHARS} characters")
    event_type = parsed.get("eventType")
    if isinstance(event_type, bool) or not isinstance(event_type, int):
        raise MalformedEventError("\"eventType\" must be an integer")
    return WebhookEvent(event_id=event_id, event_type=event_type, payload=parsed)


# -- the endpoint --------------------------------------------------------------------------------------------------
class _Rejected(Exception):
    def __init__(self, status: int, outcome: WebhookOutcome, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.outcome = outcome
        self.message = message


def _digest(token: str) -> bytes:
    # Hashing first makes compare_digest's running time independent of the token's length too.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class WebhookReceiver:
    """Answers ``POST /webhooks/signl4/{connector}/{token}`` (mount with ``path`` ``{rest:path}``)."""

    def __init__(self, connectors: Sequence[ConnectorConfig], *, store: StateStore, metrics: Metrics,
                 clock: Callable[[], datetime], max_body_bytes: int,
                 on_event: Callable[[str], None] | None = None, body_timeout: float = 20.0) -> None:
        self._store = store
        self._body_timeout = body_timeout
        self._on_event = on_event
        self._metrics = metrics
        self._clock = clock
        self._max_body_bytes = max_body_bytes
        self._known = frozenset(c.name for c in connectors)
        self._expected: Mapping[str, bytes] = {
            c.name: _digest(c.sync.webhook_token.get_secret_value())
            for c in connectors if accepts_webhooks(c) and c.sync.webhook_token is not None
        }
        # Compared against when the connector is unknown or takes no webhooks; nobody can present its preimage.
        self._decoy = _digest(secrets.token_urlsafe(32))
        for name in self._expected:
            for outcome in WebhookOutcome:
                self._metrics.webhook_events.labels(name, outcome.value)

    def _authenticate(self, connector: str, token: str) -> bool:
        expected = self._expected.get(connector)
        # Always exactly one constant-time comparison, whether or not the connector exists.
        matched = hmac.compare_digest(_digest(token), expected if expected is not None else self._decoy)
        return matched and expected is not None

    async def handle(self, request: Request) -> Response:
        """The Starlette endpoint."""
        connector, _, token = str(request.path_params.get("rest", "")).partition("/")
        if not self._authenticate(connector, token):
            # Label only configured names: the path is attacker-chosen (see metrics.py).
            label = connector if connector in self._known else _NO_CONNECTOR
            self._metrics.webhook_events.labels(label, WebhookOutcome.NOT_FOUND.value).inc()
            return json_response(404, {"error": "not found"})
        try:
            event = parse_event(await self._read_body(request))
        except _Rejected as exc:
            return self._reject(connector, exc)
        except MalformedEventError as exc:
            return self._reject(connector, _Rejected(400, WebhookOutcome.MALFORMED, str(exc)))
        return await self._store_event(connector, event)

    async def _read_body(self, request: Request) -> bytes:
        limit = self._max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            if not (declared.isascii() and declared.isdigit()):
                raise _Rejected(400, WebhookOutcome.MALFORMED, "invalid Content-Length")
            # Refuse before reading a byte; the length check first keeps int() away from absurd digit strings.
            if len(declared) > 18 or int(declared) > limit:
                raise _Rejected(413, WebhookOutcome.TOO_LARGE, f"body larger than {limit} bytes")
        body = bytearray()
        try:
            # A client that trickles its body holds a connection and a task: it gets body_timeout for all of it.
            # (The server closes a connection whose request body is still arriving once the answer is sent.)
            async with asyncio.timeout(self._body_timeout), contextlib.aclosing(request.stream()) as chunks:
                async for chunk in chunks:
                    body += chunk
                    # Checked per chunk: a chunked upload without Content-Length is cut off, not buffered whole.
                    if len(body) > limit:
                        raise _Rejected(413, WebhookOutcome.TOO_LARGE, f"body larger than {limit} bytes")
        except ClientDisconnect:
            raise _Rejected(400, WebhookOutcome.MALFORMED, "client disconnected before the body ended") from None
        except TimeoutError:
            raise _Rejected(408, WebhookOutcome.TOO_SLOW,
                            f"body not received within {self._body_timeout:g} s") from None
        return bytes(body)

    def _reject(self, connector: str, rejection: _Rejected) -> Response:
        self._metrics.webhook_events.labels(connector, rejection.outcome.value).inc()
        # Only authenticated callers get here, so a reason helps whoever set the webhook up. No path, no token.
        log.warning("webhook_event_rejected", connector=connector, status=rejection.status,
                    reason=rejection.message)
        return json_response(rejection.status, {"error": rejection.message})

    async def _store_event(self, connector: str, event: WebhookEvent) -> Response:
        counter = self._metrics.webhook_events
        if event.event_type in IGNORED_EVENT_TYPES:
            counter.labels(connector, WebhookOutcome.IGNORED.value).inc()
            log.debug("webhook_event_ignored", connector=connector, event_id=event.event_id,
                      event_type=event.event_type)
            return json_response(202, {"status": "ignored"})
        inbox_event = InboxEvent(connector=connector, event_id=event.event_id, payload=event.payload,
                                 received_at=self._clock())
        try:
            inserted = await self._store.add_inbox(inbox_event)
        except Exception as exc:  # noqa: BLE001 - answered 503 (a retried delivery is absorbed by the key), logged
            counter.labels(connector, WebhookOutcome.STORE_UNAVAILABLE.value).inc()
            log.error("webhook_store_failed", connector=connector, event_id=event.event_id,
                      error=f"{type(exc).__name__}: {exc}")
            return json_response(503, {"error": "the state store is unavailable; deliver again later"})
        if not inserted:
            counter.labels(connector, WebhookOutcome.DUPLICATE.value).inc()
            log.debug("webhook_event_duplicate", connector=connector, event_id=event.event_id)
            return json_response(200, {"status": "duplicate"})
        counter.labels(connector, WebhookOutcome.ACCEPTED.value).inc()
        if self._on_event is not None:
            self._on_event(connector)
        log.info("webhook_event_accepted", connector=connector, event_id=event.event_id,
                 event_type=event.event_type)
        return json_response(202, {"status": "accepted"})
