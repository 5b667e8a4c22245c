"""Microsoft Sentinel incidents over ARM REST (api-version 2025-09-01): a thin typed client.

Answers are returned as ARM JSON objects, as :class:`~sentinel_signl4.clients.graph.GraphClient` returns Graph's;
mapping them to the domain and back is the adapter's job (``sources/sentinel_wire.py``).

One choke point, :meth:`SentinelClient._request`, adds the bearer token, sets the timeout, classifies every
failure into our typed errors and applies the bounded :class:`RetryPolicy`. Every call here is safe to repeat:
reads, the read-only ``POST …/alerts|entities``, a PUT carrying the etag it was based on (a repeat after an
applied PUT gets 409, which the caller answers by re-reading), and comment PUTs with a caller-chosen id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from sentinel_signl4.clients._rest import checked_next_link, origin, path_segment, send_once
from sentinel_signl4.clients.azure_actions import (
    COMMENTS_READ,
    COMMENTS_WRITE,
    INCIDENTS_READ,
    INCIDENTS_WRITE,
    missing_action_hint,
)
from sentinel_signl4.clients.azure_actions import requires_actions as requires
from sentinel_signl4.clients.http import DEFAULT_TIMEOUT
from sentinel_signl4.clients.identity import TokenProvider
from sentinel_signl4.clients.retry import OnRetry, RetryPolicy, call_with_retry
from sentinel_signl4.clients.sentinel_budget import SentinelBudget
from sentinel_signl4.clients.sentinel_filters import (
    build_incident_filter,
    build_modified_filter,
    build_number_filter,
)
from sentinel_signl4.domain.enums import IncidentStatus
from sentinel_signl4.domain.filtering import IncidentFilter
from sentinel_signl4.errors import AuthError, NotFoundError, PermanentError
from sentinel_signl4.redact import Redactor, redact_url

__all__ = ["ARM_ENDPOINT", "ARM_SCOPE", "DEFAULT_API_VERSION", "SentinelClient"]

DEFAULT_API_VERSION = "2025-09-01"
ARM_ENDPOINT = "https://management.azure.com"
ARM_SCOPE = "https://management.azure.com/.default"

_SERVICE = "sentinel"
_MAX_TOP = 1000  # the 2025-09-01 spec's maximum for $top
# Characters left literal in query strings: OData needs `$`, quotes, slashes and parentheses to stay readable,
# spaces become %20 (never `+`, which some OData parsers keep as a plus).
_QUERY_SAFE = "$'/:(),"


class SentinelClient:
    """Incidents, comments, alerts and entities of one Sentinel workspace.

    ``http`` is the shared client (inject an ``httpx.ASGITransport`` to talk to the emulator in-process);
    ``tokens`` gives bearer tokens for ``arm_scope``. ``retry`` bounds each call; ``on_retry`` is told about each
    retry (metrics). ``max_pages`` stops a listing that never ends (a server bug must not hang a poller).
    ``budget`` (the workspace's, shared) gates the alerts and entities calls: a call past it is not sent.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        tokens: TokenProvider,
        *,
        arm_endpoint: str = ARM_ENDPOINT,
        arm_scope: str = ARM_SCOPE,
        subscription_id: str,
        resource_group: str,
        workspace_name: str,
        api_version: str = DEFAULT_API_VERSION,
        retry: RetryPolicy,
        on_retry: OnRetry | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        max_pages: int = 1000,
        budget: SentinelBudget | None = None,
    ) -> None:
        self._http = http
        self.budget = budget
        self._tokens = tokens
        self._scope = arm_scope
        self._endpoint = arm_endpoint.rstrip("/")
        self._origin = origin(self._endpoint)
        self._subscription_id = subscription_id
        self._resource_group = resource_group
        self._workspace_name = workspace_name
        self._api_version = api_version
        self._retry = retry
        self._on_retry = on_retry
        self._timeout = timeout
        self._max_pages = max_pages
        self._redactor = Redactor()
        self._base = (
            f"{self._endpoint}/subscriptions/{path_segment(subscription_id)}"
            f"/resourceGroups/{path_segment(resource_group)}"
            f"/providers/Microsoft.OperationalInsights/workspaces/{path_segment(workspace_name)}"
            "/providers/Microsoft.SecurityInsights"
        )

    def __repr__(self) -> str:
        return (
            f"SentinelClient(workspace={self._workspace_name!r}, resource_group={self._resource_group!r}, "
            f"subscription={self._subscription_id!r}, api_version={self._api_version!r})"
        )

    @property
    def workspace_resource_id(self) -> str:
        """``/subscriptions/…/workspaces/<name>``: the ARM id of the workspace (for messages and ids)."""
        return (
            f"/subscriptions/{self._subscription_id}/resourceGroups/{self._resource_group}"
            f"/providers/Microsoft.OperationalInsights/workspaces/{self._workspace_name}"
        )

    # -- incidents -------------------------------------------------------------------------------------------

    @requires(INCIDENTS_READ)
    def list_incidents(self, flt: IncidentFilter, now: datetime, *, top: int = 200) -> AsyncIterator[dict[str, Any]]:
        """Incidents matching ``flt`` at ``now``, oldest first, across every page (``nextLink`` followed)."""
        params = {
            "$filter": build_incident_filter(flt, now),
            "$orderby": "properties/createdTimeUtc asc",
            "$top": str(_check_top(top)),
        }
        return self._pages(self._url("incidents"), params)

    @requires(INCIDENTS_READ)
    def list_modified_since(
        self, since: datetime, *, statuses: Iterable[IncidentStatus] | None = None, top: int = 200
    ) -> AsyncIterator[dict[str, Any]]:
        """Incidents modified at or after ``since`` (optionally only in ``statuses``), least recently first."""
        params = {
            "$filter": build_modified_filter(since, statuses),
            "$orderby": "properties/lastModifiedTimeUtc asc",
            "$top": str(_check_top(top)),
        }
        return self._pages(self._url("incidents"), params)

    @requires(INCIDENTS_READ)
    async def find_incident_by_number(self, number: int) -> dict[str, Any] | None:
        """The incident with ``incidentNumber`` ``number`` (one filtered list request), or ``None``."""
        params = {"$filter": build_number_filter(number), "$top": "1"}
        async for item in self._pages(self._url("incidents"), params):
            properties = item.get("properties")
            found = properties.get("incidentNumber") if isinstance(properties, Mapping) else None
            if isinstance(found, int) and not isinstance(found, bool) and found == number:
                return item
        return None

    @requires(INCIDENTS_READ)
    async def get_incident(self, name: str) -> dict[str, Any]:
        """One incident by its name (the GUID); :class:`NotFoundError` if it does not exist."""
        return await self._request("GET", self._url("incidents", name))

    @requires(INCIDENTS_WRITE)
    async def put_incident(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Replace incident ``name`` with ``body`` (``properties`` and the ``etag`` it was read with); the answer.

        The body is the adapter's (``sources/sentinel_wire.py``: every writable property, so none is dropped). A
        stale etag raises :class:`ConflictError` (409): re-read, re-apply, try again. Without an etag the write is
        last-writer-wins.
        """
        return await self._request("PUT", self._url("incidents", name), body=body)

    # -- comments, alerts, entities --------------------------------------------------------------------------

    @requires(COMMENTS_WRITE)
    async def put_comment(self, incident_name: str, comment_id: str, message: str) -> dict[str, Any]:
        """Create (or overwrite) comment ``comment_id``; the caller-chosen id makes repeats idempotent."""
        url = self._url("incidents", incident_name, "comments", comment_id)
        return await self._request("PUT", url, body={"properties": {"message": message}})

    @requires(COMMENTS_READ)
    async def list_comments(self, incident_name: str) -> list[dict[str, Any]]:
        """Every comment of an incident, across pages."""
        return [item async for item in self._pages(self._url("incidents", incident_name, "comments"), {})]

    @requires(INCIDENTS_READ)  # derived, not listed by Microsoft: see docs/decisions.md
    async def list_alerts(self, incident_name: str) -> list[dict[str, Any]]:
        """The incident's alerts (``POST …/alerts``: a read despite the verb; the API has no paging here)."""
        if self.budget is not None:
            self.budget.take_enrichment("alerts")
        answer = await self._request("POST", self._url("incidents", incident_name, "alerts"))
        value = answer.get("value")
        return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []

    @requires(INCIDENTS_READ)  # derived, not listed by Microsoft: see docs/decisions.md
    async def list_entities(self, incident_name: str) -> dict[str, Any]:
        """``{"entities": [...], "metaData": [...]}`` of the incident (``POST …/entities``)."""
        if self.budget is not None:
            self.budget.take_enrichment("entities")
        return await self._request("POST", self._url("incidents", incident_name, "entities"))

    # -- setup check -----------------------------------------------------------------------------------------

    @requires(INCIDENTS_READ)
    async def check_access(self) -> None:
        """Prove that the identity can read incidents of the workspace (one ``$top=1`` list, used by ``check``).

        Raises :class:`AuthError` or :class:`NotFoundError` with a message that says what to fix.
        """
        where = (
            f"workspace '{self._workspace_name}' (resource group '{self._resource_group}', "
            f"subscription '{self._subscription_id}')"
        )
        try:
            await self._request("GET", self._url("incidents"), params={"$top": "1"})
        except AuthError as exc:
            if exc.status == 403:
                # ARM checks RBAC before it looks the resource up, so a mistyped workspace also lands here.
                raise AuthError(
                    f"{missing_action_hint(exc.message, [INCIDENTS_READ], where)} "
                    f"(or the workspace does not exist): {exc.message}",
                    status=exc.status, code=exc.code,
                ) from exc
            raise
        except NotFoundError as exc:
            raise NotFoundError(
                f"{where} not found, or Microsoft Sentinel is not enabled on it: {exc.message}",
                status=exc.status, code=exc.code,
            ) from exc

    # -- the choke point -------------------------------------------------------------------------------------

    def _url(self, *segments: str) -> str:
        return "/".join([self._base, *(path_segment(segment) for segment in segments)])

    async def _pages(self, url: str, params: Mapping[str, str]) -> AsyncIterator[dict[str, Any]]:
        """Items of a pageable list, following ``nextLink`` verbatim (it carries api-version and skip token)."""
        next_url: str | None = None
        seen: set[str] = set()
        for _ in range(self._max_pages):
            if next_url is None:
                page = await self._request("GET", url, params=params)
            else:
                page = await self._request("GET", next_url, raw_url=True)
            value = page.get("value")
            if not isinstance(value, list):
                raise PermanentError(f"{_SERVICE}: GET {redact_url(url)} -> unexpected answer: no 'value' list")
            for item in value:
                if isinstance(item, dict):
                    yield item
            link = page.get("nextLink")
            if not link:
                return
            next_url = checked_next_link(str(link), self._origin, seen, _SERVICE)
        raise PermanentError(f"{_SERVICE}: GET {redact_url(url)} -> more than {self._max_pages} pages; giving up")

    async def _request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        raw_url: bool = False,
    ) -> dict[str, Any]:
        """Send one ARM request with retries; return the decoded JSON object (``{}`` for an empty body)."""
        if not raw_url:
            query = {"api-version": self._api_version, **(params or {})}
            url = f"{url}?{urlencode(query, quote_via=quote, safe=_QUERY_SAFE)}"

        async def attempt() -> dict[str, Any]:
            token = await self._tokens.token(self._scope)
            return await send_once(self._http, method, url, headers={"Authorization": f"Bearer {token}"}, body=body,
                                   http_timeout=self._timeout, service=_SERVICE, redactor=self._redactor)

        return await call_with_retry(attempt, self._retry, idempotent=True, on_retry=self._on_retry,
                                     service="sentinel")


def _check_top(top: int) -> int:
    if not 1 <= top <= _MAX_TOP:
        raise ValueError(f"$top must be between 1 and {_MAX_TOP}")
    return top
