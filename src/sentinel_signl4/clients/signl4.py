"""SIGNL4: raise and resolve Signls (inbound webhook or ``/api/v2/events``) and the REST API (``X-S4-Api-Key``).

Sending an event is **not idempotent**: a second "new" event with the same ExternalID pages again. So
:meth:`Signl4Client.send_event` retries only what certainly did not reach SIGNL4 (no connection, 429, 503/408)
and lets :class:`OutcomeUnknownError` through (timeout after sending, connection reset, 500/502/504), for the
engine to reconcile with :meth:`Signl4Client.find_alerts_by_external_id` before any re-send.

The team secret is the credential of the webhook and sits in its URL; the API key goes in a header, never in a
URL. Both are registered with a :class:`Redactor`, so they appear in no message and no repr — not even when
SIGNL4 echoes a wrong secret back in its 404 details.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

import httpx

from sentinel_signl4.clients._rest import decode_json
from sentinel_signl4.clients.errors import (
    NotFoundError,
    OutcomeUnknownError,
    PermanentError,
    RateLimitedError,
)
from sentinel_signl4.clients.http import (
    DEFAULT_TIMEOUT,
    classify_response,
    classify_transport_error,
    describe_failure,
    parse_error_body,
    parse_retry_after,
)
from sentinel_signl4.clients.ratelimit import SlidingWindowLimiter
from sentinel_signl4.clients.retry import OnRetry, RetryPolicy, call_with_retry
from sentinel_signl4.domain.enums import SignlStatus
from sentinel_signl4.domain.signl import SignlRequest, team_secret_of
from sentinel_signl4.redact import Redactor, SecretLike, redact_url, reveal

__all__ = ["SendVia", "Signl4AccessReport", "Signl4Client", "team_secret_of"]

SendVia = Literal["webhook", "events_api"]

_SERVICE = "signl4"
_TEAM_SECRET_NOT_FOUND = "3004"
_PAGE_SIZE = 100  # the API's maximum for maxResults
# Answers after which SIGNL4 may have raised the Signl anyway: an internal error or a gateway that gave up waiting.
_MAYBE_APPLIED_STATUSES = frozenset({500, 502, 504})


@dataclass(frozen=True, slots=True)
class Signl4AccessReport:
    """What :meth:`Signl4Client.check_access` proved.

    ``probe_event_id`` is the id SIGNL4 gave the harmless probe event; ``team_members`` is the number of users the
    API key can see, or ``None`` when no API key is configured.
    """

    probe_event_id: str
    team_members: int | None


class Signl4Client:
    """One SIGNL4 team: events through the webhook (or the events API), alerts and users through the REST API.

    ``limiter`` paces events (share it per SIGNL4 subscription, see
    :func:`~sentinel_signl4.clients.ratelimit.limiter_for`); ``api_limiter`` paces REST calls, which SIGNL4 counts
    separately (defaults to ``limiter``). ``api_user_id`` is the user on whose behalf alerts are searched
    (``userId`` of ``/v2/alerts/paged``, required with API-key auth); when omitted the first active team member
    from ``GET /v2/users`` is used. ``wall_clock`` converts ``X-RateLimit-Reset`` (epoch seconds) into a delay.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        webhook_url: str | SecretLike,
        api_url: str | None = None,
        api_key: str | SecretLike | None = None,
        limiter: SlidingWindowLimiter,
        send_via: SendVia = "webhook",
        retry: RetryPolicy,
        on_retry: OnRetry | None = None,
        api_limiter: SlidingWindowLimiter | None = None,
        api_user_id: str | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        plain_webhook = reveal(webhook_url) or ""
        self._team_secret = team_secret_of(plain_webhook)
        self._api_key = reveal(api_key)
        self._api_url = api_url.rstrip("/") if api_url else None
        if send_via == "events_api" and not (self._api_url and self._api_key):
            raise ValueError("send_via='events_api' needs api_url and api_key")
        self._http = http
        self._webhook_url = plain_webhook
        self._limiter = limiter
        self._api_limiter = api_limiter or limiter
        self._send_via: SendVia = send_via
        self._retry = retry
        self._on_retry = on_retry
        self._api_user_id = api_user_id
        self._timeout = timeout
        self._wall_clock = wall_clock
        self._redactor = Redactor([self._team_secret, self._api_key])

    def __repr__(self) -> str:
        return (
            f"Signl4Client(webhook={redact_url(self._webhook_url)!r}, api_url={self._api_url!r}, "
            f"api_key={'***' if self._api_key else None!r}, send_via={self._send_via!r})"
        )

    @property
    def redactor(self) -> Redactor:
        """Knows this client's secrets; hand it to the logging processor."""
        return self._redactor

    @property
    def has_api(self) -> bool:
        """Whether the REST API (reconciliation, status polling) is configured."""
        return bool(self._api_url and self._api_key)

    # -- events ----------------------------------------------------------------------------------------------

    async def send_event(self, req: SignlRequest) -> str:
        """Send one event; return SIGNL4's ``eventId``.

        Retries only failures that certainly left SIGNL4 untouched. Raises :class:`NotFoundError` for an unknown
        team secret (code 3004), :class:`PermanentError` for a rejected body or an answer without ``eventId``,
        :class:`RateLimitedError` when throttled beyond the retry budget, :class:`OutcomeUnknownError` when the
        event may have been raised.
        """
        if self._send_via == "events_api":
            # Both are set: checked in __init__.
            url = f"{self._api_url}/v2/events/{quote(self._team_secret, safe='')}"
            headers = {"X-S4-Api-Key": str(self._api_key)}
        else:
            url, headers = self._webhook_url, {}
        payload = req.to_payload()

        async def attempt() -> str:
            await self._limiter.acquire()
            try:
                response = await self._http.post(url, json=payload, headers=headers, timeout=self._timeout)
            except httpx.TransportError as exc:
                raise classify_transport_error(exc, True, service=_SERVICE, redactor=self._redactor) from exc
            if response.status_code < 400 or response.status_code == 429:
                # Only answers to valid events speak for our budget; a 400/404 carries the much lower budget
                # SIGNL4 keeps for malformed requests and wrong secrets (10 / min), which must not throttle
                # the valid traffic of the whole subscription.
                self._limiter.observe_headers(response.headers)
            return self._event_id_of(response)

        return await call_with_retry(attempt, self._retry, idempotent=False, on_retry=self._on_retry)

    def _event_id_of(self, response: httpx.Response) -> str:
        status = response.status_code
        if 200 <= status < 300:
            data = decode_json(response, _SERVICE) if response.content else None
            event_id = data.get("eventId") if isinstance(data, dict) else None
            if isinstance(event_id, str) and event_id:
                return event_id
            raise PermanentError(
                self._describe(response, f"HTTP {status}", "unexpected answer (no eventId)"), status=status
            )
        body = parse_error_body(response)
        if status == 404 and body.code == _TEAM_SECRET_NOT_FOUND:
            raise NotFoundError(
                self._describe(response, "HTTP 404", "SIGNL4 team secret not recognised (code 3004)"),
                status=status, code=body.code,
            )
        if status == 429:
            raise RateLimitedError(
                self._describe(response, "HTTP 429", body.describe() or "throttled"),
                retry_after=self._retry_after(response.headers), status=status, code=body.code,
            )
        if status in _MAYBE_APPLIED_STATUSES:
            raise OutcomeUnknownError(
                self._describe(response, f"HTTP {status}", body.describe()), status=status, code=body.code
            )
        error = classify_response(response, _SERVICE, redactor=self._redactor)
        assert error is not None  # not 2xx
        raise error

    def _retry_after(self, headers: Mapping[str, str]) -> float | None:
        hinted = parse_retry_after(headers, now=self._wall_clock())
        if hinted is not None:
            return hinted
        reset = headers.get("x-ratelimit-reset")
        try:
            return max(0.0, float(reset) - self._wall_clock()) if reset else None
        except ValueError:
            return None

    # -- REST API --------------------------------------------------------------------------------------------

    async def find_alerts_by_external_id(self, external_id: str, *,
                                         page_size: int = _PAGE_SIZE) -> list[dict[str, Any]]:
        """Every alert (any status) created with ``X-S4-ExternalID`` = ``external_id``, across all pages."""
        return await self.search_alerts({"externalId": external_id}, page_size=page_size)

    async def list_alerts_modified_since(self, since: datetime, *, page_size: int = _PAGE_SIZE) -> list[dict[str, Any]]:
        """Every alert of the key's teams modified at or after ``since`` (status changes, annotations), all pages.

        Sends both spellings of the field (v2 swagger ``modifiedSince``, official sample ``modSince``; reference
        signl4-api.md §3.3) because only the live API can tell which one v2 binds.
        """
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return await self.search_alerts({"modifiedSince": stamp, "modSince": stamp}, page_size=page_size)

    async def search_alerts(self, criteria: Mapping[str, Any], *, page_size: int = _PAGE_SIZE) -> list[dict[str, Any]]:
        """``POST /v2/alerts/paged`` with ``criteria`` (any status), following ``continuationToken`` while
        ``hasMore``; 204 means nothing matched."""
        user_id = await self._search_user_id()
        alerts: list[dict[str, Any]] = []
        token: Any = None
        seen: set[str] = set()
        while True:
            body: dict[str, Any] = {**criteria, "alertStatusCodes": 0}
            if token is not None:
                body["continuationToken"] = token
            page = await self._api_request(
                "POST", "/v2/alerts/paged", params={"userId": user_id, "maxResults": str(page_size)}, body=body,
            )
            if page is None:  # 204: nothing found
                return alerts
            if not isinstance(page, dict):
                raise PermanentError(f"{_SERVICE}: POST /v2/alerts/paged -> unexpected answer (not an object)")
            alerts.extend(item for item in page.get("results") or [] if isinstance(item, dict))
            token = page.get("continuationToken")
            if not page.get("hasMore") or not token:
                return alerts
            fingerprint = repr(token)
            if fingerprint in seen:
                raise PermanentError(f"{_SERVICE}: POST /v2/alerts/paged -> continuation token repeats; giving up")
            seen.add(fingerprint)

    async def get_alert(self, alert_id: str) -> dict[str, Any]:
        """One alert (``GET /v2/alerts/{id}``)."""
        return _object(await self._api_request("GET", f"/v2/alerts/{quote(alert_id, safe='')}"))

    async def get_event(self, event_id: str) -> dict[str, Any]:
        """One event (``GET /v2/events/{id}``); ``targets[].alertId`` names the alerts it raised."""
        return _object(await self._api_request("GET", f"/v2/events/{quote(event_id, safe='')}"))

    async def list_annotations(self, alert_id: str) -> list[dict[str, Any]]:
        """The alert's annotations (``GET /v2/alerts/{id}/annotations``); 204 means none."""
        notes = await self._api_request("GET", f"/v2/alerts/{quote(alert_id, safe='')}/annotations")
        return [note for note in notes if isinstance(note, dict)] if isinstance(notes, list) else []

    async def list_users(self) -> list[dict[str, Any]]:
        """The team members the API key can see (``GET /v2/users``)."""
        users = await self._api_request("GET", "/v2/users")
        return [user for user in users if isinstance(user, dict)] if isinstance(users, list) else []

    async def acknowledge_alert(self, alert_id: str, user_id: str, note: str | None = None) -> dict[str, Any]:
        """Acknowledge on behalf of ``user_id``. A repeat gets 409 (lifecycle) rather than a second change."""
        return _object(await self._api_request(
            "POST", f"/v2/alerts/{quote(alert_id, safe='')}/acknowledge", body=_status_change(user_id, note),
        ))

    async def close_alert(self, alert_id: str, user_id: str, note: str | None = None) -> dict[str, Any]:
        """Close on behalf of ``user_id``. A repeat gets 409 (lifecycle) rather than a second change."""
        return _object(await self._api_request(
            "POST", f"/v2/alerts/{quote(alert_id, safe='')}/close", body=_status_change(user_id, note),
        ))

    async def annotate_alert(self, alert_id: str, user_id: str, text: str) -> dict[str, Any]:
        """Add a text annotation. Not idempotent (a repeat adds a second one), so never retried once sent."""
        return _object(await self._api_request(
            "POST", f"/v2/alerts/{quote(alert_id, safe='')}/annotate",
            body={"type": 1, "text": text, "userId": user_id}, idempotent=False,
        ))

    async def annotate_alert_as_connector(self, alert_id: str, text: str) -> dict[str, Any]:
        """Annotate in the connector's own name. SIGNL4 needs a ``userId`` for every annotation and an API key has
        no user of its own, so the same team member as for searches is named (``api_user_id``, else the first
        active one); the text itself says it comes from the connector."""
        return await self.annotate_alert(alert_id, await self._search_user_id(), text)

    async def check_access(self) -> Signl4AccessReport:
        """Prove the team secret (and the API key, when configured) without paging anyone.

        The webhook is probed with an ``X-S4-Status: resolved`` event for a fresh random ExternalID. SIGNL4 only
        resolves alerts that were *created* with that ExternalID, so the event matches nothing and is discarded,
        while a wrong secret is answered 404 code 3004. Limits: the probe counts against the event rate limit and
        shows up in SIGNL4's event history as a discarded event; and SIGNL4's exact answer to a resolve for an
        unknown ExternalID is not documented (a 201 with an eventId is what we expect and accept). The API key is
        proved with ``GET /v2/users``.
        """
        probe = SignlRequest(external_id=f"sentinel-signl4-check-{uuid.uuid4()}", status=SignlStatus.RESOLVED)
        event_id = await self.send_event(probe)
        members = len(await self.list_users()) if self.has_api else None
        return Signl4AccessReport(probe_event_id=event_id, team_members=members)

    # -- the REST choke point --------------------------------------------------------------------------------

    async def _search_user_id(self) -> str:
        if self._api_user_id is None:
            users = await self.list_users()
            active = [u for u in users if u.get("id") and not u.get("isDeactivated") and not u.get("isInvite")]
            if not active:
                raise PermanentError(f"{_SERVICE}: no active team member visible to the API key (GET /v2/users)")
            self._api_user_id = str(active[0]["id"])
        elif "@" in self._api_user_id:
            # GET /v2/users/{userId} also takes a team member's e-mail (reference signl4-api.md §3.3); the search
            # wants the id.
            user = _object(await self._api_request("GET", f"/v2/users/{quote(self._api_user_id, safe='@')}"))
            if not user.get("id"):
                raise PermanentError(f"{_SERVICE}: signl4.api_user {self._api_user_id!r} is not a team member")
            self._api_user_id = str(user["id"])
        return self._api_user_id

    async def _api_request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> Any:
        """One REST call with the API key header, pacing, classification and bounded retries; ``None`` for 204."""
        if not (self._api_url and self._api_key):
            raise PermanentError(f"{_SERVICE}: the REST API is not configured (api_url and api_key are needed)")
        url = f"{self._api_url}{path}"
        headers = {"X-S4-Api-Key": self._api_key}

        async def attempt() -> Any:
            await self._api_limiter.acquire()
            try:
                response = await self._http.request(
                    method, url, params=params, json=body, headers=headers, timeout=self._timeout,
                )
            except httpx.TransportError as exc:
                raise classify_transport_error(exc, True, service=_SERVICE, redactor=self._redactor) from exc
            error = classify_response(response, _SERVICE, redactor=self._redactor)
            if isinstance(error, RateLimitedError) and error.retry_after is None:
                error.retry_after = self._retry_after(response.headers)
            if error is not None:
                raise error
            if response.status_code == 204 or not response.content:
                return None
            return decode_json(response, _SERVICE)

        return await call_with_retry(attempt, self._retry, idempotent=idempotent, on_retry=self._on_retry)

    def _describe(self, response: httpx.Response, outcome: str, detail: str) -> str:
        return describe_failure(response.request, _SERVICE, outcome, detail, self._redactor)


def _status_change(user_id: str, note: str | None) -> dict[str, Any]:
    # The v1 API documents {userId, description}; a v2 digest lists {uid, descr}. Unknown JSON fields are ignored
    # by the API, so both spellings are sent until the live v2 contract is confirmed (signl4-api.md §3.3).
    body: dict[str, Any] = {"userId": user_id, "uid": user_id}
    if note:
        body["description"] = note
        body["descr"] = note
    return body


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PermanentError(f"{_SERVICE}: unexpected answer (expected a JSON object)")
    return value
