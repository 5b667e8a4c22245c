"""SIGNL4's JSON shapes: v2 field names of ref §3.3; fields whose shape is unknown are left out, not made up."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sentinel_signl4_emulators.signl4.model import (
    Alert,
    Annotation,
    Event,
    OutboundWebhook,
    Team,
    User,
    format_utc,
)

__all__ = [
    "alert_details_json",
    "alert_json",
    "annotation_json",
    "annotation_v1_json",
    "event_json",
    "team_json",
    "timeline_json",
    "user_json",
    "webhook_json",
]


def _when(moment: datetime | None) -> str | None:
    return format_utc(moment) if moment is not None else None


def user_json(user: User) -> dict[str, Any]:
    """A v2 user, limited to the fields the model knows (``dutyInfos``, ``contactAddresses``… are omitted)."""
    return {"id": user.id, "name": user.name, "mail": user.mail, "subscriptionId": user.subscription_id,
            "isDeactivated": False, "isEnabled": True, "isInvite": False, "timeZone": user.timezone}


def team_json(team: Team) -> dict[str, Any]:
    """``TeamInfo`` (v1 and v2 alike, ref §3.3)."""
    return {"id": team.id, "name": team.name, "memberIds": list(team.member_ids),
            "subscriptionId": team.subscription_id, "timezone": team.timezone}


def alert_json(alert: Alert) -> dict[str, Any]:
    """A v2 alert (ref §3.3 "Get an alert"). Alerting pattern, distribution and workflow fields are omitted: the
    emulator does not model them. ``history.acknowledgements`` holds user ids, as v1's list does."""
    return {
        "categoryId": alert.category_id,
        "categoryName": alert.category,
        "eventId": alert.event_id,
        "eventSourceId": alert.event_source_id,
        "externalId": alert.external_id,
        "flags": int(alert.flags),
        "history": {
            "acknowledgedAt": _when(alert.acknowledged_at),
            "acknowledgements": list(alert.acknowledgements),
            "closedAt": _when(alert.closed_at),
            "closedBy": alert.closed_by,
            "created": format_utc(alert.created),
            # Events raised through a webhook have no creating user.
            "createdBy": None,
            "createdByName": None,
        },
        "id": alert.id,
        "lastModified": format_utc(alert.last_modified),
        "requiredAcknowledgements": alert.required_acknowledgements,
        "severity": int(alert.severity),
        "status": int(alert.status),
        "subscriptionId": alert.subscription_id,
        "teamId": alert.team_id,
        "text": alert.text,
        "title": alert.title,
    }


def alert_details_json(alert: Alert) -> dict[str, Any]:
    """``/details`` adds attachments and parameters (ref §3.3); timeline and escalation entries are omitted because
    their shape is not known."""
    details = alert_json(alert)
    details["attachments"] = []
    details["parameters"] = [{"name": p.name, "order": i, "type": p.type, "value": p.value}
                             for i, p in enumerate(alert.parameters)]
    return details


def annotation_json(annotation: Annotation) -> dict[str, Any]:
    return {"id": annotation.id, "teamId": annotation.team_id, "text": annotation.text,
            "timestamp": format_utc(annotation.timestamp), "type": int(annotation.type),
            "userId": annotation.user_id}


def annotation_v1_json(annotation: Annotation) -> dict[str, Any]:
    """v1 ``AlertAnnotationInfo`` ``{annotationType, id, text, timestamp, userId}`` (v1 OpenAPI, ref §3.3)."""
    return {"annotationType": int(annotation.type), "id": annotation.id, "text": annotation.text,
            "timestamp": format_utc(annotation.timestamp), "userId": annotation.user_id}


# Entry kinds of the emulated timeline. SIGNL4's ``entrytype`` numbering is not documented anywhere, so these values
# are the emulator's own and the connector never relies on them: an entry is an annotation when its
# ``annotationtype`` is a v2 annotation type (1 text, 2 image, ref §3.3 "Annotate").
_ENTRY_CREATED, _ENTRY_ACKNOWLEDGED, _ENTRY_CLOSED, _ENTRY_ANNOTATION = 1, 2, 3, 4


def timeline_json(alert: Alert) -> list[dict[str, Any]]:
    """``GET /v2/alerts/{id}/timeline``: not in the reference beyond its path (ref §3.3, [DERIVED]). The entry fields
    are those of MindCloud's v2-swagger-derived "Get Alert Timeline" (``annotationtype, creatorId, creatorType,
    entrytype, id, order, remoteActionId, remoteJobId, teamId, text, timestamp, userId``); which entries exist and
    what the status entries' text says are plausible guesses. Oldest first."""
    entries: list[tuple[datetime, int, int, str | None, str, str]] = [
        (alert.created, _ENTRY_CREATED, 0, None, "Alert created", f"{alert.id}:created"),
    ]
    if alert.acknowledged_at is not None:
        acknowledged = alert.acknowledged_at
        entries += [(acknowledged, _ENTRY_ACKNOWLEDGED, 0, user, "Alert acknowledged", f"{alert.id}:ack:{user}")
                    for user in alert.acknowledgements]
    if alert.closed_at is not None:
        entries.append((alert.closed_at, _ENTRY_CLOSED, 0, alert.closed_by, "Alert closed", f"{alert.id}:closed"))
    entries += [(a.timestamp, _ENTRY_ANNOTATION, int(a.type), a.user_id, a.text, a.id) for a in alert.annotations]
    entries.sort(key=lambda e: e[0])
    return [{"annotationtype": kind, "creatorId": user, "creatorType": 1 if user else 0, "entrytype": entry,
             "id": entry_id, "order": order, "remoteActionId": None, "remoteJobId": None, "teamId": alert.team_id,
             "text": text, "timestamp": format_utc(when), "userId": user}
            for order, (when, entry, kind, user, text, entry_id) in enumerate(entries)]


def event_json(event: Event) -> dict[str, Any]:
    """A v2 event (ref §3.3 "Events"): ``targets[].alertId`` maps the webhook's eventId to its alert(s)."""
    return {
        "acknowledgedAlerts": list(event.acknowledged_alert_ids),
        "closedAlerts": list(event.closed_alert_ids),
        "creationTime": format_utc(event.created),
        "eventSourceId": event.event_source_id,
        "eventSourceTeamId": event.team_id,
        "eventStatus": int(event.status),
        "externalId": event.external_id,
        "id": event.id,
        "lastModified": format_utc(event.last_modified),
        "parameters": [{"name": p.name, "type": p.type, "value": p.value} for p in event.parameters],
        "severity": int(event.severity),
        "targets": [{"alertId": alert_id, "eventId": event.id, "teamId": event.team_id,
                     "creationTime": format_utc(event.created)} for alert_id in event.target_alert_ids],
        "text": event.text,
        "title": event.title,
    }


def webhook_json(webhook: OutboundWebhook) -> dict[str, Any]:
    """v1 ``WebhookInfo`` (ref §2.1)."""
    return {"enabled": webhook.enabled, "externalAddress": webhook.url, "id": webhook.id, "name": webhook.name,
            "subscriptionId": webhook.subscription_id, "teamId": webhook.team_id}
