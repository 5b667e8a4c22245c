"""SIGNL4's outbound webhook notifications: the envelope of each event type (ref §2.3) and one delivery attempt."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from sentinel_signl4_emulators.signl4.entities import Alert, Annotation, OutboundEventType, User, format_utc

__all__ = ["Delivery", "DeliveryReport", "envelope", "post_delivery"]


@dataclass(slots=True)
class Delivery:
    """One notification still owed to one webhook; removed only after a 2xx (at-least-once)."""

    payload: dict[str, Any]
    webhook_id: str
    url: str
    attempts: int = 0
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one :meth:`Signl4Model.deliver_outbound` pass did."""

    delivered: int
    failed: int
    duplicates: int
    pending: int


async def post_delivery(client: httpx.AsyncClient, delivery: Delivery) -> tuple[bool, str | None]:
    try:
        response = await client.post(delivery.url, json=delivery.payload)
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}: {exc}"
    if response.is_success:
        return True, None
    return False, f"HTTP {response.status_code}"


def envelope(event_type: OutboundEventType, alert: Alert, now: datetime, *, user: User | None,
              annotation: Annotation | None, user_key_present: bool) -> dict[str, Any]:
    """The notification body, key for key as the samples of signl4.com/outbound-webhooks (ref §2.3).

    * 200 has no ``team``, no ``user`` and no ``acknowledgedUserIds``; 202 has ``team`` and no ``user``;
      201 and 203 carry the acting ``user``.
    * A 201 raised by an inbound ``acknowledged``/``resolved`` event has no actor: ``user`` is null (ref §6).
    * 203 reports ``statusCode`` 0 whatever the alert's status, as the official sample does, so consumers that
      (wrongly) read the status from a 203 fail in tests rather than in production.
    """
    alert_body: dict[str, Any] = {
        "statusCode": 0 if event_type is OutboundEventType.ANNOTATED else int(alert.status),
        "eventId": alert.event_id,
        "externalEventId": alert.external_id,
    }
    if event_type in (OutboundEventType.STATUS_CHANGED, OutboundEventType.ESCALATED):
        alert_body["acknowledgedUserIds"] = list(alert.acknowledgements)
    alert_body["id"] = alert.id
    payload: dict[str, Any] = {
        "eventType": int(event_type),
        "eventRaisedUtc": format_utc(now),
        "subscription": {"id": alert.subscription_id},
    }
    if event_type is OutboundEventType.ESCALATED:
        payload["team"] = {"id": alert.team_id}
    if user is not None or user_key_present:
        payload["user"] = {"username": user.name, "mailaddress": user.mail, "id": user.id} if user else None
    payload["alert"] = alert_body
    if annotation is not None:
        payload["annotation"] = {"message": annotation.text, "id": annotation.id}
    payload["id"] = str(uuid.uuid4())
    return payload
