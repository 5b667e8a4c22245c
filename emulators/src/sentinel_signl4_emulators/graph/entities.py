"""Microsoft Graph security vocabulary: permissions, operations, the error shape, alert seeds and stored records.

Plain data; :mod:`sentinel_signl4_emulators.graph.model` owns the rules that change it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

__all__ = [
    "AlertSeed",
    "GraphError",
    "Operation",
    "Permission",
    "StoredAlert",
    "StoredComment",
    "StoredIncident",
    "StoredTenant",
    "bad_request",
]


class Permission(StrEnum):
    """Application permissions (app roles on Microsoft Graph) the emulated operations look for."""

    SECURITY_INCIDENT_READ = "SecurityIncident.Read.All"
    SECURITY_INCIDENT_READ_WRITE = "SecurityIncident.ReadWrite.All"
    SECURITY_ALERT_READ = "SecurityAlert.Read.All"
    SECURITY_ALERT_READ_WRITE = "SecurityAlert.ReadWrite.All"
    USER_READ_ALL = "User.Read.All"
    DIRECTORY_READ_ALL = "Directory.Read.All"


class Operation(StrEnum):
    """What a request does, for permission checks and throttling."""

    INCIDENTS_READ = "incidents.read"
    INCIDENTS_WRITE = "incidents.write"
    ALERTS_READ = "alerts.read"
    ALERTS_WRITE = "alerts.write"
    USERS_READ = "users.read"

    @property
    def accepted(self) -> tuple[Permission, ...]:
        """Permissions any one of which allows the operation, least privileged first (docs' permission tables)."""
        return _ACCEPTED[self]

    @property
    def is_security(self) -> bool:
        """Security operations share the 150 requests/minute budget; ``/users`` has other limits."""
        return self is not Operation.USERS_READ


_ACCEPTED: Final[Mapping[Operation, tuple[Permission, ...]]] = {
    Operation.INCIDENTS_READ: (Permission.SECURITY_INCIDENT_READ, Permission.SECURITY_INCIDENT_READ_WRITE),
    Operation.INCIDENTS_WRITE: (Permission.SECURITY_INCIDENT_READ_WRITE,),
    Operation.ALERTS_READ: (Permission.SECURITY_ALERT_READ, Permission.SECURITY_ALERT_READ_WRITE),
    Operation.ALERTS_WRITE: (Permission.SECURITY_ALERT_READ_WRITE,),
    # User.ReadBasic.All may suffice for the basic fields [unverified]; not accepted here.
    Operation.USERS_READ: (Permission.USER_READ_ALL, Permission.DIRECTORY_READ_ALL),
}


class GraphError(Exception):
    """A failure Graph reports as ``{"error": {"code", "message", "innerError"}}`` with HTTP ``status``."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def bad_request(message: str) -> GraphError:
    return GraphError(400, "BadRequest", message)


@dataclass(frozen=True, slots=True)
class AlertSeed:
    """An alert as a Defender product raises it (control plane, seed, tests). Enum fields take wire values."""

    title: str
    severity: str = "medium"
    service_source: str = "microsoftDefenderForEndpoint"
    detection_source: str = "antivirus"
    product_name: str | None = None  # derived from service_source when omitted
    category: str | None = None  # a MITRE tactic name, e.g. "DefenseEvasion"
    mitre_techniques: tuple[str, ...] = ()
    status: str = "new"
    description: str = ""
    created: datetime | None = None
    evidence: tuple[Mapping[str, Any], ...] = ()
    alert_id: str | None = None
    actor_display_name: str | None = None
    threat_display_name: str | None = None
    threat_family_name: str | None = None
    recommended_actions: str | None = None


@dataclass(slots=True)
class StoredComment:
    text: str
    author: str
    created: datetime


@dataclass(slots=True)
class StoredAlert:
    id: str
    tenant_id: str
    incident_id: str
    title: str
    severity: str
    status: str
    service_source: str
    detection_source: str
    product_name: str | None
    category: str | None
    mitre_techniques: list[str]
    description: str
    created: datetime
    last_update: datetime
    first_activity: datetime
    last_activity: datetime
    detector_id: str
    evidence: list[dict[str, Any]]
    actor_display_name: str | None = None
    threat_display_name: str | None = None
    threat_family_name: str | None = None
    recommended_actions: str | None = None
    assigned_to: str | None = None
    classification: str = "unknown"
    determination: str = "unknown"
    resolved: datetime | None = None
    comments: list[StoredComment] = field(default_factory=list)


@dataclass(slots=True)
class StoredIncident:
    id: str
    tenant_id: str
    display_name: str
    severity: str
    status: str
    created: datetime
    last_update: datetime
    description: str | None = None
    summary: str | None = None
    assigned_to: str | None = None
    classification: str = "unknown"
    determination: str = "unknown"
    custom_tags: list[str] = field(default_factory=list)
    system_tags: list[str] = field(default_factory=list)
    redirect_incident_id: str | None = None
    last_modified_by: str | None = None
    resolving_comment: str | None = None
    priority_score: int | None = None
    comments: list[StoredComment] = field(default_factory=list)
    alert_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class StoredTenant:
    tenant_id: str
    incidents: dict[str, StoredIncident] = field(default_factory=dict)
    alerts: dict[str, StoredAlert] = field(default_factory=dict)
