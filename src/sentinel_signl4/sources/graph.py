"""Microsoft Graph security incidents (Defender XDR) as an incident source.

Ids: a Graph incident id is a number unique within its tenant only, so the domain ``resource_id`` is
``graph:<tenantId>:incidents/<id>`` — unique across tenants and never equal to a Sentinel ARM id, so links,
external ids and outbox keys of both sources can share one store.

Writes: Graph's PATCH has no etag (unlike Sentinel's PUT) but it only replaces the properties sent, so a tag
written with ``customTags`` cannot clobber an owner, status or classification set by an analyst. Merged
incidents (status ``redirected``) are followed to the incident that survived before writing.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any, Final

import structlog

from sentinel_signl4.clients.errors import PermanentError
from sentinel_signl4.clients.graph import GraphClient
from sentinel_signl4.clients.sentinel_mapping import parse_arm_datetime
from sentinel_signl4.domain import Incident, IncidentFilter, Owner
from sentinel_signl4.domain.graph_vocab import (
    GraphIncidentStatus,
    classification_from_graph,
    service_source_display_name,
    severity_from_graph,
    status_from_graph_incident,
)

__all__ = ["PROVIDER_NAME", "GraphSource", "graph_incident_id", "graph_resource_id", "incident_from_graph"]

PROVIDER_NAME: Final = "Microsoft Defender XDR"
_MAX_REDIRECTS: Final = 5  # merges chain rarely; a longer chain is a loop or a service bug

_log = structlog.get_logger(__name__)


def graph_resource_id(tenant_id: str, incident_id: str) -> str:
    """``graph:<tenant>:incidents/<id>``: the globally unique domain id of a Graph incident."""
    return f"graph:{tenant_id.lower()}:incidents/{incident_id}"


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
        url=str(item.get("incidentWebUrl") or ""),
        provider_name=PROVIDER_NAME,
        labels=tuple(str(t) for t in item.get("customTags") or [] if isinstance(t, str)),
        # assignedTo is free text: usually a UPN or mail address, sometimes a display name.
        owner=Owner(upn=assigned if assigned and "@" in assigned else None, name=assigned),
        classification=classification,
        classification_reason=reason,
        product_names=products,
        tactics=tactics,
        alerts_count=len(alerts),
        raw=copy.deepcopy(dict(item)),
    )


class GraphSource:
    """Defender XDR incidents of one tenant, read and tagged through Microsoft Graph."""

    kind = "graph"

    def __init__(self, client: GraphClient, *, tenant_id: str) -> None:
        self.client = client
        self.tenant_id = tenant_id.lower()

    def __repr__(self) -> str:
        return f"GraphSource(tenant={self.tenant_id!r})"

    async def list_matching(self, flt: IncidentFilter, now: datetime) -> AsyncIterator[Incident]:
        """Incidents the server selects for ``flt`` (``$expand=alerts``, every page); unparseable ones skipped."""
        async for item in self.client.list_incidents(flt, now, expand_alerts=True):
            try:
                yield incident_from_graph(item, tenant_id=self.tenant_id)
            except ValueError as exc:
                # One unidentifiable item must not block every later incident of the listing (a poison pill).
                _log.warning("graph.incident_unparseable", reason=str(exc), item_id=str(item.get("id", ""))[:200])

    async def get(self, incident_id: str) -> Incident:
        """The incident as it is now (a merged one with status Active and its ``redirectIncidentId`` in raw)."""
        item = await self.client.get_incident(graph_incident_id(incident_id), expand_alerts=True)
        return incident_from_graph(item, tenant_id=self.tenant_id)

    async def add_tag(self, incident_id: str, tag: str) -> bool:
        """Add ``tag`` to ``customTags`` of the incident, or of the incident it was merged into.

        Read-modify-write: PATCH replaces the whole ``customTags`` list and Graph offers no etag, so a tag an
        analyst adds between our GET and our PATCH would be lost. The window is kept to one round trip — the GET
        is the last thing before the PATCH and nothing else is awaited in between. True if written, False if a
        tag of that name (any case) was already there.
        """
        current = await self._surviving(graph_incident_id(incident_id))
        tags = [t for t in current.get("customTags") or [] if isinstance(t, str)]
        if any(t.casefold() == tag.casefold() for t in tags):
            return False
        updated = await self.client.update_incident(str(current["id"]), {"customTags": [*tags, tag]})
        written = [t for t in updated.get("customTags") or [] if isinstance(t, str)]
        if tag not in written:
            raise PermanentError(f"graph: incident {current['id']}: customTags not updated (answer lacks '{tag}')")
        return True

    async def check_access(self) -> None:
        await self.client.check_access(resource="incidents")

    async def _surviving(self, incident_id: str) -> dict[str, Any]:
        """GET the incident, following ``redirectIncidentId`` of merged incidents to the one that survived."""
        current = await self.client.get_incident(incident_id, expand_alerts=False)
        for _ in range(_MAX_REDIRECTS):
            target = current.get("redirectIncidentId")
            if current.get("status") != GraphIncidentStatus.REDIRECTED or not target:
                return current
            _log.info("graph.incident_redirected", incident=current.get("id"), into=target)
            current = await self.client.get_incident(str(target), expand_alerts=False)
        raise PermanentError(f"graph: incident {incident_id} redirects more than {_MAX_REDIRECTS} times")
