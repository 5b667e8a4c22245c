"""Sentinel's ARM wire format and the domain, both ways: an ARM incident → :class:`Incident`, and an
:class:`IncidentChange` → the PUT body (the full writable set with the etag). Pure; only ``sources/sentinel*`` use it.

Decisions worth knowing:

* **Unknown enum values never crash a poll and never cause a wrong side effect.** An unknown ``severity`` maps to
  ``High``: the server-side filter only returns severities we asked for by name, so an unknown value can only
  appear when every severity is selected, where paging for it is what the user asked. An unknown ``status`` maps
  to ``Active``, the one status that triggers nothing (``New`` would page, ``Closed`` would resolve a Signl).
  Unknown classification values become ``None``. The original strings stay in ``Incident.raw``, and PUT bodies
  are built from ``raw``, so nothing is lost or rewritten on the way back.
* **A PUT replaces the whole resource**, so :func:`writable_properties` copies every property that is not known to
  be read-only — including ones this code does not know yet — and every label as it came (AutoAssigned ones
  included). :func:`changed_properties` applies an :class:`IncidentChange` to that set.
* **Owners are assigned by object id, else UPN** (:func:`assignee`); the service resolves ``assignedTo`` and the
  rest itself.
* **Defender merges** (docs/decisions.md, "Defender merges"): when the Defender portal merges incidents, the
  *source* incident is closed, loses its tags and gets the tag ``Redirected``; its alerts and tags move to the
  target (learn.microsoft.com/defender-xdr/alerts-incidents-correlation, "Details of the merge process"). That is
  what 2025-09-01 shows: :func:`incident_from_arm` reads Closed + ``Redirected`` as ``Incident.merged``. The
  stable API does not say which incident survived; newer API versions add ``additionalData.mergedIncidentNumber``
  (2025-10-01-preview model), read by :func:`merged_into_number` when present.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from sentinel_signl4.clients.odata import parse_odata_datetime
from sentinel_signl4.domain.enums import Classification, ClassificationReason, IncidentStatus, Severity
from sentinel_signl4.domain.incident import Incident, Owner
from sentinel_signl4.domain.incident_change import IncidentChange, OwnerRef

__all__ = [
    "CLASSIFICATION_COMMENT_LIMIT",
    "READ_ONLY_PROPERTIES",
    "REDIRECTED_LABEL",
    "assignee",
    "changed_properties",
    "incident_from_arm",
    "merged_into_number",
    "put_body",
    "with_label",
    "writable_properties",
]

READ_ONLY_PROPERTIES = frozenset({
    "additionalData",
    "createdTimeUtc",
    "incidentNumber",
    "incidentUrl",
    "lastModifiedTimeUtc",
    "providerIncidentId",
    "providerName",
    "relatedAnalyticRuleIds",
    # Preview-only read-only fields; harmless to list, keeps a preview response from leaking into a PUT.
    "teamInformation",
})

#: The tag Defender adds to an incident it merged into another one (defender-xdr/alerts-incidents-correlation.md).
REDIRECTED_LABEL = "Redirected"
#: ``classificationComment`` is cut to this many characters.
CLASSIFICATION_COMMENT_LIMIT = 1000


def _enum_or(enum_type: type[Any], value: Any, default: Any) -> Any:
    try:
        return enum_type(value)
    except ValueError:
        # ARM enums are "modelAsString": compare case-insensitively before giving up.
        if isinstance(value, str):
            for member in enum_type:
                if member.value.casefold() == value.casefold():
                    return member
        return default


def _strings(values: Any) -> tuple[str, ...]:
    if not isinstance(values, list):
        return ()
    return tuple(str(value) for value in values if isinstance(value, str | int | float))


def _int_or_zero(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def incident_from_arm(resource: Mapping[str, Any]) -> Incident:
    """The domain :class:`Incident` of an ARM incident resource (a list item, a GET or a PUT answer).

    Tolerates missing optional fields. Raises :class:`ValueError` only when the resource cannot identify an
    incident at all (no ``id``/``name``, or neither a created nor a modified time).
    """
    props: Mapping[str, Any] = resource.get("properties") or {}
    resource_id = resource.get("id")
    name = resource.get("name") or (resource_id.rstrip("/").rsplit("/", 1)[-1] if resource_id else None)
    if not resource_id or not name:
        raise ValueError("an incident resource needs an id and a name")
    created = parse_odata_datetime(props.get("createdTimeUtc"))
    modified = parse_odata_datetime(props.get("lastModifiedTimeUtc"))
    if created is None and modified is None:
        raise ValueError(f"incident {name} has neither createdTimeUtc nor lastModifiedTimeUtc")
    owner_raw: Mapping[str, Any] = props.get("owner") or {}
    additional: Mapping[str, Any] = props.get("additionalData") or {}
    classification = props.get("classification")
    reason = props.get("classificationReason")
    number = props.get("incidentNumber")
    labels = tuple(
        str(label["labelName"]) for label in props.get("labels") or []
        if isinstance(label, Mapping) and label.get("labelName")
    )
    status = _enum_or(IncidentStatus, props.get("status"), IncidentStatus.ACTIVE)
    return Incident(
        resource_id=str(resource_id),
        name=str(name),
        number=_int_or_zero(number),
        title=str(props.get("title") or ""),
        severity=_enum_or(Severity, props.get("severity"), Severity.HIGH),
        status=status,
        created=created or modified,  # type: ignore[arg-type]  # one of them is set, checked above
        last_modified=modified or created,  # type: ignore[arg-type]
        etag=resource.get("etag"),
        description=str(props.get("description") or ""),
        url=str(props.get("incidentUrl") or ""),
        provider_name=str(props.get("providerName") or ""),
        provider_url=str(additional.get("providerIncidentUrl") or ""),
        labels=labels,
        owner=Owner(
            object_id=owner_raw.get("objectId"),
            email=owner_raw.get("email"),
            upn=owner_raw.get("userPrincipalName"),
            name=owner_raw.get("assignedTo"),
        ),
        classification=_enum_or(Classification, classification, None) if classification else None,
        classification_reason=_enum_or(ClassificationReason, reason, None) if reason else None,
        product_names=_strings(additional.get("alertProductNames")),
        tactics=_strings(additional.get("tactics")),
        alerts_count=_int_or_zero(additional.get("alertsCount")),
        merged=status is IncidentStatus.CLOSED and any(
            label.casefold() == REDIRECTED_LABEL.casefold() for label in labels),
        raw=copy.deepcopy(dict(resource)),
    )


def merged_into_number(incident: Incident) -> int | None:
    """The number of the incident a merged ``incident`` went into, when the API says (``None`` otherwise).

    Only newer API versions carry ``additionalData.mergedIncidentNumber`` (a string in the SDK models); its meaning
    — the *target's* number on the merged incident — is inferred from its name and unverified. A value that is not
    a positive number, or is the incident's own number, is ignored.
    """
    if not incident.merged:
        return None
    props = incident.raw.get("properties") if isinstance(incident.raw.get("properties"), Mapping) else {}
    additional = props.get("additionalData") if isinstance(props, Mapping) else None
    value = additional.get("mergedIncidentNumber") if isinstance(additional, Mapping) else None
    text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
    if not text.isdigit() or int(text) in (0, incident.number):
        return None
    return int(text)


def writable_properties(incident: Incident) -> dict[str, Any]:
    """Every writable property of ``incident`` as read, ready to be modified and PUT back.

    Copied from ``incident.raw`` (deep copy: the caller may mutate the result), minus the read-only ones. Owner,
    labels (every label, with its type), classification, times and unknown future fields are all kept.
    """
    props: Mapping[str, Any] = incident.raw.get("properties") or {}
    writable = {key: copy.deepcopy(value) for key, value in props.items() if key not in READ_ONLY_PROPERTIES}
    # The three required fields must be present even if the raw resource was sparse (e.g. built in a test).
    writable.setdefault("title", incident.title)
    writable.setdefault("severity", incident.severity.value)
    writable.setdefault("status", incident.status.value)
    return writable


def with_label(properties: Mapping[str, Any], tag: str) -> dict[str, Any] | None:
    """``properties`` with a user label ``tag`` added, or ``None`` if a label of that name (any case) exists."""
    labels = [label for label in properties.get("labels") or [] if isinstance(label, Mapping)]
    if any(str(label.get("labelName", "")).casefold() == tag.casefold() for label in labels):
        return None
    updated = dict(properties)
    # labelType is read-only in the spec, but every client sends "User" (msticpy, XSOAR) and ARM accepts it.
    updated["labels"] = [*(copy.deepcopy(dict(label)) for label in labels), {"labelName": tag, "labelType": "User"}]
    return updated


def assignee(owner: OwnerRef | None) -> OwnerRef | None:
    """``owner`` as Sentinel assigns it: by object id, else by user principal name (an e-mail alone is not used)."""
    return owner.only("object_id", "upn") if owner is not None else None


def _owner(owner: OwnerRef) -> dict[str, str]:
    if owner.object_id:
        return {"objectId": owner.object_id}
    if owner.upn:
        return {"userPrincipalName": owner.upn}
    raise ValueError("Sentinel assigns an owner by object id or user principal name")


def changed_properties(incident: Incident, change: IncidentChange) -> dict[str, Any] | None:
    """The full writable set of ``incident`` with ``change`` applied; ``None`` when the change is empty."""
    if change.is_empty:
        return None
    properties = writable_properties(incident)
    if change.status is not None:
        properties["status"] = change.status.value
    if change.classification is not None:
        properties["classification"] = change.classification.classification.value
        if change.classification.reason is not None:
            properties["classificationReason"] = change.classification.reason.value
        else:
            properties.pop("classificationReason", None)
        properties["classificationComment"] = change.classification_comment[:CLASSIFICATION_COMMENT_LIMIT]
    if change.owner is not None:
        properties["owner"] = _owner(change.owner)
    for tag in change.labels:
        properties = with_label(properties, tag) or properties
    return properties


def put_body(incident: Incident, properties: Mapping[str, Any]) -> dict[str, Any]:
    """The PUT body: ``properties`` and, when ``incident`` was read with one, its etag (a stale etag is a 409)."""
    body: dict[str, Any] = {"properties": dict(properties)}
    if incident.etag is not None:
        body["etag"] = incident.etag
    return body
