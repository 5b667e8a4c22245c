"""Microsoft Graph security incidents (Defender XDR) — or single alerts_v2 — as an incident source.

Ids: a Graph incident id is a number unique within its tenant only, so the domain ``resource_id`` is
``graph:<tenantId>:incidents/<id>`` (``…:alerts/<id>`` for alerts) — unique across tenants and never equal to a
Sentinel ARM id, so links, external ids and outbox keys of both sources can share one store.

Writes: Graph's PATCH has no etag (unlike Sentinel's PUT) but it only replaces the properties sent, so each write
sends only what changes (the decision: ``domain/incident_change.py``; the body: ``sources/graph_wire.py``) and
cannot clobber an owner, status or classification set by an analyst in another property. What remains is one
round trip between our GET and our PATCH in which an analyst's change of the *same* property would be overwritten;
Graph offers nothing to close it. Merged incidents (status ``redirected``) are followed to the incident that
survived before writing.

Comments: Graph appends comments and lets the caller choose no id, so each comment carries a short marker derived
from our comment id, and a write whose marker is already among the incident's comments is not repeated.

Alerts (``[connectors.graph] resource = "alerts"``): alerts_v2 items carry no tags (``add_tag`` writes nothing) and
are never merged; statuses are ``new``/``inProgress``/``resolved``; the "incident number" shown is the number of the
Defender incident the alert belongs to.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import structlog

from sentinel_signl4.clients.graph import GraphClient
from sentinel_signl4.clients.odata import format_odata_datetime
from sentinel_signl4.domain import Incident, IncidentFilter
from sentinel_signl4.domain.graph_vocab import GraphIncidentStatus
from sentinel_signl4.domain.incident_change import (
    IncidentChange,
    OwnerRef,
    acknowledge_change,
    close_change,
    tag_change,
)
from sentinel_signl4.domain.sync import ClassificationChoice
from sentinel_signl4.errors import PermanentError
from sentinel_signl4.sources.graph_wire import (
    GraphResource,
    assignee,
    comment_text,
    graph_incident_id,
    has_comment,
    incident_from_graph,
    incident_from_graph_alert,
    patch_body,
)

__all__ = ["GraphSource"]

_MAX_REDIRECTS: Final = 5  # merges chain rarely; a longer chain is a loop or a service bug

_log = structlog.get_logger(__name__)


class GraphSource:
    """Defender XDR incidents (or alerts) of one tenant, read and written through Microsoft Graph."""

    kind = "graph"

    def __init__(self, client: GraphClient, *, tenant_id: str, resource: GraphResource = "incidents") -> None:
        self.client = client
        self.tenant_id = tenant_id.lower()
        self.resource: GraphResource = resource

    def __repr__(self) -> str:
        return f"GraphSource(tenant={self.tenant_id!r}, resource={self.resource!r})"

    # -- reading ----------------------------------------------------------------------------------------------------

    def list_matching(self, flt: IncidentFilter, now: datetime) -> AsyncIterator[Incident]:
        """Items the server selects for ``flt`` (incidents with ``$expand=alerts``), every page."""
        if self.resource == "alerts":
            return self._parsed(self.client.list_alerts(flt, now))
        return self._parsed(self.client.list_incidents(flt, now, expand_alerts=True))

    def list_modified_since(self, since: datetime) -> AsyncIterator[Incident]:
        """Items whose ``lastUpdateDateTime`` is at or after ``since`` (server-side ``$filter``), every page.

        Graph lists newest first and cannot be asked to sort (``$orderby`` is not supported here); the client
        reads every page and yields each id once, so the order does not matter to the lifecycle pass.
        """
        odata = f"lastUpdateDateTime ge {format_odata_datetime(since)}"
        if self.resource == "alerts":
            return self._parsed(self.client.query_alerts(odata))
        return self._parsed(self.client.query_incidents(odata, expand_alerts=True))

    async def get(self, incident_id: str) -> Incident:
        """The item as it is now (a merged incident with ``merged`` set and its ``redirectIncidentId`` in raw)."""
        if self.resource == "alerts":
            return self._incident(await self.client.get_alert(graph_incident_id(incident_id)))
        item = await self.client.get_incident(graph_incident_id(incident_id), expand_alerts=True)
        return self._incident(item)

    async def follow_merge(self, incident: Incident) -> Incident | None:
        """The incident ``incident`` was merged into, following ``redirectIncidentId`` to the end of the chain."""
        if self.resource == "alerts" or not incident.merged:
            return None
        survivor = await self._surviving(graph_incident_id(incident.resource_id))
        return self._incident(survivor)

    async def check_access(self) -> None:
        await self.client.check_access(resource=self.resource)

    # -- writing ----------------------------------------------------------------------------------------------------

    async def add_tag(self, incident_id: str, tag: str) -> bool:
        """Add ``tag`` to ``customTags`` of the incident, or of the incident it was merged into.

        Read-modify-write: PATCH replaces the whole ``customTags`` list and Graph offers no etag, so a tag an
        analyst adds between our GET and our PATCH would be lost. The window is kept to one round trip — the GET
        is the last thing before the PATCH and nothing else is awaited in between. True if written, False if a
        tag of that name (any case) was already there. Alerts have no tags: nothing is written (False).
        """
        if self.resource == "alerts":
            return False
        current = await self._surviving(graph_incident_id(incident_id))
        body = patch_body(tag_change(self._read(current), tag), current)
        if not body:
            return False
        updated = await self.client.update_incident(str(current["id"]), body)
        written = [t for t in updated.get("customTags") or [] if isinstance(t, str)]
        if tag not in written:
            raise PermanentError(f"graph: incident {current['id']}: customTags not updated (answer lacks '{tag}')")
        return True

    async def acknowledge(self, incident_id: str, owner: OwnerRef | None, *, tags: Sequence[str] = ()) -> bool:
        """``active`` (alerts: ``new``) → ``inProgress`` and ``assignedTo`` = the owner's UPN or e-mail address;
        a resolved item is left alone. ``tags`` join ``customTags`` in the same PATCH. True if written."""
        current = await self._current(incident_id)
        return await self._patch(current, acknowledge_change(self._read(current), assignee(owner), tags))

    async def close(self, incident_id: str, choice: ClassificationChoice, comment: str,
                    owner: OwnerRef | None, *, tags: Sequence[str] = ()) -> bool:
        """``resolved`` with the classification and determination ``choice`` maps to; ``assignedTo`` only if
        nobody is assigned. False if it was resolved already. (``comment`` is posted by the caller as a comment:
        Graph's ``resolvingComment`` is not writable.) ``tags`` join ``customTags`` in the same PATCH."""
        current = await self._current(incident_id)
        return await self._patch(current, close_change(self._read(current), choice, comment, assignee(owner), tags))

    async def add_comment(self, incident_id: str, comment_id: str, message: str) -> None:
        """Post ``message`` with the marker of ``comment_id`` unless a comment with that marker exists."""
        current = await self._current(incident_id)
        if has_comment(current.get("comments") or [], comment_id):
            return
        text = comment_text(message, comment_id)
        target = str(current["id"])
        if self.resource == "alerts":
            await self.client.add_alert_comment(target, text)
        else:
            await self.client.add_incident_comment(target, text)

    # -- helpers ----------------------------------------------------------------------------------------------------

    async def _parsed(self, items: AsyncIterator[dict[str, Any]]) -> AsyncIterator[Incident]:
        async for item in items:
            try:
                yield self._incident(item)
            except ValueError as exc:
                # One unidentifiable item must not block every later incident of the listing (a poison pill).
                _log.warning("graph.item_unparseable", reason=str(exc), item_id=str(item.get("id", ""))[:200])

    def _incident(self, item: Mapping[str, Any]) -> Incident:
        if self.resource == "alerts":
            return incident_from_graph_alert(item, tenant_id=self.tenant_id)
        return incident_from_graph(item, tenant_id=self.tenant_id)

    async def _current(self, incident_id: str) -> dict[str, Any]:
        """The item to write to: the alert, or the incident (following merges to the survivor)."""
        if self.resource == "alerts":
            return await self.client.get_alert(graph_incident_id(incident_id))
        return await self._surviving(graph_incident_id(incident_id))

    def _read(self, current: Mapping[str, Any]) -> Incident:
        """The item about to be written to, as the domain decides on it."""
        try:
            return self._incident(current)
        except ValueError as exc:
            raise PermanentError(f"graph: {self.resource} {current.get('id')}: {exc}") from exc

    async def _patch(self, current: Mapping[str, Any], change: IncidentChange) -> bool:
        """PATCH what ``change`` changes on ``current``; False (nothing sent) when that is nothing."""
        body = patch_body(change, current, alert=self.resource == "alerts")
        if not body:
            return False
        if self.resource == "alerts":
            await self.client.update_alert(str(current["id"]), body)
        else:
            await self.client.update_incident(str(current["id"]), body)
        return True

    async def _surviving(self, incident_id: str) -> dict[str, Any]:
        """GET the incident, following ``redirectIncidentId`` of merged incidents to the one that survived."""
        current = await self.client.get_incident(incident_id, expand_alerts=False)
        for _ in range(_MAX_REDIRECTS):
            target = current.get("redirectIncidentId")
            if not _is_redirected(current.get("status")) or not target:
                return current
            _log.info("graph.incident_redirected", incident_id=current.get("id"), into=target)
            current = await self.client.get_incident(str(target), expand_alerts=False)
        raise PermanentError(f"graph: incident {incident_id} redirects more than {_MAX_REDIRECTS} times")


def _is_redirected(status: object) -> bool:
    return isinstance(status, str) and status.casefold() == GraphIncidentStatus.REDIRECTED.casefold()
