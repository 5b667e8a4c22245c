"""SIGNL4: raise and resolve Signls (inbound webhook or ``/api/v2/events``) and the REST API (``X-S4-Api-Key``).

Sending an event is **not idempotent**: a second "new" event with the same ExternalID pages again. So
:meth:`Signl4Client.send_event` retries only what certainly did not reach SIGNL4 (no connection, 429, 503/408)
and lets :class:`OutcomeUnknownError` through (timeout after sending, connection reset, 500/502/504), for the
engine to reconcile with :meth:`Signl4Client.find_alerts_by_external_id` before any re-send.

Reads are verified rather than trusted (``signl4_reads``): search results are filtered by ExternalID (and team, once
known) on this side, and annotations are read from the v1 path or the v2 timeline, whichever answers.

The team secret is the credential of the webhook and sits in its URL; the API key goes in a header, never in a
URL. Both are registered with a :class:`Redactor`, so they appear in no message and no repr — not even when
SIGNL4 echoes a wrong secret back in its 404 details.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

import httpx
import structlog

from sentinel_signl4.clients._rest import decode_json
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
from sentinel_signl4.clients.signl4_check import Signl4AccessReport, Signl4Probe, probe_access
from sentinel_signl4.clients.signl4_reads import (
    ANNOTATION_PATHS,
    AnnotationsPath,
    AnnotationsUnavailableError,
    annotation_url_path,
    annotations_from_timeline,
    annotations_from_v1,
    exact_matches,
    modified_at_or_after,
)
from sentinel_signl4.domain.enums import SignlStatus
from sentinel_signl4.domain.signl import SignlRequest, team_secret_of
from sentinel_signl4.errors import (
    NotFoundError,
    OutcomeUnknownError,
    PermanentError,
    RateLimitedError,
    RemoteError,
)
from sentinel_signl4.redact import Redactor, SecretLike, redact_url, reveal

__all__ = [
    "AnnotationsPath",
    "AnnotationsUnavailableError",
    "SendVia",
    "Signl4AccessReport",
    "Signl4Client",
    "Signl4Probe",
    "team_secret_of",
]

log = structlog.get_logger("sentinel_signl4.signl4")

SendVia = Literal["webhook", "events_api"]

_SERVICE = "signl4"
_TEAM_SECRET_NOT_FOUND = "3004"
_PAGE_SIZE = 100  # the API's maximum for maxResults
# Answers after which SIGNL4 may have raised the Signl anyway: an internal error or a gateway that gave up waiting.
_MAYBE_APPLIED_STATUSES = frozenset({500, 502, 504})
# Answers that mean "no such operation here" rather than a failure of the call: the other path may answer.
_PATH_MISSING_STATUSES = frozenset({404, 405})


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
        team_ids: Collection[str] = (),
        annotations_path: AnnotationsPath | None = None,
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
        # The teams this webhook's alerts land in: given, or learned from the targets of one event we raised.
        self._team_ids = frozenset(team_ids)
        self._team_event_id: str | None = None
        #: The annotation path that answered last (v1 or the v2 timeline); tried first next time.
        self.annotations_path: AnnotationsPath | None = annotations_path
        #: Whether SIGNL4 was seen to ignore the externalId filter of a search (None: not seen either way yet).
        self.search_filter_ignored: bool | None = None

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
    def send_via(self) -> SendVia:
        return self._send_via

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

        event_id = await call_with_retry(attempt, self._retry, idempotent=False, on_retry=self._on_retry,
                                         service="signl4")
        if req.status is SignlStatus.NEW and not self._team_ids and self._team_event_id is None:
            self._team_event_id = event_id
        return event_id

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
        """Every alert (any status) created with ``X-S4-ExternalID`` = ``external_id``, across all pages.

        Only exact matches are returned, and only alerts of this webhook's team once it is known: the only official
        sample of the search has no ``externalId`` filter, so a server that ignores it answers with every alert,
        none of which proves that *this* ExternalID was paged.
        """
        found = await self.search_alerts({"externalId": external_id}, page_size=page_size)
        matches = exact_matches(found, external_id)
        if len(matches) < len(found) and not self.search_filter_ignored:
            log.warning("signl4_search_filter_ignored", others=len(found) - len(matches),
                        detail="server ignores externalId filter; results are filtered client-side")
        if found:
            self.search_filter_ignored = len(matches) < len(found) or bool(self.search_filter_ignored)
        teams = await self._known_team_ids()
        return exact_matches(matches, external_id, teams) if teams else matches

    async def list_alerts_modified_since(self, since: datetime, *, page_size: int = _PAGE_SIZE) -> list[dict[str, Any]]:
        """Every alert of the key's teams modified at or after ``since`` (status changes, annotations), all pages.

        Sends both spellings of the field (v2 swagger ``modifiedSince``, official sample ``modSince``; reference
        signl4-api.md §3.3) because only the live API can tell which one v2 binds, and drops any result whose
        ``lastModified`` is older: a server that binds neither answers with every alert.
        """
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        found = await self.search_alerts({"modifiedSince": stamp, "modSince": stamp}, page_size=page_size)
        return modified_at_or_after(found, since)

    async def search_alerts(self, criteria: Mapping[str, Any], *, page_size: int = _PAGE_SIZE) -> list[dict[str, Any]]:
        """``POST /v2/alerts/paged`` with ``criteria`` (any status, hidden categories included), following
        ``continuationToken`` while ``hasMore``; 204 means nothing matched. The results are as SIGNL4 sent them."""
        alerts: list[dict[str, Any]] = []
        token: Any = None
        seen: set[str] = set()
        while True:
            page = await self.search_page(criteria, page_size, token)
            if page is None:  # 204: nothing found
                return alerts
            alerts.extend(item for item in page.get("results") or [] if isinstance(item, dict))
            token = page.get("continuationToken")
            if not page.get("hasMore") or not token:
                return alerts
            fingerprint = repr(token)
            if fingerprint in seen:
                raise PermanentError(f"{_SERVICE}: POST /v2/alerts/paged -> continuation token repeats; giving up")
            seen.add(fingerprint)

    async def search_page(self, criteria: Mapping[str, Any], page_size: int,
                          token: Any = None) -> dict[str, Any] | None:
        """One page of a search; ``None`` for 204. ``showPersonalHiddenCategories`` is always sent (the official
        sample does too): otherwise categories the API user hid in their app would hide alerts from the search."""
        body: dict[str, Any] = {**criteria, "alertStatusCodes": 0, "showPersonalHiddenCategories": True}
        if token is not None:
            body["continuationToken"] = token
        page = await self._api_request(
            "POST", "/v2/alerts/paged",
            params={"userId": await self._search_user_id(), "maxResults": str(page_size)}, body=body,
        )
        if page is not None and not isinstance(page, dict):
            raise PermanentError(f"{_SERVICE}: POST /v2/alerts/paged -> unexpected answer (not an object)")
        return page

    async def _known_team_ids(self) -> frozenset[str]:
        """The teams this webhook's alerts land in, when known. Learned once from ``targets[].teamId`` of an event
        this client raised (``GET /v2/events/{id}``, ref §3.3 [DERIVED]); a failed lookup just leaves it unknown."""
        if not self._team_ids and self._team_event_id is not None and self.has_api:
            event_id, self._team_event_id = self._team_event_id, None
            try:
                event = await self.get_event(event_id)
            except RemoteError as exc:
                log.info("signl4_team_unknown", error=exc.message)
                return frozenset()
            targets = event.get("targets")
            teams = {t.get("teamId") for t in targets if isinstance(t, dict)} if isinstance(targets, list) else set()
            self._team_ids = frozenset(t for t in teams if isinstance(t, str) and t)
        return self._team_ids

    async def get_alert(self, alert_id: str) -> dict[str, Any]:
        """One alert (``GET /v2/alerts/{id}``)."""
        return _object(await self._api_request("GET", f"/v2/alerts/{quote(alert_id, safe='')}"))

    async def get_event(self, event_id: str) -> dict[str, Any]:
        """One event (``GET /v2/events/{id}``); ``targets[].alertId`` names the alerts it raised."""
        return _object(await self._api_request("GET", f"/v2/events/{quote(event_id, safe='')}"))

    async def list_annotations(self, alert_id: str) -> list[dict[str, Any]]:
        """The alert's annotations as ``{id, text, userId, timestamp}``, oldest first.

        Read from the path that answered last (:attr:`annotations_path`), else v1 ``GET /alerts/{id}/annotations``
        (official) and then the v2 ``GET /v2/alerts/{id}/timeline`` (derived). A path that answers 404/405 or with
        an unknown shape is skipped; :class:`AnnotationsUnavailableError` when none answers. Other failures (auth,
        throttling, 5xx after retries) are raised as they are.
        """
        preferred = self.annotations_path
        order = [preferred, *(p for p in ANNOTATION_PATHS if p != preferred)] if preferred else list(ANNOTATION_PATHS)
        misses: list[str] = []
        for path in order:
            notes = await self.annotations_on(path, alert_id, misses)
            if notes is not None:
                if path != self.annotations_path:
                    log.info("signl4_annotations_path", path=path, tried=len(misses))
                self.annotations_path = path
                return notes
        raise AnnotationsUnavailableError(
            f"{_SERVICE}: annotations cannot be read: neither GET /alerts/{{id}}/annotations (v1) nor "
            f"GET /v2/alerts/{{id}}/timeline answered ({'; '.join(misses)})", status=404,
        )

    async def annotations_on(self, path: AnnotationsPath, alert_id: str,
                             misses: list[str]) -> list[dict[str, Any]] | None:
        """The annotations read on ``path``, or ``None`` (with the reason appended to ``misses``)."""
        try:
            body = await self._api_request("GET", annotation_url_path(path, quote(alert_id, safe="")))
        except RemoteError as exc:
            if exc.status not in _PATH_MISSING_STATUSES:
                raise
            misses.append(f"{path}: HTTP {exc.status}")
            return None
        notes = annotations_from_v1(body) if path == "v1" else annotations_from_timeline(body)
        if notes is None:
            misses.append(f"{path}: unexpected answer shape")
        return notes

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

    async def check_access(self, *, annotations: bool = False) -> Signl4AccessReport:
        """Prove the team secret and every REST call the configured modes use, without paging anyone
        (:func:`~sentinel_signl4.clients.signl4_check.probe_access`); ``annotations`` for polling mode."""
        return await probe_access(self, annotations=annotations)

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

        return await call_with_retry(attempt, self._retry, idempotent=idempotent, on_retry=self._on_retry,
                                     service="signl4")

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
