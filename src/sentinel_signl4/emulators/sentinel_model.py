"""State of the Microsoft Sentinel (Microsoft.SecurityInsights) emulator.

Workspaces hold incidents, their comments, alerts and entities; role assignments say who may read or write.
This module owns the service's *rules* — PUT replaces the writable set, etag concurrency, classification on
close, owner resolution from the directory, sequential incident numbers — and renders resources in their ARM
JSON form (the resource *is* the incident's public shape). HTTP concerns (auth, api-version, query strings,
paging links, throttling headers) live in ``sentinel.py``.

Facts come from reference/microsoft-apis.md §1; where it marks something unverified, so does a comment here.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from sentinel_signl4.domain.enums import Classification, ClassificationReason, IncidentStatus, Severity
from sentinel_signl4.emulators.entra_model import EntraModel, User
from sentinel_signl4.emulators.odata import Expr, FieldType, OrderBy, Value, evaluate
from sentinel_signl4.emulators.throttle import TokenBuckets

__all__ = [
    "COMMENT_MAX_LENGTH",
    "INCIDENT_FIELDS",
    "UNSET",
    "Action",
    "Author",
    "EntitySeed",
    "IncidentWrite",
    "OwnerRef",
    "Page",
    "Role",
    "SecurityAlertSeed",
    "SentinelError",
    "SentinelModel",
    "Workspace",
    "WorkspaceRef",
    "format_timestamp",
]

#: Comment messages longer than this are rejected (Sentinel's documented comment limit; the exact error
#: text is unverified).
COMMENT_MAX_LENGTH: Final = 30_000

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

# Valid (classification, reason) pairs as the portal and Logic Apps connector offer them (§1.6).
_VALID_REASONS: Final[Mapping[Classification, frozenset[ClassificationReason | None]]] = {
    Classification.UNDETERMINED: frozenset({None}),
    Classification.TRUE_POSITIVE: frozenset({ClassificationReason.SUSPICIOUS_ACTIVITY}),
    Classification.BENIGN_POSITIVE: frozenset({ClassificationReason.SUSPICIOUS_BUT_EXPECTED}),
    Classification.FALSE_POSITIVE: frozenset(
        {ClassificationReason.INCORRECT_ALERT_LOGIC, ClassificationReason.INACCURATE_DATA}
    ),
}


class _Unset:
    """Marker for "leave this field as it is" in analyst edits (``None`` means "clear it")."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()


class SentinelError(Exception):
    """A failure the service reports as ``{"error": {"code", "message"}}`` with HTTP ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _bad_request(message: str) -> SentinelError:
    return SentinelError(400, "BadRequest", message)


class Action(StrEnum):
    """ARM RBAC actions the emulated calls need (alerts/entities action names are unverified)."""

    INCIDENTS_READ = "Microsoft.SecurityInsights/incidents/read"
    INCIDENTS_WRITE = "Microsoft.SecurityInsights/incidents/write"
    COMMENTS_READ = "Microsoft.SecurityInsights/incidents/comments/read"
    COMMENTS_WRITE = "Microsoft.SecurityInsights/incidents/comments/write"
    ALERTS_READ = "Microsoft.SecurityInsights/incidents/alerts/read"
    ENTITIES_READ = "Microsoft.SecurityInsights/incidents/entities/read"

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
class _Owner:
    object_id: str
    user_principal_name: str
    assigned_to: str
    email: str | None


@dataclass(slots=True)
class _Comment:
    name: str
    message: str
    author: Author
    created: datetime
    last_modified: datetime
    etag: str


@dataclass(slots=True)
class _Incident:
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
    owner: _Owner | None = None
    labels: list[tuple[str, str]] = field(default_factory=list)  # (name, "User" | "AutoAssigned")
    first_activity: datetime | None = None
    last_activity: datetime | None = None
    related_rule_ids: list[str] = field(default_factory=list)
    extra_tactics: list[str] = field(default_factory=list)
    extra_product_names: list[str] = field(default_factory=list)
    alerts: list[SecurityAlertSeed] = field(default_factory=list)
    entities: list[EntitySeed] = field(default_factory=list)
    comments: dict[str, _Comment] = field(default_factory=dict)  # by lower-case name, insertion ordered


@dataclass(slots=True)
class Workspace:
    ref: WorkspaceRef
    tenant_id: str
    #: The workspace GUID ("customerId") Log Analytics queries address.
    workspace_id: str
    next_number: int = 1
    incidents: dict[str, _Incident] = field(default_factory=dict)  # by lower-case name


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing and, when more items follow, the keyset cursor of its last item."""

    items: list[dict[str, Any]]
    cursor: tuple[Value, str] | None


def format_timestamp(moment: datetime) -> str:
    """ARM's UTC form: seven fractional digits when there is a fraction (.NET ticks), none otherwise."""
    moment = moment.astimezone(UTC)
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{moment.microsecond:06d}0Z" if moment.microsecond else f"{base}Z"


def _new_incident_etag() -> str:
    # The quoted Cosmos DB style the service returns: "\"0300bf09-0000-0000-0000-5c37296e0000\"".
    return f'"{secrets.token_hex(4)}-0000-0000-0000-{secrets.token_hex(6)}"'


def _new_comment_etag() -> str:
    # Comment etags come back unquoted in the spec examples (§1.3 note).
    return f"{secrets.token_hex(4)}-0000-0000-0000-{secrets.token_hex(6)}"


class SentinelModel:
    """All workspaces of the emulated Sentinel. Thread-safe (the HTTPS server has its own thread)."""

    def __init__(
        self,
        entra: EntraModel,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        throttle: TokenBuckets | None = None,
    ) -> None:
        self.entra = entra
        self.clock = clock
        self.throttle = throttle if throttle is not None else TokenBuckets()
        self._workspaces: dict[tuple[str, str, str], Workspace] = {}
        self._subscriptions: dict[str, str] = {}  # subscription id (lower) -> tenant id
        self._roles: list[tuple[str, str, Role]] = []  # (client id, scope (lower), role)
        self._lock = threading.RLock()

    # --- setup ---------------------------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self._workspaces.clear()
            self._subscriptions.clear()
            self._roles.clear()
            self.throttle.reset()

    def create_workspace(
        self,
        subscription_id: str,
        resource_group: str,
        name: str,
        *,
        tenant_id: str,
        workspace_id: str | None = None,
        first_incident_number: int = 1,
    ) -> Workspace:
        """Create (or return the existing) workspace; its subscription belongs to ``tenant_id``."""
        ref = WorkspaceRef(subscription_id, resource_group, name)
        with self._lock:
            known_tenant = self._subscriptions.setdefault(subscription_id.lower(), tenant_id.lower())
            if known_tenant != tenant_id.lower():
                raise ValueError(f"subscription {subscription_id} belongs to tenant {known_tenant}")
            if ref.key not in self._workspaces:
                self._workspaces[ref.key] = Workspace(
                    ref, tenant_id.lower(), (workspace_id or str(uuid.uuid4())).lower(),
                    next_number=first_incident_number,
                )
            return self._workspaces[ref.key]

    def assign_role(self, client_id: str, scope: WorkspaceRef | str, role: Role | str) -> None:
        """Grant ``role`` at a workspace, resource group (``/subscriptions/s/resourceGroups/g``) or
        subscription scope; ARM inherits assignments down the hierarchy."""
        scope_id = scope.resource_id if isinstance(scope, WorkspaceRef) else scope
        with self._lock:
            self._roles.append((client_id.lower(), scope_id.rstrip("/").lower(), Role(role)))

    def role_for(self, client_id: str, ref: WorkspaceRef) -> Role | None:
        """The strongest role ``client_id`` holds on ``ref`` (directly or inherited)."""
        target = ref.resource_id.lower()
        with self._lock:
            roles = {
                role for cid, scope, role in self._roles
                if cid == client_id.lower() and (target == scope or target.startswith(scope + "/"))
            }
        if Role.RESPONDER in roles:
            return Role.RESPONDER
        return Role.READER if roles else None

    def subscription_tenant(self, subscription_id: str) -> str | None:
        with self._lock:
            return self._subscriptions.get(subscription_id.lower())

    def find_workspace(self, ref: WorkspaceRef | str) -> Workspace | None:
        key = _ref(ref).key
        with self._lock:
            return self._workspaces.get(key)

    def workspace(self, ref: WorkspaceRef | str) -> Workspace:
        found = self.find_workspace(ref)
        if found is None:
            raise KeyError(f"no workspace {ref}")
        return found

    def workspaces(self) -> list[Workspace]:
        with self._lock:
            return list(self._workspaces.values())

    def workspace_named(self, text: str) -> Workspace:
        """A workspace by resource id, ``sub/rg/name``, or a bare name that is unique in the emulator."""
        try:
            return self.workspace(WorkspaceRef.parse(text))
        except ValueError:
            pass
        with self._lock:
            matches = [ws for ws in self._workspaces.values() if ws.ref.name.lower() == text.strip().lower()]
        if len(matches) != 1:
            raise KeyError(f"no unique workspace named {text!r}")
        return matches[0]

    # --- scripted world (seed, control plane, tests) -------------------------------------------------------

    def create_incident(
        self,
        workspace: WorkspaceRef | str,
        *,
        title: str,
        severity: Severity | str,
        status: IncidentStatus | str = IncidentStatus.NEW,
        created: datetime | None = None,
        description: str | None = None,
        labels: Iterable[str] = (),
        auto_labels: Iterable[str] = (),
        owner: str | None = None,
        classification: Classification | str | None = None,
        classification_reason: ClassificationReason | str | None = None,
        classification_comment: str | None = None,
        provider_name: str = "Azure Sentinel",
        provider_incident_id: str | None = None,
        provider_incident_url: str | None = None,
        alerts: Sequence[SecurityAlertSeed] = (),
        entities: Sequence[EntitySeed] = (),
        tactics: Iterable[str] = (),
        product_names: Iterable[str] = (),
        related_analytic_rule_ids: Iterable[str] = (),
        first_activity: datetime | None = None,
        last_activity: datetime | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        """Create an incident the way an analytics rule or Defender would, bypassing RBAC.

        ``owner`` is an object id, UPN or mail of a directory user. Returns the incident resource.
        """
        with self._lock:
            ws = self.workspace(workspace)
            when = created or self.clock()
            number = ws.next_number
            ws.next_number += 1
            incident = _Incident(
                name=(name or str(uuid.uuid4())),
                number=number,
                title=title,
                severity=Severity(severity).value,
                status=IncidentStatus(status).value,
                created=when,
                last_modified=when,
                etag=_new_incident_etag(),
                provider_name=provider_name,
                provider_incident_id=provider_incident_id or str(number),
                provider_incident_url=provider_incident_url,
                description=description,
                labels=[(label, "User") for label in labels] + [(label, "AutoAssigned") for label in auto_labels],
                first_activity=first_activity or (min(a.time_generated for a in alerts) if alerts else when),
                last_activity=last_activity or (max(a.time_generated for a in alerts) if alerts else when),
                related_rule_ids=list(related_analytic_rule_ids),
                extra_tactics=list(tactics),
                extra_product_names=list(product_names),
                alerts=list(alerts),
                entities=list(entities),
            )
            self._apply_classification(
                incident, incident.status,
                None if classification is None else str(classification),
                None if classification_reason is None else str(classification_reason),
                classification_comment,
            )
            if owner is not None:
                incident.owner = self._resolve_owner(ws, OwnerRef(user_principal_name=owner))
            if incident.name.lower() in ws.incidents:
                raise ValueError(f"incident {incident.name} exists")
            ws.incidents[incident.name.lower()] = incident
            return self._render(ws, incident)

    def get_incident(self, workspace: WorkspaceRef | str, name: str) -> dict[str, Any]:
        with self._lock:
            ws = self._existing_workspace(workspace)
            return self._render(ws, self._incident(ws, name))

    def list_incidents(self, workspace: WorkspaceRef | str) -> list[dict[str, Any]]:
        """Every incident of the workspace by incident number (no filter, no paging)."""
        with self._lock:
            ws = self.workspace(workspace)
            return [self._render(ws, i) for i in sorted(ws.incidents.values(), key=lambda i: i.number)]

    def find_incident(self, name: str) -> tuple[WorkspaceRef, dict[str, Any]]:
        """Locate an incident by its (globally unique) name in any workspace."""
        with self._lock:
            for ws in self._workspaces.values():
                if name.lower() in ws.incidents:
                    return ws.ref, self._render(ws, ws.incidents[name.lower()])
        raise KeyError(f"no incident {name}")

    def update_incident_as_analyst(
        self,
        workspace: WorkspaceRef | str,
        name: str,
        *,
        title: str | _Unset = UNSET,
        severity: Severity | str | _Unset = UNSET,
        status: IncidentStatus | str | _Unset = UNSET,
        description: str | _Unset | None = UNSET,
        owner: str | _Unset | None = UNSET,
        labels: Iterable[str] | _Unset = UNSET,
        add_labels: Iterable[str] = (),
        classification: Classification | str | _Unset | None = UNSET,
        classification_reason: ClassificationReason | str | _Unset | None = UNSET,
        classification_comment: str | _Unset | None = UNSET,
    ) -> dict[str, Any]:
        """A human edit in the portal: changes only what is given, validates like a PUT, bumps the etag."""
        with self._lock:
            ws = self.workspace(workspace)
            current = self._incident(ws, name)
            resource = self._render(ws, current)["properties"]
            owner_ref: OwnerRef | None
            if isinstance(owner, _Unset):
                owner_ref = _owner_ref_of(current.owner)
            else:
                owner_ref = OwnerRef(user_principal_name=owner) if owner else None
            label_names = [n for n, _ in current.labels] if isinstance(labels, _Unset) else list(labels)
            label_names += [n for n in add_labels if n not in label_names]

            def pick(value: object, key: str) -> Any:
                return resource.get(key) if isinstance(value, _Unset) else value

            write = IncidentWrite(
                title=pick(title, "title"),
                severity=_str_or_none(pick(severity, "severity")),
                status=_str_or_none(pick(status, "status")),
                description=pick(description, "description"),
                classification=_str_or_none(pick(classification, "classification")),
                classification_reason=_str_or_none(pick(classification_reason, "classificationReason")),
                classification_comment=pick(classification_comment, "classificationComment"),
                owner=owner_ref,
                labels=tuple(label_names),
                first_activity=current.first_activity,
                last_activity=current.last_activity,
            )
            return self.put_incident(ws.ref, name, write)[0]

    def close_incident_as_analyst(
        self,
        workspace: WorkspaceRef | str,
        name: str,
        *,
        classification: Classification | str,
        classification_reason: ClassificationReason | str | None = None,
        classification_comment: str | None = None,
    ) -> dict[str, Any]:
        """An analyst closes the incident in the portal (same validation as a PUT)."""
        return self.update_incident_as_analyst(
            workspace, name, status=IncidentStatus.CLOSED, classification=classification,
            classification_reason=classification_reason, classification_comment=classification_comment,
        )

    def merge_incidents(self, workspace: WorkspaceRef | str, source: str, target: str) -> dict[str, Any]:
        """The Defender portal merges ``source`` into ``target`` (a workspace onboarded to Defender).

        As documented (learn.microsoft.com/defender-xdr/alerts-incidents-correlation, "Details of the merge
        process"): the source's alerts (with their entities) and tags move to the target, the source gets the tag
        ``Redirected`` and is closed; closed incidents are never merged. The 2025-09-01 API does not say which
        incident survived. [unverified] the classification Defender closes the source with: ``Undetermined`` here,
        with no comment (the activity log, not the incident, records the merge). Returns the source.
        """
        with self._lock:
            ws = self.workspace(workspace)
            merged, survivor = self._incident(ws, source), self._incident(ws, target)
            if merged.name == survivor.name:
                raise _bad_request("An incident cannot be merged into itself.")
            if IncidentStatus.CLOSED.value in (merged.status, survivor.status):
                raise _bad_request("Closed incidents are not merged.")
            now = self.clock()
            survivor.alerts.extend(merged.alerts)
            survivor.entities.extend(merged.entities)
            known = {name.casefold() for name, _ in survivor.labels}
            survivor.labels.extend(label for label in merged.labels if label[0].casefold() not in known)
            merged.alerts, merged.entities = [], []
            merged.labels = [("Redirected", "AutoAssigned")]
            merged.status = IncidentStatus.CLOSED.value
            self._apply_classification(merged, merged.status, Classification.UNDETERMINED.value, None, None)
            self._touch(survivor, now)
            self._touch(merged, now)
            return self._render(ws, merged)

    def add_comment_as_analyst(
        self, workspace: WorkspaceRef | str, name: str, message: str, *, analyst: str
    ) -> dict[str, Any]:
        """An analyst comments in the portal; ``analyst`` is a directory user's UPN, mail or object id."""
        with self._lock:
            ws = self.workspace(workspace)
            user = self.entra.find_user(ws.tenant_id, analyst)
            if user is None:
                raise KeyError(f"no user {analyst} in tenant {ws.tenant_id}")
            return self.put_comment(ws.ref, name, str(uuid.uuid4()), message, Author.of_user(user))[0]

    def comments(self, workspace: WorkspaceRef | str, name: str) -> list[dict[str, Any]]:
        with self._lock:
            ws = self.workspace(workspace)
            incident = self._incident(ws, name)
            return [_render_comment(ws, incident, c) for c in incident.comments.values()]

    def alerts(self, workspace: WorkspaceRef | str, name: str) -> list[SecurityAlertSeed]:
        """The alert records of an incident (for the Log Analytics emulator's SecurityAlert table)."""
        with self._lock:
            ws = self.workspace(workspace)
            return list(self._incident(ws, name).alerts)

    def entities(self, workspace: WorkspaceRef | str, name: str) -> list[EntitySeed]:
        with self._lock:
            ws = self.workspace(workspace)
            return list(self._incident(ws, name).entities)

    # --- the REST operations -------------------------------------------------------------------------------

    def query_incidents(
        self,
        workspace: WorkspaceRef,
        *,
        where: Expr | None,
        order: OrderBy,
        top: int,
        after: tuple[Value, str] | None,
    ) -> Page:
        """One page of matching incidents in ``order``, strictly after the keyset cursor ``after``.

        Keyset paging on (sort value, name) means an incident inserted while a client pages can never shift
        another one across a page boundary: nothing is skipped or returned twice.
        """
        with self._lock:
            ws = self._existing_workspace(workspace)
            rows: list[tuple[tuple[Value, str], _Incident]] = []
            for incident in ws.incidents.values():
                values = _filter_values(incident)
                if where is None or evaluate(where, values):
                    rows.append(((values[order.field], incident.name.lower()), incident))
            rows.sort(key=lambda row: row[0], reverse=order.descending)
            if after is not None:
                cursor = (after[0], after[1].lower())
                rows = [r for r in rows if (r[0] < cursor if order.descending else r[0] > cursor)]
            page, more = rows[:top], len(rows) > top
            next_cursor = (page[-1][0][0], page[-1][1].name) if more and page else None
            return Page([self._render(ws, incident) for _, incident in page], next_cursor)

    def put_incident(
        self, workspace: WorkspaceRef, name: str, write: IncidentWrite
    ) -> tuple[dict[str, Any], bool]:
        """Create or replace the writable set (§1.6). Returns the resource and whether it was created."""
        with self._lock:
            ws = self._existing_workspace(workspace)
            current = ws.incidents.get(name.lower())
            if current is not None and write.etag is not None and write.etag != current.etag:
                raise SentinelError(
                    409, "Conflict", f"Newer version of resource '{current.name}' exists. Data was not saved"
                )
            # A missing etag is accepted: last writer wins (optional since 2022, AZ-SPECS #13203). An etag on
            # a create is ignored [unverified]; an If-Match header is not honoured either (spec has none).
            for prop, value in (("title", write.title), ("severity", write.severity), ("status", write.status)):
                if value is None or (isinstance(value, str) and not value.strip()):
                    # Exact wording of this 400 is unverified.
                    raise _bad_request(f"Incident property '{prop}' is required.")
            assert write.title is not None and write.severity is not None and write.status is not None
            severity = _enum_value(Severity, write.severity, "severity")
            status = _enum_value(IncidentStatus, write.status, "status")
            owner = self._resolve_owner(ws, write.owner) if write.owner else None
            now = self.clock()
            created = current is None
            if current is None:
                current = _Incident(
                    name=name, number=ws.next_number, title=write.title, severity=severity, status=status,
                    created=now, last_modified=now, etag="", provider_name="Azure Sentinel",
                    provider_incident_id=str(ws.next_number),
                )
            staged = replace(current, labels=list(current.labels))
            self._apply_classification(
                staged, status, write.classification, write.classification_reason, write.classification_comment,
            )
            staged.title, staged.severity, staged.status = write.title, severity, status
            staged.description = write.description
            staged.owner = owner
            staged.labels = _merge_labels(current.labels, write.labels)
            # Every writable property is replaced as sent, so an omitted one is cleared (§1.6). For owner, labels
            # and description that is documented behaviour; for the activity times it is assumed [unverified].
            staged.first_activity, staged.last_activity = write.first_activity, write.last_activity
            if created:
                staged.etag = _new_incident_etag()
                ws.next_number += 1
            else:
                self._touch(staged, now)
            ws.incidents[name.lower()] = staged
            return self._render(ws, staged), created

    def put_comment(
        self, workspace: WorkspaceRef, incident_name: str, comment_id: str, message: str, author: Author
    ) -> tuple[dict[str, Any], bool]:
        """Create (201) or update (200) a comment with a client-chosen id."""
        if not message.strip():
            raise _bad_request("Comment message is required.")
        if len(message) > COMMENT_MAX_LENGTH:
            raise _bad_request(
                f"Comment message length {len(message)} exceeds the maximum of {COMMENT_MAX_LENGTH} characters."
            )
        with self._lock:
            ws = self._existing_workspace(workspace)
            incident = self._incident(ws, incident_name)
            now = self.clock()
            existing = incident.comments.get(comment_id.lower())
            if existing is not None:
                # Whether editing another author's comment is refused is unverified; we allow it.
                existing.message = message
                existing.last_modified = now
                existing.etag = _new_comment_etag()
                return _render_comment(ws, incident, existing), False
            comment = _Comment(comment_id, message, author, now, now, _new_comment_etag())
            incident.comments[comment_id.lower()] = comment
            # A new comment bumps commentsCount and, we assume, the incident's etag and lastModifiedTimeUtc
            # (reference §1.7: very likely, unverified) — clients must re-GET before the next PUT anyway.
            self._touch(incident, now)
            return _render_comment(ws, incident, comment), True

    def get_comment(self, workspace: WorkspaceRef, incident_name: str, comment_id: str) -> dict[str, Any]:
        with self._lock:
            ws = self._existing_workspace(workspace)
            incident = self._incident(ws, incident_name)
            comment = incident.comments.get(comment_id.lower())
            if comment is None:
                raise SentinelError(404, "NotFound", f"Comment '{comment_id}' was not found.")
            return _render_comment(ws, incident, comment)

    def query_comments(
        self, workspace: WorkspaceRef, incident_name: str, *, top: int, after: tuple[Value, str] | None
    ) -> Page:
        """Comments oldest first, keyset-paged on (createdTimeUtc, name)."""
        with self._lock:
            ws = self._existing_workspace(workspace)
            incident = self._incident(ws, incident_name)
            rows = sorted(
                (((c.created, c.name.lower()), c) for c in incident.comments.values()), key=lambda r: r[0]
            )
            if after is not None:
                cursor = (after[0], after[1].lower())
                rows = [r for r in rows if r[0] > cursor]
            page, more = rows[:top], len(rows) > top
            next_cursor: tuple[Value, str] | None = (page[-1][1].created, page[-1][1].name) if more else None
            return Page([_render_comment(ws, incident, c) for _, c in page], next_cursor)

    def alert_resources(self, workspace: WorkspaceRef, incident_name: str) -> list[dict[str, Any]]:
        with self._lock:
            ws = self._existing_workspace(workspace)
            return [_render_alert(ws, a) for a in self._incident(ws, incident_name).alerts]

    def entity_resources(self, workspace: WorkspaceRef, incident_name: str) -> dict[str, Any]:
        with self._lock:
            ws = self._existing_workspace(workspace)
            entities = self._incident(ws, incident_name).entities
            counts: dict[str, int] = {}
            for entity in entities:
                counts[entity.kind] = counts.get(entity.kind, 0) + 1
            return {
                "entities": [_render_entity(ws, e) for e in entities],
                "metaData": [{"entityKind": kind, "count": n} for kind, n in counts.items()],
            }

    # --- internals -----------------------------------------------------------------------------------------

    def _existing_workspace(self, ref: WorkspaceRef | str) -> Workspace:
        ws = self.find_workspace(ref)
        if ws is None:
            r = _ref(ref)
            raise SentinelError(
                404, "ResourceNotFound",
                f"The Resource 'Microsoft.OperationalInsights/workspaces/{r.name}' under resource group "
                f"'{r.resource_group}' was not found. For more details please go to "
                "https://aka.ms/ARMResourceNotFoundFix",
            )
        return ws

    @staticmethod
    def _incident(ws: Workspace, name: str) -> _Incident:
        incident = ws.incidents.get(name.lower())
        if incident is None:
            # Code as listed in §1.10; exact message unverified.
            raise SentinelError(404, "NotFound", f"Incident '{name}' was not found.")
        return incident

    def _touch(self, incident: _Incident, now: datetime) -> None:
        # lastModifiedTimeUtc strictly increases even under a frozen test clock.
        incident.last_modified = max(now, incident.last_modified + timedelta(microseconds=1))
        incident.etag = _new_incident_etag()

    def _resolve_owner(self, ws: Workspace, owner: OwnerRef) -> _Owner | None:
        reference = owner.reference
        if reference is None:
            return None  # {} unassigns (XSOAR sends it)
        user = self.entra.find_user(ws.tenant_id, reference)
        if user is None:
            # What the service does with an unknown owner is unverified; refusing catches mapping bugs.
            raise _bad_request(f"Owner '{reference}' was not found in the directory of tenant '{ws.tenant_id}'.")
        return _Owner(user.object_id, user.user_principal_name, user.display_name, user.mail)

    @staticmethod
    def _apply_classification(
        incident: _Incident,
        status: str,
        classification: str | None,
        reason: str | None,
        comment: str | None,
    ) -> None:
        parsed = None if classification is None else _enum_value(Classification, classification, "classification")
        parsed_reason = None if reason is None else _enum_value(ClassificationReason, reason, "classificationReason")
        if status == IncidentStatus.CLOSED and parsed is None:
            # Closing without classification fails (XSOAR, demisto PRs); the exact message is unverified.
            raise _bad_request("Classification is required when closing an incident.")
        if parsed is not None:
            kind = Classification(parsed)
            why = None if parsed_reason is None else ClassificationReason(parsed_reason)
            if kind is not Classification.UNDETERMINED and why is None:
                raise _bad_request(f"classification '{kind.value}' must have classificationReason.")
            if why not in _VALID_REASONS[kind]:
                # Message unverified; the valid pairs are the portal's.
                raise _bad_request(
                    f"classificationReason '{why.value if why else None}' is not valid for classification "
                    f"'{kind.value}'."
                )
        incident.classification = parsed
        incident.classification_reason = parsed_reason
        incident.classification_comment = comment

    def _render(self, ws: Workspace, incident: _Incident) -> dict[str, Any]:
        resource_id = f"{ws.ref.resource_id}/providers/Microsoft.SecurityInsights/incidents/{incident.name}"
        tactics = _unique([*(t for a in incident.alerts for t in a.tactics), *incident.extra_tactics])
        products = _unique([*(a.product_name for a in incident.alerts), *incident.extra_product_names])
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
            "owner": _render_owner(incident.owner),
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


# --- helpers ---------------------------------------------------------------------------------------------------


def _ref(ref: WorkspaceRef | str) -> WorkspaceRef:
    return ref if isinstance(ref, WorkspaceRef) else WorkspaceRef.parse(ref)


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def _enum_value(enum: type[StrEnum], value: str, prop: str) -> str:
    try:
        return enum(value).value
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise _bad_request(f"The value '{value}' is not valid for '{prop}'. Allowed values: {allowed}.") from None


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _merge_labels(current: list[tuple[str, str]], sent: Sequence[str]) -> list[tuple[str, str]]:
    """Labels become exactly what was sent; a label that was AutoAssigned keeps that type."""
    auto = {name for name, kind in current if kind == "AutoAssigned"}
    return [(name, "AutoAssigned" if name in auto else "User") for name in _unique(sent)]


def _owner_ref_of(owner: _Owner | None) -> OwnerRef | None:
    return None if owner is None else OwnerRef(object_id=owner.object_id)


def _render_owner(owner: _Owner | None) -> dict[str, Any]:
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


def _filter_values(incident: _Incident) -> dict[str, Value]:
    return {
        "properties/createdTimeUtc": incident.created,
        "properties/lastModifiedTimeUtc": incident.last_modified,
        "properties/status": incident.status,
        "properties/severity": incident.severity,
        "properties/incidentNumber": incident.number,
        "properties/title": incident.title,
    }


def _render_comment(ws: Workspace, incident: _Incident, comment: _Comment) -> dict[str, Any]:
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


def _render_alert(ws: Workspace, alert: SecurityAlertSeed) -> dict[str, Any]:
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


def _render_entity(ws: Workspace, entity: EntitySeed) -> dict[str, Any]:
    return {
        "id": f"{ws.ref.resource_id}/providers/Microsoft.SecurityInsights/Entities/{entity.entity_id}",
        "name": entity.entity_id,
        "type": ENTITY_TYPE,
        "kind": entity.kind,
        "properties": dict(entity.properties),
    }
