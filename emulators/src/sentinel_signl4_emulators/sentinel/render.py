"""Sentinel resources in their ARM JSON form: incidents, comments, alerts, entities, and ``$filter`` values.

The resource *is* the incident's public shape; the model calls these after applying its rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from sentinel_signl4_emulators.common.odata import FieldType, Value
from sentinel_signl4_emulators.sentinel.entities import (
    EntitySeed,
    SecurityAlertSeed,
    StoredComment,
    StoredIncident,
    StoredOwner,
    Workspace,
)
from sentinel_signl4_emulators.sentinel.rules import unique

__all__ = [
    "COMMENT_TYPE",
    "ENTITY_TYPE",
    "INCIDENT_FIELDS",
    "INCIDENT_TYPE",
    "PORTAL_INCIDENT_PREFIX",
    "filter_values",
    "format_timestamp",
    "render_alert",
    "render_comment",
    "render_entity",
    "render_incident",
    "render_owner",
]

INCIDENT_TYPE: Final = "Microsoft.SecurityInsights/incidents"
COMMENT_TYPE: Final = "Microsoft.SecurityInsights/incidents/comments"
ENTITY_TYPE: Final = "Microsoft.SecurityInsights/Entities"
PORTAL_INCIDENT_PREFIX: Final = "https://portal.azure.com/#asset/Microsoft_Azure_Security_Insights/Incident"

#: Properties ``$filter`` and ``$orderby`` accept, with their literal types.
INCIDENT_FIELDS: Final[Mapping[str, FieldType]] = {
    "properties/createdTimeUtc": FieldType.DATETIME,
    "properties/lastModifiedTimeUtc": FieldType.DATETIME,
    "properties/status": FieldType.STRING,
    "properties/severity": FieldType.STRING,
    "properties/incidentNumber": FieldType.INT,
    "properties/title": FieldType.STRING,
}


def format_timestamp(moment: datetime) -> str:
    """ARM's UTC form: seven fractional digits when there is a fraction (.NET ticks), none otherwise."""
    moment = moment.astimezone(UTC)
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{moment.microsecond:06d}0Z" if moment.microsecond else f"{base}Z"


def render_incident(ws: Workspace, incident: StoredIncident) -> dict[str, Any]:
    resource_id = f"{ws.ref.resource_id}/providers/Microsoft.SecurityInsights/incidents/{incident.name}"
    tactics = unique([*(t for a in incident.alerts for t in a.tactics), *incident.extra_tactics])
    products = unique([*(a.product_name for a in incident.alerts), *incident.extra_product_names])
    additional: dict[str, Any] = {
        "alertsCount": len(incident.alerts),
        "bookmarksCount": 0,
        "commentsCount": len(incident.comments),
        "alertProductNames": products,
        "tactics": tactics,
    }
    if incident.provider_incident_url:
        additional["providerIncidentUrl"] = incident.provider_incident_url
    properties: dict[str, Any] = {
        "title": incident.title,
        "severity": incident.severity,
        "status": incident.status,
        "owner": render_owner(incident.owner),
        "labels": [{"labelName": n, "labelType": t} for n, t in incident.labels],
        "createdTimeUtc": format_timestamp(incident.created),
        "lastModifiedTimeUtc": format_timestamp(incident.last_modified),
        "incidentNumber": incident.number,
        "incidentUrl": f"{PORTAL_INCIDENT_PREFIX}{resource_id}",
        "providerName": incident.provider_name,
        "providerIncidentId": incident.provider_incident_id,
        "relatedAnalyticRuleIds": list(incident.related_rule_ids),
        "additionalData": additional,
    }
    optional = {
        "description": incident.description,
        "classification": incident.classification,
        "classificationReason": incident.classification_reason,
        "classificationComment": incident.classification_comment,
        "firstActivityTimeUtc": incident.first_activity and format_timestamp(incident.first_activity),
        "lastActivityTimeUtc": incident.last_activity and format_timestamp(incident.last_activity),
    }
    properties.update({k: v for k, v in optional.items() if v is not None})
    return {
        "id": resource_id,
        "name": incident.name,
        "type": INCIDENT_TYPE,
        "etag": incident.etag,
        "properties": properties,
    }


def render_owner(owner: StoredOwner | None) -> dict[str, Any]:
    if owner is None:
        # Unassigned. The live service may return the keys with null values [unverified]; the spec types
        # them as non-null strings, so the emulator leaves them out.
        return {"ownerType": "Unknown"}
    rendered = {
        "objectId": owner.object_id,
        "userPrincipalName": owner.user_principal_name,
        "assignedTo": owner.assigned_to,
        "ownerType": "User",
    }
    if owner.email:
        rendered["email"] = owner.email
    return rendered


def filter_values(incident: StoredIncident) -> dict[str, Value]:
    return {
        "properties/createdTimeUtc": incident.created,
        "properties/lastModifiedTimeUtc": incident.last_modified,
        "properties/status": incident.status,
        "properties/severity": incident.severity,
        "properties/incidentNumber": incident.number,
        "properties/title": incident.title,
    }


def render_comment(ws: Workspace, incident: StoredIncident, comment: StoredComment) -> dict[str, Any]:
    return {
        "id": (
            f"{ws.ref.resource_id}/providers/Microsoft.SecurityInsights/incidents/{incident.name}"
            f"/comments/{comment.name}"
        ),
        "name": comment.name,
        "type": COMMENT_TYPE,
        "etag": comment.etag,
        "properties": {
            "message": comment.message,
            "createdTimeUtc": format_timestamp(comment.created),
            "lastModifiedTimeUtc": format_timestamp(comment.last_modified),
            "author": comment.author.to_json(),
        },
    }


def render_alert(ws: Workspace, alert: SecurityAlertSeed) -> dict[str, Any]:
    generated = format_timestamp(alert.time_generated)
    properties: dict[str, Any] = {
        "systemAlertId": alert.system_alert_id,
        "alertDisplayName": alert.display_name,
        "friendlyName": alert.display_name,
        "severity": str(alert.severity),
        "productName": alert.product_name,
        "vendorName": alert.vendor_name,
        "status": alert.status,
        "tactics": list(alert.tactics),
        "confidenceLevel": alert.confidence_level,
        "alertType": alert.alert_type or alert.display_name,
        "startTimeUtc": generated,
        "endTimeUtc": generated,
        "timeGenerated": generated,
        "processingEndTime": generated,
        "resourceIdentifiers": [
            {
                "type": "LogAnalytics",
                "workspaceId": ws.workspace_id,
                "subscriptionId": ws.ref.subscription_id,
                "resourceGroup": ws.ref.resource_group,
            }
        ],
        "additionalData": {"AlertMessageEnqueueTime": generated},
    }
    optional = {
        "description": alert.description,
        "compromisedEntity": alert.compromised_entity,
        "providerAlertId": alert.provider_alert_id,
        "productComponentName": alert.product_component_name,
    }
    properties.update({k: v for k, v in optional.items() if v})
    if alert.remediation_steps:
        properties["remediationSteps"] = list(alert.remediation_steps)
    return {
        "id": f"{ws.ref.resource_id}/providers/Microsoft.SecurityInsights/Entities/{alert.system_alert_id}",
        "name": alert.system_alert_id,
        "type": ENTITY_TYPE,
        "kind": "SecurityAlert",
        "properties": properties,
    }


def render_entity(ws: Workspace, entity: EntitySeed) -> dict[str, Any]:
    return {
        "id": f"{ws.ref.resource_id}/providers/Microsoft.SecurityInsights/Entities/{entity.entity_id}",
        "name": entity.entity_id,
        "type": ENTITY_TYPE,
        "kind": entity.kind,
        "properties": dict(entity.properties),
    }
