"""Sentinel's vocabulary: access roles, workspace addresses, write requests, seeds and the stored records.

Plain data; :mod:`sentinel_signl4_emulators.sentinel.model` owns the rules that change it and
:mod:`sentinel_signl4_emulators.sentinel.render` its ARM JSON form.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from sentinel_signl4_emulators.common.odata import Value
from sentinel_signl4_emulators.entra.model import User
from sentinel_signl4_emulators.sentinel.vocab import Severity

__all__ = [
    "UNSET",
    "Action",
    "Author",
    "EntitySeed",
    "IncidentWrite",
    "OwnerRef",
    "Page",
    "Role",
    "SecurityAlertSeed",
    "StoredComment",
    "StoredIncident",
    "StoredOwner",
    "Unset",
    "Workspace",
    "WorkspaceRef",
    "new_comment_etag",
    "new_incident_etag",
]


class Unset:
    """Marker for "leave this field as it is" in analyst edits (``None`` means "clear it")."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset()


class Action(StrEnum):
    """ARM RBAC actions the emulated calls need (alerts/entities action names are unverified)."""

    INCIDENTS_READ = "Microsoft.SecurityInsights/incidents/read"
    INCIDENTS_WRITE = "Microsoft.SecurityInsights/incidents/write"
    COMMENTS_READ = "Microsoft.SecurityInsights/incidents/comments/read"
    COMMENTS_WRITE = "Microsoft.SecurityInsights/incidents/comments/write"
    # Microsoft publishes no action of their own for POST …/alerts and …/entities; the built-in Reader can call
    # them with only `Microsoft.SecurityInsights/*/read`, so they are authorised as reading the incident (derived:
    # docs/decisions.md, "Provisioning: the role's actions").
    ALERTS_READ = "Microsoft.SecurityInsights/incidents/read"
    ENTITIES_READ = "Microsoft.SecurityInsights/incidents/read"

    @property
    def is_write(self) -> bool:
        return self.value.endswith("/write")


class Role(StrEnum):
    """Microsoft Sentinel Reader (read) and Responder (read, update incidents, comment)."""

    READER = "reader"
    RESPONDER = "responder"

    def allows(self, action: Action) -> bool:
        return self is Role.RESPONDER or not action.is_write


@dataclass(frozen=True, slots=True)
class WorkspaceRef:
    """An ARM workspace address. Comparisons are case-insensitive, like ARM's."""

    subscription_id: str
    resource_group: str
    name: str

    @property
    def resource_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.OperationalInsights/workspaces/{self.name}"
        )

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.subscription_id.lower(), self.resource_group.lower(), self.name.lower())

    @classmethod
    def parse(cls, text: str) -> WorkspaceRef:
        """From a workspace resource id or ``subscription/resourceGroup/workspace``."""
        parts = [p for p in text.strip().split("/") if p]
        if len(parts) == 3:
            return cls(*parts)
        lowered = [p.lower() for p in parts]
        if (
            len(parts) == 8
            and lowered[0] == "subscriptions"
            and lowered[2] == "resourcegroups"
            and lowered[4:7] == ["providers", "microsoft.operationalinsights", "workspaces"]
        ):
            return cls(parts[1], parts[3], parts[7])
        raise ValueError(f"not a workspace reference: {text!r}")


@dataclass(frozen=True, slots=True)
class Author:
    """``ClientInfo`` of a comment: an app (object id + display name) or a user."""

    object_id: str | None = None
    name: str | None = None
    email: str | None = None
    user_principal_name: str | None = None

    @classmethod
    def of_user(cls, user: User) -> Author:
        return cls(user.object_id, user.display_name, user.mail, user.user_principal_name)

    def to_json(self) -> dict[str, str]:
        pairs = (
            ("objectId", self.object_id), ("name", self.name),
            ("email", self.email), ("userPrincipalName", self.user_principal_name),
        )
        return {k: v for k, v in pairs if v is not None}


@dataclass(frozen=True, slots=True)
class OwnerRef:
    """An owner as a client names it: by object id, UPN or email. All empty means "unassign"."""

    object_id: str | None = None
    user_principal_name: str | None = None
    email: str | None = None

    @property
    def reference(self) -> str | None:
        return self.object_id or self.user_principal_name or self.email


@dataclass(frozen=True, slots=True)
class IncidentWrite:
    """The writable set of a PUT body, already type-checked by the wire layer. ``None`` = omitted."""

    title: str | None
    severity: str | None
    status: str | None
    etag: str | None = None
    description: str | None = None
    classification: str | None = None
    classification_reason: str | None = None
    classification_comment: str | None = None
    owner: OwnerRef | None = None
    labels: tuple[str, ...] = ()
    first_activity: datetime | None = None
    last_activity: datetime | None = None


@dataclass(frozen=True, slots=True)
class SecurityAlertSeed:
    """An alert of an incident, as ``POST …/alerts`` returns it (and Log Analytics' SecurityAlert holds)."""

    display_name: str
    severity: Severity
    product_name: str
    time_generated: datetime
    system_alert_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    tactics: tuple[str, ...] = ()
    status: str = "New"
    vendor_name: str = "Microsoft"
    description: str = ""
    compromised_entity: str = ""
    alert_type: str = ""
    provider_alert_id: str = ""
    product_component_name: str = ""
    confidence_level: str = "Unknown"
    remediation_steps: tuple[str, ...] = ()
    entity_ids: tuple[str, ...] = ()  # which of the incident's entities this alert involves


@dataclass(frozen=True, slots=True)
class EntitySeed:
    """An entity of an incident; ``properties`` uses the spec's names for ``kind`` (e.g. Account: accountName)."""

    kind: str
    properties: Mapping[str, Any]
    entity_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass(slots=True)
class StoredOwner:
    object_id: str
    user_principal_name: str
    assigned_to: str
    email: str | None


@dataclass(slots=True)
class StoredComment:
    name: str
    message: str
    author: Author
    created: datetime
    last_modified: datetime
    etag: str


@dataclass(slots=True)
class StoredIncident:
    name: str
    number: int
    title: str
    severity: str
    status: str
    created: datetime
    last_modified: datetime
    etag: str
    provider_name: str
    provider_incident_id: str
    provider_incident_url: str | None = None
    description: str | None = None
    classification: str | None = None
    classification_reason: str | None = None
    classification_comment: str | None = None
    owner: StoredOwner | None = None
    labels: list[tuple[str, str]] = field(default_factory=list)  # (name, "User" | "AutoAssigned")
    first_activity: datetime | None = None
    last_activity: datetime | None = None
    related_rule_ids: list[str] = field(default_factory=list)
    extra_tactics: list[str] = field(default_factory=list)
    extra_product_names: list[str] = field(default_factory=list)
    alerts: list[SecurityAlertSeed] = field(default_factory=list)
    entities: list[EntitySeed] = field(default_factory=list)
    comments: dict[str, StoredComment] = field(default_factory=dict)  # by lower-case name, insertion ordered


@dataclass(slots=True)
class Workspace:
    ref: WorkspaceRef
    tenant_id: str
    #: The workspace GUID ("customerId") Log Analytics queries address.
    workspace_id: str
    next_number: int = 1
    incidents: dict[str, StoredIncident] = field(default_factory=dict)  # by lower-case name


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing and, when more items follow, the keyset cursor of its last item."""

    items: list[dict[str, Any]]
    cursor: tuple[Value, str] | None


def new_incident_etag() -> str:
    # The quoted Cosmos DB style the service returns: "\"0300bf09-0000-0000-0000-5c37296e0000\"".
    return f'"{secrets.token_hex(4)}-0000-0000-0000-{secrets.token_hex(6)}"'


def new_comment_etag() -> str:
    # Comment etags come back unquoted in the spec examples (§1.3 note).
    return f"{secrets.token_hex(4)}-0000-0000-0000-{secrets.token_hex(6)}"
