"""What we send to SIGNL4, built from an incident by pure functions."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from sentinel_signl4.domain.enums import SignlStatus
from sentinel_signl4.domain.incident import Incident

__all__ = ["SOURCE_SYSTEM", "SignlRequest", "check_team_webhook_url", "external_id_for", "external_id_prefix",
           "team_secret_of"]

SOURCE_SYSTEM = "MicrosoftSentinel"

_WEBHOOK_SECRET = re.compile(r"/webhook/([^/?#]+)")


def team_secret_of(webhook_url: str) -> str:
    """The team (or integration) secret: the path segment after ``/webhook/`` of the inbound webhook URL.

    Query parameters (SIGNL4's status-mapping options) are not part of it. Raises ``ValueError`` for a URL that
    has no secret segment.
    """
    match = _WEBHOOK_SECRET.search(urlsplit(webhook_url).path)
    if not match:
        raise ValueError("the SIGNL4 webhook URL must look like https://connect.signl4.com/webhook/<team secret>")
    return unquote(match.group(1))


def check_team_webhook_url(webhook_url: str, whose: str = "the team's") -> None:
    """Raise ``ValueError`` unless ``webhook_url`` is an https SIGNL4 webhook URL with its secret segment."""
    try:
        valid = webhook_url.startswith("https://") and bool(team_secret_of(webhook_url))
    except ValueError:
        valid = False
    if not valid:
        raise ValueError(f"must be {whose} https webhook URL including its secret, "
                         "e.g. https://connect.signl4.com/webhook/<team-secret>")


def external_id_for(connector: str, incident_resource_id: str, generation: int = 1) -> str:
    """A stable `X-S4-ExternalID`, unique across workspaces and connectors.

    The ARM resource id names the subscription, resource group, workspace and incident; hashing it (case-folded,
    because ARM ids are case-insensitive) keeps the id short and free of characters a URL or a phone might mangle.
    The connector name is kept in clear so a responder can tell which tenant a Signl belongs to. ``generation``
    counts re-raises of one incident (a reopened incident gets a new Signl when configured so).
    """
    digest = hashlib.sha256(incident_resource_id.casefold().encode()).hexdigest()[:20]
    suffix = "" if generation == 1 else f"-{generation}"
    return f"{external_id_prefix(connector)}{digest}{suffix}"


def external_id_prefix(connector: str) -> str:
    """How every ExternalID of ``connector``'s Signls begins (connector names cannot contain ``:``)."""
    return f"s4s:{connector}:"


@dataclass(frozen=True, slots=True)
class SignlRequest:
    """One event for the SIGNL4 inbound webhook (or `POST /api/v2/events/{team}`)."""

    external_id: str
    status: SignlStatus = SignlStatus.NEW
    title: str = ""
    message: str = ""
    parameters: Mapping[str, str] = field(default_factory=dict)
    service: str | None = None
    alerting_scenario: str | None = None
    source_system: str = SOURCE_SYSTEM

    def to_payload(self) -> dict[str, Any]:
        """The JSON body. Control parameters ride in the body, as SIGNL4's own integrations send them."""
        body: dict[str, Any] = {}
        if self.status is SignlStatus.NEW:
            body["Title"] = self.title
            body["Message"] = self.message
            body.update(self.parameters)
            if self.service:
                body["X-S4-Service"] = self.service
            if self.alerting_scenario:
                body["X-S4-AlertingScenario"] = self.alerting_scenario
        body["X-S4-ExternalID"] = self.external_id
        body["X-S4-Status"] = self.status.value
        body["X-S4-SourceSystem"] = self.source_system
        return body


    def to_record(self) -> dict[str, Any]:
        """A JSON-able form for the outbox; :meth:`from_record` restores it exactly."""
        return {
            "external_id": self.external_id, "status": self.status.value, "title": self.title,
            "message": self.message, "parameters": dict(self.parameters), "service": self.service,
            "alerting_scenario": self.alerting_scenario, "source_system": self.source_system,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> SignlRequest:
        return cls(
            external_id=str(record["external_id"]), status=SignlStatus(record.get("status", "new")),
            title=str(record.get("title", "")), message=str(record.get("message", "")),
            parameters={str(k): str(v) for k, v in dict(record.get("parameters") or {}).items()},
            service=record.get("service"), alerting_scenario=record.get("alerting_scenario"),
            source_system=str(record.get("source_system") or SOURCE_SYSTEM),
        )


def incident_title(incident: Incident) -> str:
    return f"{incident.number} | {incident.title}"
