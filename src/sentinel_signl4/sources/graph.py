"""Microsoft Graph security incidents (Defender XDR) — or single alerts_v2 — as an incident source.

Ids: a Graph incident id is a number unique within its tenant only, so the domain ``resource_id`` is
``graph:<tenantId>:incidents/<id>`` (``…:alerts/<id>`` for alerts) — unique across tenants and never equal to a
Sentinel ARM id, so links, external ids and outbox keys of both sources can share one store.

Writes: Graph's PATCH has no etag (unlike Sentinel's PUT) but it only replaces the properties sent, so each write
sends only what changes (``domain/graph_sync.py``) and cannot clobber an owner, status or classification set by an
analyst in another property. What remains is one round trip between our GET and our PATCH in which an analyst's
change of the *same* property would be overwritten; Graph offers nothing to close it. Merged incidents (status
``redirected``) are followed to the incident that survived before writing.

Comments: Graph appends comments and lets the caller choose no id, so each comment carries a short marker derived
from our comment id, and a write whose marker is already among the incident's comments is not repeated.

Alerts (``[connectors.graph] resource = "alerts"``): alerts_v2 items carry no tags (``add_tag`` writes nothing) and
are never merged; statuses are ``new``/``inProgress``/``resolved``; the "incident number" shown is the number of the
Defender incident the alert belongs to.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, Literal

import structlog

from sentinel_signl4.clients.graph import GraphClient
from sentinel_signl4.clients.sentinel_mapping import format_odata_datetime, parse_arm_datetime
from sentinel_signl4.domain import Incident, IncidentFilter, Owner
from sentinel_signl4.domain.graph_sync import acknowledge_changes, close_changes, comment_text, has_comment
from sentinel_signl4.domain.graph_vocab import (
    GraphAlertStatus,
    GraphIncidentStatus,
    classification_from_graph,
    service_source_display_name,
    severity_from_graph,
    status_from_graph_alert,
    status_from_graph_incident,
)
from sentinel_signl4.domain.sync import ClassificationChoice
from sentinel_signl4.engine.ports import OwnerRef
from sentinel_signl4.errors import PermanentError

__all__ = [
    "PROVIDER_NAME",
    "GraphResource",
    "GraphSource",
    "graph_incident_id",
    "graph_resource_id",
    "incident_from_graph",
    "incident_from_graph_alert",
]

GraphResource = Literal["incidents", "alerts"]

PROVIDER_NAME: Final = "Microsoft Defender XDR"
_MAX_REDIRECTS: Final = 5  # merges chain rarely; a longer chain is a loop or a service bug

_log = structlog.get_logger(__name__)


def graph_resource_id(tenant_id: str, incident_id: str, resource: GraphResource = "incidents") -> str:
    """``graph:<tenant>:incidents/<id>`` (or ``…:alerts/<id>``): the globally unique domain id of a Graph item."""
    return f"graph:{tenant_id.lower()}:{resource}/{incident_id}"


def graph_incident_id(incident_id: str) -> str:
    """The Graph id of a domain resource id (``graph:…:incidents/42`` → ``42``); a bare id is returned unchanged."""
    return incident_id.rstrip("/").rsplit("/", 1)[-1]


def _unique(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def incident_from_graph(item: Mapping[str, Any], *, tenant_id: str) -> Incident:
    """The domain :class:`Incident` of a Graph incident (a list item, a GET or a PATCH answer).

    Product names and tactics come from the expanded alerts (``productName`` or the ``serviceSource``'s name;
    MITRE tactic ``category`` then technique ids). Raises :class:`ValueError` only when the item cannot identify
    an incident (no id, or neither a created nor an updated time).
    """
    incident_id = item.get("id")
    if not isinstance(incident_id, str) or not incident_id:
        raise ValueError("a Graph incident needs an id")
    created = parse_arm_datetime(item.get("createdDateTime"))
    updated = parse_arm_datetime(item.get("lastUpdateDateTime"))
    if created is None and updated is None:
        raise ValueError(f"incident {incident_id} has neither createdDateTime nor lastUpdateDateTime")
    alerts = [a for a in item.get("alerts") or [] if isinstance(a, Mapping)]
    products = _unique([str(a.get("productName") or service_source_display_name(a.get("serviceSource")) or "")
                        for a in alerts])
    tactics = _unique([str(a.get("category") or "") for a in alerts]) + _unique(
        [str(t) for a in alerts for t in a.get("mitreTechniques") or [] if isinstance(t, str)])
    status = status_from_graph_incident(item.get("status"))
    classification, reason = classification_from_graph(
        item.get("classification"), item.get("determination"),
        resolved=item.get("status") == GraphIncidentStatus.RESOLVED,
    )
    assigned = item.get("assignedTo") if isinstance(item.get("assignedTo"), str) else None
    return Incident(
        resource_id=graph_resource_id(tenant_id, incident_id),
        name=incident_id,
        number=int(incident_id) if incident_id.isdigit() else 0,
        title=str(item.get("displayName") or ""),
        severity=severity_from_graph(item.get("severity")),
        status=status,
        created=created or updated,  # type: ignore[arg-type]  # one of them is set, checked above
        last_modified=updated or created,  # type: ignore[arg-type]
        description=str(item.get("description") or item.get("summary") or ""),
        # The incident lives in the Defender portal: incidentWebUrl is its link there, not an Azure portal one.
        provider_url=str(item.get("incidentWebUrl") or ""),
        provider_name=PROVIDER_NAME,
        labels=tuple(str(t) for t in item.get("customTags") or [] if isinstance(t, str)),
        # assignedTo is free text: usually a UPN or mail address, sometimes a display name.
        owner=Owner(upn=assigned if assigned and "@" in assigned else None, name=assigned),
        classification=classification,
        classification_reason=reason,
        product_names=products,
        tactics=tactics,
        alerts_count=len(alerts),
        merged=_is(item.get("status"), GraphIncidentStatus.REDIRECTED),
        raw=copy.deepcopy(dict(item)),
    )


def incident_from_graph_alert(item: Mapping[str, Any], *, tenant_id: str) -> Incident:
    """The domain :class:`Incident` of an alerts_v2 item (see the module doc for what differs from incidents)."""
    alert_id = item.get("id")
    if not isinstance(alert_id, str) or not alert_id:
        raise ValueError("a Graph alert needs an id")
    created = parse_arm_datetime(item.get("createdDateTime"))
    updated = parse_arm_datetime(item.get("lastUpdateDateTime"))
    if created is None and updated is None:
        raise ValueError(f"alert {alert_id} has neither createdDateTime nor lastUpdateDateTime")
    incident_id = str(item.get("incidentId") or "")
    product = str(item.get("productName") or service_source_display_name(item.get("serviceSource")) or "")
    classification, reason = classification_from_graph(
        item.get("classification"), item.get("determination"),
        resolved=_is(item.get("status"), GraphAlertStatus.RESOLVED),
    )
    assigned = item.get("assignedTo") if isinstance(item.get("assignedTo"), str) else None
    return Incident(
        resource_id=graph_resource_id(tenant_id, alert_id, "alerts"),
        name=alert_id,
        number=int(incident_id) if incident_id.isdigit() else 0,
        title=str(item.get("title") or ""),
        severity=severity_from_graph(item.get("severity")),
        status=status_from_graph_alert(item.get("status")),
        created=created or updated,  # type: ignore[arg-type]  # one of them is set, checked above
        last_modified=updated or created,  # type: ignore[arg-type]
        description=str(item.get("description") or ""),
        provider_url=str(item.get("alertWebUrl") or item.get("incidentWebUrl") or ""),
        provider_name=product or PROVIDER_NAME,
        owner=Owner(upn=assigned if assigned and "@" in assigned else None, name=assigned),
        classification=classification,
        classification_reason=reason,
        product_names=_unique([product]),
        tactics=_unique([str(item.get("category") or "")]) + _unique(
            [str(t) for t in item.get("mitreTechniques") or [] if isinstance(t, str)]),
        alerts_count=1,
        raw=copy.deepcopy(dict(item)),
    )


def _is(value: object, expected: str) -> bool:
    return isinstance(value, str) and value.casefold() == expected.casefold()


def _assignee(owner: OwnerRef | None) -> str | None:
    """What Graph's free-text ``assignedTo`` gets: the user principal name, else the e-mail address."""
    if owner is None:
        return None
    return owner.upn or owner.email or None


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
        tags = [t for t in current.get("customTags") or [] if isinstance(t, str)]
        if any(t.casefold() == tag.casefold() for t in tags):
            return False
        updated = await self.client.update_incident(str(current["id"]), {"customTags": [*tags, tag]})
        written = [t for t in updated.get("customTags") or [] if isinstance(t, str)]
        if tag not in written:
            raise PermanentError(f"graph: incident {current['id']}: customTags not updated (answer lacks '{tag}')")
        return True

    async def acknowledge(self, incident_id: str, owner: OwnerRef | None, *, tags: Sequence[str] = ()) -> bool:
        """``active`` (alerts: ``new``) → ``inProgress`` and ``assignedTo`` = the owner's UPN or e-mail address;
        a resolved item is left alone. ``tags`` join ``customTags`` in the same PATCH. True if written."""
        current = await self._current(incident_id)
        changes = acknowledge_changes(current, assignee=_assignee(owner), alert=self.resource == "alerts")
        return await self._patch(current, self._with_tags(current, changes, tags))

    async def close(self, incident_id: str, choice: ClassificationChoice, comment: str,
                    owner: OwnerRef | None, *, tags: Sequence[str] = ()) -> bool:
        """``resolved`` with the classification and determination ``choice`` maps to; ``assignedTo`` only if
        nobody is assigned. False if it was resolved already. (``comment`` is posted by the caller as a comment:
        Graph's ``resolvingComment`` is not writable.) ``tags`` join ``customTags`` in the same PATCH."""
        current = await self._current(incident_id)
        changes = close_changes(current, choice=choice, assignee=_assignee(owner))
        return await self._patch(current, self._with_tags(current, changes, tags) if changes else changes)

    def _with_tags(self, current: Mapping[str, Any], changes: Mapping[str, Any] | None,
                   tags: Sequence[str]) -> dict[str, Any]:
        merged = dict(changes or {})
        if self.resource == "alerts" or not tags:
            return merged  # alerts have no tags
        have = [t for t in current.get("customTags") or [] if isinstance(t, str)]
        missing = [t for t in tags if all(t.casefold() != h.casefold() for h in have)]
        if missing:
            merged["customTags"] = [*have, *missing]
        return merged

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

    async def _patch(self, current: Mapping[str, Any], changes: Mapping[str, Any]) -> bool:
        if not changes:
            return False
        if self.resource == "alerts":
            await self.client.update_alert(str(current["id"]), changes)
        else:
            await self.client.update_incident(str(current["id"]), changes)
        return True

    async def _surviving(self, incident_id: str) -> dict[str, Any]:
        """GET the incident, following ``redirectIncidentId`` of merged incidents to the one that survived."""
        current = await self.client.get_incident(incident_id, expand_alerts=False)
        for _ in range(_MAX_REDIRECTS):
            target = current.get("redirectIncidentId")
            if not _is(current.get("status"), GraphIncidentStatus.REDIRECTED) or not target:
                return current
            _log.info("graph.incident_redirected", incident_id=current.get("id"), into=target)
            current = await self.client.get_incident(str(target), expand_alerts=False)
        raise PermanentError(f"graph: incident {incident_id} redirects more than {_MAX_REDIRECTS} times")
