"""Microsoft Graph's security wire format and the domain, both ways: an incident or alerts_v2 item →
:class:`Incident`, and an :class:`IncidentChange` → the PATCH body. Pure; only ``sources/graph*`` use it (and the
demo's view of the emulated tenant).

The vocabulary (statuses, severities, verdicts) is ``domain/graph_vocab.py``'s.

PATCH bodies carry only the properties that change, because Graph's PATCH overwrites what it is sent (it has no
etag) and everything not sent stays as the analyst left it:

* ``status``: Active → ``inProgress``, Closed → ``resolved``;
* the classification → ``classification`` + ``determination`` (:func:`graph_vocab.verdict_for`); the
  classification comment is not sent (``resolvingComment`` is not writable: the caller posts it as a comment);
* the owner → ``assignedTo``, free text: the UPN, else the e-mail address (:func:`assignee`);
* labels → ``customTags``, the whole list (the tags read plus the missing ones). alerts_v2 items have no tags.

Comments: Graph's comment action appends and gives the caller no id, so a replayed comment would be posted twice.
:func:`comment_marker` derives a short, stable tag from our comment id (``[s4:…]``), appended to the text; before
posting, the caller looks for the tag among the existing comments (:func:`has_comment`).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final, Literal

from sentinel_signl4.clients.odata import parse_odata_datetime
from sentinel_signl4.domain.enums import IncidentStatus
from sentinel_signl4.domain.graph_vocab import (
    GraphAlertStatus,
    GraphIncidentStatus,
    classification_from_graph,
    service_source_display_name,
    severity_from_graph,
    status_from_graph_alert,
    status_from_graph_incident,
    verdict_for,
)
from sentinel_signl4.domain.incident import Incident, Owner
from sentinel_signl4.domain.incident_change import IncidentChange, OwnerRef
from sentinel_signl4.domain.sync import COMMENT_LIMIT

__all__ = [
    "PROVIDER_NAME",
    "GraphResource",
    "assignee",
    "comment_marker",
    "comment_text",
    "graph_incident_id",
    "graph_resource_id",
    "has_comment",
    "incident_from_graph",
    "incident_from_graph_alert",
    "patch_body",
]

GraphResource = Literal["incidents", "alerts"]

PROVIDER_NAME: Final = "Microsoft Defender XDR"
_MARKER_HEX: Final = 12  # 48 bits: collisions among one incident's comments are not a practical concern
#: The status a write sets, per resource (the decisions never set New; it is here for completeness).
_STATUS: Final[Mapping[IncidentStatus, tuple[str, str]]] = {
    IncidentStatus.NEW: (GraphIncidentStatus.ACTIVE.value, GraphAlertStatus.NEW.value),
    IncidentStatus.ACTIVE: (GraphIncidentStatus.IN_PROGRESS.value, GraphAlertStatus.IN_PROGRESS.value),
    IncidentStatus.CLOSED: (GraphIncidentStatus.RESOLVED.value, GraphAlertStatus.RESOLVED.value),
}


def graph_resource_id(tenant_id: str, incident_id: str, resource: GraphResource = "incidents") -> str:
    """``graph:<tenant>:incidents/<id>`` (or ``…:alerts/<id>``): the globally unique domain id of a Graph item."""
    return f"graph:{tenant_id.lower()}:{resource}/{incident_id}"


def graph_incident_id(incident_id: str) -> str:
    """The Graph id of a domain resource id (``graph:…:incidents/42`` → ``42``); a bare id is returned unchanged."""
    return incident_id.rstrip("/").rsplit("/", 1)[-1]


def _unique(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def _identity(item: Mapping[str, Any], what: str) -> tuple[str, datetime, datetime]:
    """The item's id, created and last-updated times (one standing in for the other when missing).

    Raises :class:`ValueError` when the item has no id, or neither time.
    """
    item_id = item.get("id")
    if not isinstance(item_id, str) or not item_id:
        raise ValueError(f"a Graph {what} needs an id")
    created = parse_odata_datetime(item.get("createdDateTime"))
    updated = parse_odata_datetime(item.get("lastUpdateDateTime"))
    if created is None and updated is None:
        raise ValueError(f"{what} {item_id} has neither createdDateTime nor lastUpdateDateTime")
    return item_id, created or updated, updated or created  # type: ignore[return-value]  # one is set


def incident_from_graph(item: Mapping[str, Any], *, tenant_id: str) -> Incident:
    """The domain :class:`Incident` of a Graph incident (a list item, a GET or a PATCH answer).

    Product names and tactics come from the expanded alerts (``productName`` or the ``serviceSource``'s name;
    MITRE tactic ``category`` then technique ids). Raises :class:`ValueError` only when the item cannot identify
    an incident (no id, or neither a created nor an updated time).
    """
    incident_id, created, updated = _identity(item, "incident")
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
        created=created,
        last_modified=updated,
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
    alert_id, created, updated = _identity(item, "alert")
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
        created=created,
        last_modified=updated,
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


def assignee(owner: OwnerRef | None) -> OwnerRef | None:
    """``owner`` as Graph's free-text ``assignedTo`` takes it: the user principal name, else the e-mail address."""
    return owner.only("upn", "email") if owner is not None else None


def patch_body(change: IncidentChange, current: Mapping[str, Any], *, alert: bool = False) -> dict[str, Any]:
    """The PATCH body of ``change`` on ``current`` (the item as read): only what changes; ``{}``: do not write."""
    body: dict[str, Any] = {}
    if change.status is not None:
        body["status"] = _STATUS[change.status][1 if alert else 0]
    if change.classification is not None:
        body.update(verdict_for(change.classification.classification, change.classification.reason).to_json())
    if change.owner is not None and change.owner.identifier:
        body["assignedTo"] = change.owner.identifier
    if change.labels and not alert:  # alerts have no tags
        have = [t for t in current.get("customTags") or [] if isinstance(t, str)]
        body["customTags"] = [*have, *change.labels]
    return body


def comment_marker(comment_id: str) -> str:
    """``[s4:<12 hex>]``: a stable tag for the comment written under ``comment_id``."""
    digest = hashlib.sha256(comment_id.encode("utf-8")).hexdigest()[:_MARKER_HEX]
    return f"[s4:{digest}]"


def comment_text(message: str, comment_id: str) -> str:
    """``message`` (clipped to the comment limit) followed by its marker on a line of its own."""
    marker = comment_marker(comment_id)
    room = COMMENT_LIMIT - len(marker) - 1
    if len(message) > room:
        message = message[: room - 13] + "\n… (clipped)"
    return f"{message}\n{marker}"


def has_comment(comments: Iterable[Any], comment_id: str) -> bool:
    """True when one of ``comments`` (Graph comment objects) carries the marker of ``comment_id``."""
    marker = comment_marker(comment_id)
    return any(isinstance(c, Mapping) and isinstance(c.get("comment"), str) and marker in c["comment"]
               for c in comments)
