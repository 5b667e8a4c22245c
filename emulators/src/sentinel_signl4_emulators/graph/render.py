"""Graph security resources in their JSON form (incident, alert, comment) and their ``$filter`` values."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from sentinel_signl4_emulators.common.odata import FieldType
from sentinel_signl4_emulators.graph.entities import StoredAlert, StoredComment, StoredIncident, StoredTenant
from sentinel_signl4_emulators.graph.enums import enum_out

__all__ = [
    "ALERT_FIELDS",
    "INCIDENT_FIELDS",
    "PORTAL",
    "alert_values",
    "format_graph_time",
    "incident_values",
    "render_alert",
    "render_comment",
    "render_incident",
]

PORTAL: Final = "https://security.microsoft.com"

#: ``$filter`` properties of ``/security/incidents`` (docs: security-list-incidents.md) and their literal types.
INCIDENT_FIELDS: Final[Mapping[str, FieldType]] = {
    "assignedTo": FieldType.STRING,
    "classification": FieldType.STRING,
    "createdDateTime": FieldType.DATETIME,
    "determination": FieldType.STRING,
    "lastUpdateDateTime": FieldType.DATETIME,
    "severity": FieldType.STRING,
    "status": FieldType.STRING,
}

#: ``$filter`` properties of ``/security/alerts_v2`` (reference §3.1).
ALERT_FIELDS: Final[Mapping[str, FieldType]] = {**INCIDENT_FIELDS, "serviceSource": FieldType.STRING}


def format_graph_time(moment: datetime) -> str:
    """Graph's UTC form: ``2021-08-13T08:43:35.5533333Z`` (seven fractional digits when there is a fraction)."""
    moment = moment.astimezone(UTC)
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{moment.microsecond:06d}0Z" if moment.microsecond else f"{base}Z"


def render_incident(
    tenant: StoredTenant, incident: StoredIncident, *, expand_alerts: bool, include_unknown: bool
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.security.incident",
        "id": incident.id,
        "tenantId": incident.tenant_id,
        "status": enum_out("incidentStatus", incident.status, include_unknown),
        "incidentWebUrl": f"{PORTAL}/incidents/{incident.id}?tid={incident.tenant_id}",
        "redirectIncidentId": incident.redirect_incident_id,
        "displayName": incident.display_name,
        "createdDateTime": format_graph_time(incident.created),
        "lastUpdateDateTime": format_graph_time(incident.last_update),
        "assignedTo": incident.assigned_to,
        "classification": enum_out("alertClassification", incident.classification, include_unknown),
        "determination": enum_out("alertDetermination", incident.determination, include_unknown),
        "severity": enum_out("alertSeverity", incident.severity, include_unknown),
        "customTags": list(incident.custom_tags),
        "systemTags": list(incident.system_tags),
        "comments": [render_comment(c) for c in incident.comments],
        "description": incident.description,
        "summary": incident.summary,
        "lastModifiedBy": incident.last_modified_by,
        "resolvingComment": incident.resolving_comment,
        "priorityScore": incident.priority_score,
    }
    if expand_alerts:
        body["alerts"] = [render_alert(tenant.alerts[a], include_unknown=include_unknown)
                          for a in incident.alert_ids]
    return body


def render_alert(alert: StoredAlert, *, include_unknown: bool) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.security.alert",
        "id": alert.id,
        "providerAlertId": alert.id,
        "incidentId": alert.incident_id,
        "status": enum_out("alertStatus", alert.status, include_unknown),
        "severity": enum_out("alertSeverity", alert.severity, include_unknown),
        "classification": enum_out("alertClassification", alert.classification, include_unknown),
        "determination": enum_out("alertDetermination", alert.determination, include_unknown),
        "serviceSource": enum_out("serviceSource", alert.service_source, include_unknown),
        "detectionSource": enum_out("detectionSource", alert.detection_source, include_unknown),
        "productName": alert.product_name,
        "detectorId": alert.detector_id,
        "tenantId": alert.tenant_id,
        "title": alert.title,
        "description": alert.description,
        "recommendedActions": alert.recommended_actions,
        "category": alert.category,
        "assignedTo": alert.assigned_to,
        "alertWebUrl": f"{PORTAL}/alerts/{alert.id}?tid={alert.tenant_id}",
        "incidentWebUrl": f"{PORTAL}/incidents/{alert.incident_id}?tid={alert.tenant_id}",
        "actorDisplayName": alert.actor_display_name,
        "threatDisplayName": alert.threat_display_name,
        "threatFamilyName": alert.threat_family_name,
        "mitreTechniques": list(alert.mitre_techniques),
        "createdDateTime": format_graph_time(alert.created),
        "lastUpdateDateTime": format_graph_time(alert.last_update),
        "resolvedDateTime": format_graph_time(alert.resolved) if alert.resolved else None,
        "firstActivityDateTime": format_graph_time(alert.first_activity),
        "lastActivityDateTime": format_graph_time(alert.last_activity),
        "comments": [render_comment(c) for c in alert.comments],
        "evidence": [dict(e) for e in alert.evidence],
        "systemTags": [],
    }


def render_comment(comment: StoredComment) -> dict[str, Any]:
    # The shape the comments action returns and the schema defines; the docs' incident example shows
    # createdBy/createdTime instead (reference §3.2: inconsistent docs).
    return {"comment": comment.text, "createdByDisplayName": comment.author,
            "createdDateTime": format_graph_time(comment.created)}


def incident_values(incident: StoredIncident) -> dict[str, object]:
    return {
        "assignedTo": incident.assigned_to, "classification": incident.classification,
        "createdDateTime": incident.created, "determination": incident.determination,
        "lastUpdateDateTime": incident.last_update, "severity": incident.severity, "status": incident.status,
    }


def alert_values(alert: StoredAlert) -> dict[str, object]:
    return {
        "assignedTo": alert.assigned_to, "classification": alert.classification, "createdDateTime": alert.created,
        "determination": alert.determination, "lastUpdateDateTime": alert.last_update, "severity": alert.severity,
        "status": alert.status, "serviceSource": alert.service_source,
    }
