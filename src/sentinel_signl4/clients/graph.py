"""Microsoft Graph v1.0: Defender XDR security incidents, alerts_v2 and directory users. A thin typed client.

One choke point, :meth:`GraphClient._request`, waits for the tenant's shared request budget, adds the bearer
token and ``Prefer: include-unknown-enum-members``, sets the timeout, classifies every failure into our typed
errors and applies the bounded :class:`RetryPolicy`. Answers are returned as Graph JSON objects; mapping them to
the domain is the adapter's job (``sources/graph_wire.py``) with the vocabulary of ``domain/graph_vocab.py``.

Request budget: Graph allows **150 requests per minute per app per tenant** on the security API (reference §3.4).
Every connector of a tenant shares one :func:`graph_limiter` (140 per minute: headroom for requests the budget
counts that we cannot see, such as an operator's script using the same app), so several connectors never add up
to a 429. A 429 that happens anyway is retried after its ``Retry-After``.

Retries: reads and PATCHes (absolute values) are safe to repeat. Posting a comment is not: a retry after an
unknown outcome could post it twice, so comments are only retried when the request certainly never arrived.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal
from urllib.parse import quote, urlencode

import httpx
import structlog

from sentinel_signl4.clients._rest import checked_next_link, origin, path_segment, send_once
from sentinel_signl4.clients.http import DEFAULT_TIMEOUT
from sentinel_signl4.clients.identity import TokenProvider
from sentinel_signl4.clients.odata import any_of, format_odata_datetime
from sentinel_signl4.clients.ratelimit import SlidingWindowLimiter, limiter_for
from sentinel_signl4.clients.retry import OnRetry, RetryPolicy, call_with_retry
from sentinel_signl4.domain.enums import Severity
from sentinel_signl4.domain.filtering import IncidentFilter
from sentinel_signl4.domain.graph_vocab import alert_statuses_for, graph_severities_for, incident_statuses_for
from sentinel_signl4.errors import AuthError, NotFoundError, PermanentError
from sentinel_signl4.redact import Redactor, redact_url

__all__ = [
    "GRAPH_ENDPOINT",
    "GRAPH_SCOPE",
    "GRAPH_TENANT_BUDGET",
    "GraphClient",
    "GraphUser",
    "build_graph_filter",
    "graph_limiter",
    "user_path",
]

GRAPH_ENDPOINT: Final = "https://graph.microsoft.com"
GRAPH_SCOPE: Final = "https://graph.microsoft.com/.default"
#: Requests per minute all connectors of one tenant may send (Graph's limit is 150; see the module doc).
GRAPH_TENANT_BUDGET: Final = 140
GRAPH_BUDGET_WINDOW: Final = 60.0

_SERVICE = "graph"
_PAGE_SIZE = 50  # the largest page the incidents API is known to serve [unverified: reference §8]
_USER_FIELDS = "id,displayName,mail,userPrincipalName"
# Characters left literal in query strings: OData needs `$`, quotes, slashes, colons and parentheses readable;
# spaces become %20 (never `+`).
_QUERY_SAFE = "$'/:(),"

_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class GraphUser:
    """A directory user as Graph returns it (``$select=id,displayName,mail,userPrincipalName``)."""

    id: str
    user_principal_name: str | None = None
    display_name: str | None = None
    mail: str | None = None


def graph_limiter(tenant_id: str, *, limit: int = GRAPH_TENANT_BUDGET,
                  window: float = GRAPH_BUDGET_WINDOW) -> SlidingWindowLimiter:
    """The process-wide request budget of ``tenant_id``'s Graph security API, shared by every connector."""
    return limiter_for(f"graph:{tenant_id.lower()}", limit=limit, window=window)


def build_graph_filter(flt: IncidentFilter, now: datetime,
                       resource: Literal["incidents", "alerts"] = "incidents") -> str:
    """The server-side ``$filter`` for ``flt`` at ``now``: created within ``max_age``, statuses, severities.

    For incidents the status clause is always present, even when every status is selected: it is what keeps
    ``redirected`` (merged) incidents out of the forward path. A severity clause selecting all four severities is
    omitted (it filters nothing).
    """
    if not flt.statuses:
        raise ValueError("the incident filter selects no status")
    if not flt.severities:
        raise ValueError("the incident filter selects no severity")
    clauses = [f"createdDateTime ge {format_odata_datetime(flt.oldest(now))}"]
    if resource == "incidents":
        clauses.append(any_of("status", tuple(s.value for s in incident_statuses_for(flt.statuses))))
    else:
        alert_statuses = alert_statuses_for(flt.statuses)
        if len(alert_statuses) < 3:
            clauses.append(any_of("status", tuple(s.value for s in alert_statuses)))
    if not set(flt.severities) >= set(Severity):
        clauses.append(any_of("severity", tuple(s.value for s in graph_severities_for(flt.severities))))
    return " and ".join(clauses)


def user_path(id_or_upn: str) -> str:
    """The path of ``GET /users/{id | userPrincipalName}`` (reference §3.5).

    A UPN that starts with ``$`` must be addressed as ``users('$x@y.com')``; ``#`` (B2B guests' ``#EXT#``) is
    percent-encoded, as is anything that could change the path.
    """
    if id_or_upn.startswith("$"):
        return "users('" + quote(id_or_upn.replace("'", "''"), safe="$@'") + "')"
    return "users/" + quote(id_or_upn, safe="@")


class GraphClient:
    """Security incidents and alerts of the token's tenant, plus user lookups, over Microsoft Graph v1.0.

    ``http`` is the shared client (inject an ``httpx.ASGITransport`` to talk to the emulator in-process);
    ``tokens`` gives bearer tokens for ``graph_scope``; ``limiter`` is the tenant's shared budget
    (:func:`graph_limiter`; ``None`` disables client-side limiting). ``retry`` bounds each call; ``on_retry`` is
    told about each retry. ``max_pages`` stops a listing that never ends.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        tokens: TokenProvider,
        *,
        graph_endpoint: str = GRAPH_ENDPOINT,
        graph_scope: str = GRAPH_SCOPE,
        retry: RetryPolicy,
        on_retry: OnRetry | None = None,
        limiter: SlidingWindowLimiter | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        page_size: int = _PAGE_SIZE,
        max_pages: int = 1000,
    ) -> None:
        if not 1 <= page_size <= 999:
            raise ValueError("page_size must be between 1 and 999")
        self._http = http
        self._tokens = tokens
        self._scope = graph_scope
        self._base = graph_endpoint.rstrip("/") + "/v1.0"
        self._origin = origin(graph_endpoint)
        self._retry = retry
        self._on_retry = on_retry
        self._limiter = limiter
        self._timeout = timeout
        self._page_size = page_size
        self._max_pages = max_pages
        self._redactor = Redactor()

    def __repr__(self) -> str:
        return f"GraphClient(endpoint={self._base!r})"

    # -- incidents ---------------------------------------------------------------------------------------------

    def list_incidents(self, flt: IncidentFilter, now: datetime, *,
                       expand_alerts: bool = True) -> AsyncIterator[dict[str, Any]]:
        """Incidents matching ``flt`` at ``now`` (server-side ``$filter``), every page, each id once."""
        return self.query_incidents(build_graph_filter(flt, now, "incidents"), expand_alerts=expand_alerts)

    def query_incidents(self, odata_filter: str | None, *,
                        expand_alerts: bool = True) -> AsyncIterator[dict[str, Any]]:
        """Incidents matching a raw ``$filter`` (``None``: all), most recent first, every page."""
        params = {"$top": str(self._page_size)}
        if odata_filter:
            params["$filter"] = odata_filter
        if expand_alerts:
            params["$expand"] = "alerts"
        return self._pages(self._url("security/incidents"), params)

    async def get_incident(self, incident_id: str, *, expand_alerts: bool = True) -> dict[str, Any]:
        """One incident; a merged one comes back with status ``redirected`` and its ``redirectIncidentId``."""
        params = {"$expand": "alerts"} if expand_alerts else None
        return await self._request("GET", self._url("security/incidents", path_segment(incident_id)), params=params)

    async def update_incident(self, incident_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """PATCH ``changes`` (assignedTo, classification, determination, status, customTags); the updated incident.

        Graph's PATCH has no etag: it overwrites the properties sent, nothing else, whoever changed them last.
        """
        return await self._request("PATCH", self._url("security/incidents", path_segment(incident_id)), body=changes)

    async def add_incident_comment(self, incident_id: str, text: str) -> list[dict[str, Any]]:
        """Append a comment; returns every comment of the incident. Not retried once the request may have left."""
        answer = await self._request("POST", self._url("security/incidents", path_segment(incident_id), "comments"),
                                     body=_comment_body(text), idempotent=False)
        return _value_list(answer)

    # -- alerts_v2 ---------------------------------------------------------------------------------------------

    def list_alerts(self, flt: IncidentFilter, now: datetime) -> AsyncIterator[dict[str, Any]]:
        """alerts_v2 matching ``flt`` at ``now``, every page, each id once."""
        return self.query_alerts(build_graph_filter(flt, now, "alerts"))

    def query_alerts(self, odata_filter: str | None) -> AsyncIterator[dict[str, Any]]:
        params = {"$top": str(self._page_size)}
        if odata_filter:
            params["$filter"] = odata_filter
        return self._pages(self._url("security/alerts_v2"), params)

    async def get_alert(self, alert_id: str) -> dict[str, Any]:
        return await self._request("GET", self._url("security/alerts_v2", path_segment(alert_id)))

    async def update_alert(self, alert_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """PATCH ``changes`` (assignedTo, classification, determination, status); the updated alert."""
        return await self._request("PATCH", self._url("security/alerts_v2", path_segment(alert_id)), body=changes)

    async def add_alert_comment(self, alert_id: str, text: str) -> list[dict[str, Any]]:
        answer = await self._request("POST", self._url("security/alerts_v2", path_segment(alert_id), "comments"),
                                     body=_comment_body(text), idempotent=False)
        return _value_list(answer)

    # -- users -------------------------------------------------------------------------------------------------

    async def get_user(self, id_or_upn: str) -> GraphUser | None:
        """The user with this object id or user principal name; ``None`` if there is none.

        A mail address only finds a user whose UPN is the same; use :meth:`find_user_by_mail` for the rest.
        """
        try:
            answer = await self._request("GET", self._url(user_path(id_or_upn)), params={"$select": _USER_FIELDS})
        except NotFoundError as exc:
            if exc.code not in (None, "Request_ResourceNotFound"):
                raise  # a 404 about something else (a wrong endpoint) must not read as "no such user"
            return None
        return _user(answer)

    async def find_user_by_mail(self, mail: str) -> GraphUser | None:
        """The one user whose ``mail`` is ``mail`` (case-insensitive); ``None`` if none or several match."""
        literal = mail.replace("'", "''")
        answer = await self._request("GET", self._url("users"), params={
            "$filter": f"mail eq '{literal}'", "$select": _USER_FIELDS, "$top": "2",
        })
        users = [user for item in _value_list(answer) if (user := _user(item)) is not None]
        if len(users) > 1:
            _log.warning("graph.user_mail_ambiguous", matches=len(users))
            return None
        return users[0] if users else None

    # -- setup check -------------------------------------------------------------------------------------------

    async def check_access(self, *, resource: Literal["incidents", "alerts"] = "incidents",
                           users: bool = False) -> None:
        """Prove the app may read the security ``resource`` (and users, when owner lookup is wanted).

        One ``$top=1`` request each. Raises :class:`AuthError` naming the application permission to grant.
        """
        path, permission = (("security/incidents", "SecurityIncident.ReadWrite.All") if resource == "incidents"
                            else ("security/alerts_v2", "SecurityAlert.ReadWrite.All"))
        await self._check(path, {"$top": "1"}, permission)
        if users:
            await self._check("users", {"$top": "1", "$select": "id"}, "User.Read.All")

    async def check_user_access(self) -> None:
        """Prove the app may look users up (owner assignment); :class:`AuthError` names User.Read.All."""
        await self._check("users", {"$top": "1", "$select": "id"}, "User.Read.All")

    async def _check(self, path: str, params: Mapping[str, str], permission: str) -> None:
        try:
            await self._request("GET", self._url(path), params=params)
        except AuthError as exc:
            if exc.status == 403:
                raise AuthError(
                    f"the identity lacks the Microsoft Graph application permission {permission}: run "
                    f"`sentinel-signl4 provision apply` to assign it to the connector's service principal (an app "
                    f"role assignment, which is the admin consent; `sentinel-signl4 provision plan` shows what is "
                    f"missing): {exc.message}", status=exc.status, code=exc.code,
                ) from exc
            raise

    # -- the choke point ---------------------------------------------------------------------------------------

    def _url(self, *segments: str) -> str:
        return "/".join([self._base, *segments])

    async def _pages(self, url: str, params: Mapping[str, str]) -> AsyncIterator[dict[str, Any]]:
        """Items of a collection, following ``@odata.nextLink`` verbatim, each id at most once.

        Graph pages these collections by offset (``$skip``), most recent first: an item created while we page
        pushes older ones down a page, so the same item can come twice. It is yielded once.
        """
        next_url: str | None = None
        seen_links: set[str] = set()
        seen_ids: set[str] = set()
        for _ in range(self._max_pages):
            if next_url is None:
                page = await self._request("GET", url, params=params)
            else:
                page = await self._request("GET", next_url)
            value = page.get("value")
            if not isinstance(value, list):
                raise PermanentError(f"{_SERVICE}: GET {redact_url(url)} -> unexpected answer: no 'value' list")
            for item in value:
                if not isinstance(item, dict):
                    continue
                item_id = str(item.get("id", ""))
                if item_id and item_id in seen_ids:
                    continue
                seen_ids.add(item_id)
                yield item
            link = page.get("@odata.nextLink")
            if not link:
                return
            next_url = checked_next_link(str(link), self._origin, seen_links, _SERVICE)
        raise PermanentError(f"{_SERVICE}: GET {redact_url(url)} -> more than {self._max_pages} pages; giving up")

    async def _request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        """Send one Graph request with retries; return the decoded JSON object (``{}`` for an empty body)."""
        if params:
            url = f"{url}?{urlencode(params, quote_via=quote, safe=_QUERY_SAFE)}"
        # One client-request-id per logical call (kept across retries): what Microsoft support asks for.
        correlation = str(uuid.uuid4())

        async def attempt() -> dict[str, Any]:
            if self._limiter is not None:
                await self._limiter.acquire()
            token = await self._tokens.token(self._scope)
            headers = {
                "Authorization": f"Bearer {token}",
                "Prefer": "include-unknown-enum-members",
                "client-request-id": correlation,
            }
            return await send_once(self._http, method, url, headers=headers, body=body, http_timeout=self._timeout,
                                   service=_SERVICE, redactor=self._redactor)

        return await call_with_retry(attempt, self._retry, idempotent=idempotent, on_retry=self._on_retry,
                                     service="graph")


def _comment_body(text: str) -> dict[str, str]:
    if not text.strip():
        raise ValueError("a comment needs text")
    return {"@odata.type": "microsoft.graph.security.alertComment", "comment": text}


def _value_list(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    value = answer.get("value")
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _user(item: Mapping[str, Any]) -> GraphUser | None:
    user_id = item.get("id")
    if not isinstance(user_id, str) or not user_id:
        return None

    def text(key: str) -> str | None:
        value = item.get(key)
        return value if isinstance(value, str) and value else None

    return GraphUser(user_id, text("userPrincipalName"), text("displayName"), text("mail"))
