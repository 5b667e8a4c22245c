"""State of the Microsoft Graph security emulator: Defender XDR incidents, alerts_v2, comments, app permissions.

No HTTP here (``graph.py`` is the wire format). The model owns the service's *rules*: which PATCH properties
exist and which values they take, evolvable enums, incident merges (``redirected`` + ``redirectIncidentId``), the
"most recent first" order of listings, the per-app-per-tenant request budget, and which application permission
each operation needs. Users are not kept here: Graph's ``/users`` reads the Entra emulator's directory.

Facts come from shared/reference/microsoft-apis.md §3 and shared/specs/graph/; where a behaviour is not
documented there, a comment says ``[unverified]`` and the emulator takes the strict side, so a client that relies
on leniency fails here rather than in production.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from sentinel_signl4.domain.graph_vocab import (
    EVOLVABLE,
    GraphAlertStatus,
    GraphClassification,
    GraphDetermination,
    GraphIncidentStatus,
    GraphSeverity,
    service_source_display_name,
)
from sentinel_signl4.emulators.odata import And, Comparison, Expr, FieldType, Not, Or, evaluate

__all__ = [
    "ALERT_FIELDS",
    "DEFAULT_THROTTLE_LIMIT",
    "DEFAULT_THROTTLE_WINDOW",
    "ENUM_VALUES",
    "INCIDENT_FIELDS",
    "AlertSeed",
    "GraphError",
    "GraphModel",
    "Operation",
    "Permission",
    "ThrottleDecision",
    "format_graph_time",
]

DEFAULT_THROTTLE_LIMIT: Final = 150  # requests per minute per app per tenant (reference §3.4)
DEFAULT_THROTTLE_WINDOW: Final = 60.0
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

#: Every enum the emulator validates and renders, by its name in security-enums.json, values in spec order.
ENUM_VALUES: Final[Mapping[str, tuple[str, ...]]] = {
    "incidentStatus": tuple(GraphIncidentStatus),
    "alertStatus": tuple(GraphAlertStatus),
    "alertSeverity": tuple(GraphSeverity),
    "alertClassification": tuple(GraphClassification),
    "alertDetermination": tuple(GraphDetermination),
    "serviceSource": (
        "unknown", "microsoftDefenderForEndpoint", "microsoftDefenderForIdentity", "microsoftDefenderForCloudApps",
        "microsoftDefenderForOffice365", "microsoft365Defender", "azureAdIdentityProtection", "microsoftAppGovernance",
        "dataLossPrevention", "unknownFutureValue", "microsoftDefenderForCloud", "microsoftSentinel",
        "microsoftInsiderRiskManagement", "microsoftThreatIntelligence",
    ),
    "detectionSource": (
        "unknown", "microsoftDefenderForEndpoint", "antivirus", "smartScreen", "customTi",
        "microsoftDefenderForOffice365", "automatedInvestigation", "microsoftThreatExperts", "customDetection",
        "microsoftDefenderForIdentity", "cloudAppSecurity", "microsoft365Defender", "azureAdIdentityProtection",
        "manual", "microsoftDataLossPrevention", "appGovernancePolicy", "appGovernanceDetection",
        "unknownFutureValue", "microsoftDefenderForCloud", "nrtAlerts", "scheduledAlerts",
        "microsoftDefenderThreatIntelligenceAnalytics", "builtInMl", "microsoftSentinel",
    ),
}

#: Which enum each filterable / writable property uses, per resource.
_INCIDENT_ENUM_PROPS: Final[Mapping[str, str]] = {
    "status": "incidentStatus", "severity": "alertSeverity",
    "classification": "alertClassification", "determination": "alertDetermination",
}
_ALERT_ENUM_PROPS: Final[Mapping[str, str]] = {
    "status": "alertStatus", "severity": "alertSeverity", "classification": "alertClassification",
    "determination": "alertDetermination", "serviceSource": "serviceSource",
}

#: Properties a PATCH may set (reference §3.1/§3.2). Anything else is refused with 400 [unverified: Graph may
#: ignore read-only properties silently; refusing catches clients that send whole resources back].
_INCIDENT_WRITABLE: Final = frozenset({"assignedTo", "classification", "determination", "status", "customTags"})
_ALERT_WRITABLE: Final = frozenset({"assignedTo", "classification", "determination", "status"})

# unknown < informational < … < high; unknownFutureValue ranks nowhere (it never raises an incident's severity).
_SEVERITY_RANK: Final = {"unknown": 0, "informational": 1, "low": 2, "medium": 3, "high": 4}


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


def _bad_request(message: str) -> GraphError:
    return GraphError(400, "BadRequest", message)


@dataclass(frozen=True, slots=True)
class ThrottleDecision:
    allowed: bool
    retry_after: int  # whole seconds until the oldest counted request leaves the window; 0 when allowed


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
class _Comment:
    text: str
    author: str
    created: datetime


@dataclass(slots=True)
class _Alert:
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
    comments: list[_Comment] = field(default_factory=list)


@dataclass(slots=True)
class _Incident:
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
    comments: list[_Comment] = field(default_factory=list)
    alert_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Tenant:
    tenant_id: str
    incidents: dict[str, _Incident] = field(default_factory=dict)
    alerts: dict[str, _Alert] = field(default_factory=dict)


def format_graph_time(moment: datetime) -> str:
    """Graph's UTC form: ``2021-08-13T08:43:35.5533333Z`` (seven fractional digits when there is a fraction)."""
    moment = moment.astimezone(UTC)
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{moment.microsecond:06d}0Z" if moment.microsecond else f"{base}Z"


class _SlidingWindow:
    """At most ``limit`` requests in any ``window`` seconds per key. Graph documents "150 requests per minute";
    whether its window slides or is fixed is unverified — sliding is the stricter reading."""

    def __init__(self, limit: int, window: float, monotonic: Callable[[], float]) -> None:
        self.limit = limit
        self.window = window
        self._monotonic = monotonic
        self._seen: dict[tuple[str, str], deque[float]] = {}

    def take(self, key: tuple[str, str]) -> ThrottleDecision:
        now = self._monotonic()
        seen = self._seen.setdefault(key, deque())
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        if len(seen) >= self.limit:
            wait = seen[len(seen) - self.limit] + self.window - now
            return ThrottleDecision(False, max(1, math.ceil(wait)))
        seen.append(now)
        return ThrottleDecision(True, 0)


class GraphModel:
    """Every tenant's Defender incidents and alerts, app permissions and request budgets. Thread-safe."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
        throttle_limit: int = DEFAULT_THROTTLE_LIMIT,
        throttle_window: float = DEFAULT_THROTTLE_WINDOW,
        first_incident_id: int = 1001,
    ) -> None:
        self.clock = clock
        self._monotonic = monotonic
        self._throttle = _SlidingWindow(throttle_limit, throttle_window, monotonic)
        self._defaults = (throttle_limit, throttle_window, first_incident_id)
        self._tenants: dict[str, _Tenant] = {}
        self._grants: dict[str, set[Permission]] = {}
        self._next_id = first_incident_id
        self._lock = threading.RLock()

    # --- setup -----------------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every incident, alert, grant and request count; back to the construction-time budget."""
        with self._lock:
            limit, window, first_id = self._defaults
            self._tenants.clear()
            self._grants.clear()
            self._throttle = _SlidingWindow(limit, window, self._monotonic)
            self._next_id = first_id

    def grant(self, client_id: str, permissions: Iterable[Permission | str]) -> None:
        """Consent application permissions for ``client_id`` (what an admin does in the portal)."""
        granted = {Permission(p) for p in permissions}
        with self._lock:
            self._grants.setdefault(client_id.lower(), set()).update(granted)

    def revoke(self, client_id: str, permissions: Iterable[Permission | str] | None = None) -> None:
        """Remove some (or all) of an app's permissions."""
        with self._lock:
            if permissions is None:
                self._grants.pop(client_id.lower(), None)
            else:
                self._grants.get(client_id.lower(), set()).difference_update(Permission(p) for p in permissions)

    def permissions_of(self, client_id: str) -> frozenset[Permission]:
        with self._lock:
            return frozenset(self._grants.get(client_id.lower(), set()))

    def authorize(self, client_id: str, operation: Operation) -> None:
        """Raise 403 ``Authorization_RequestDenied`` unless the app holds a permission ``operation`` accepts.

        The message names the accepted permissions, so ``check`` can say what to grant. Graph's security
        endpoints are reported to answer with this code and a similar wording [unverified].
        """
        granted = self.permissions_of(client_id)
        if not granted.intersection(operation.accepted):
            needed = ", ".join(p.value for p in operation.accepted)
            held = ", ".join(sorted(p.value for p in granted)) or "none"
            raise GraphError(
                403, "Authorization_RequestDenied",
                f"Insufficient privileges to complete the operation. Requires one of the application permissions "
                f"[{needed}]; the app has [{held}].",
            )

    @property
    def throttle_limit(self) -> int:
        """Requests per window per (app, tenant) in force."""
        return self._throttle.limit

    @property
    def throttle_window(self) -> float:
        return self._throttle.window

    def configure_throttle(self, limit: int, window: float = DEFAULT_THROTTLE_WINDOW) -> None:
        """Change the request budget (tests use a small one); counts start over."""
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        with self._lock:
            self._throttle = _SlidingWindow(limit, window, self._monotonic)

    def take_request(self, client_id: str, tenant_id: str) -> ThrottleDecision:
        """Count one security request of ``client_id`` in ``tenant_id`` against the per-minute budget."""
        with self._lock:
            return self._throttle.take((client_id.lower(), tenant_id.lower()))

    # --- scripted world (seed, control plane, tests) ---------------------------------------------------------

    def create_incident(
        self,
        tenant_id: str,
        *,
        display_name: str,
        severity: str | None = None,
        status: str = "active",
        created: datetime | None = None,
        alerts: Sequence[AlertSeed] = (),
        assigned_to: str | None = None,
        classification: str = "unknown",
        determination: str = "unknown",
        custom_tags: Iterable[str] = (),
        system_tags: Iterable[str] = (),
        description: str | None = None,
        summary: str | None = None,
        priority_score: int | None = None,
        incident_id: str | None = None,
    ) -> dict[str, Any]:
        """Create an incident the way Defender's correlation does, with its alerts; bypasses permissions.

        ``severity`` defaults to the highest alert severity (``medium`` without alerts). Returns the incident as
        a client with ``Prefer: include-unknown-enum-members`` and ``$expand=alerts`` would see it.
        """
        with self._lock:
            tenant = self._tenant(tenant_id)
            when = created or self.clock()
            new_id = incident_id or self._allocate_id()
            if new_id in tenant.incidents:
                raise ValueError(f"incident {new_id} exists")
            chosen = severity or _highest([a.severity for a in alerts]) or "medium"
            incident = _Incident(
                id=new_id, tenant_id=tenant.tenant_id, display_name=display_name,
                severity=_enum_value("alertSeverity", chosen, "severity"),
                status=_enum_value("incidentStatus", status, "status"),
                created=when, last_update=when, description=description, summary=summary,
                assigned_to=assigned_to,
                classification=_enum_value("alertClassification", classification, "classification"),
                determination=_enum_value("alertDetermination", determination, "determination"),
                custom_tags=list(custom_tags), system_tags=list(system_tags), priority_score=priority_score,
            )
            tenant.incidents[new_id] = incident
            for seed in alerts:
                self._attach_alert(tenant, incident, seed, when)
            return self._render_incident(tenant, incident, expand_alerts=True, include_unknown=True)

    def add_alert(self, tenant_id: str, seed: AlertSeed, *, incident_id: str | None = None) -> dict[str, Any]:
        """Raise an alert into ``incident_id`` (its severity rises to the alert's if higher), or into a new
        incident named after the alert when ``incident_id`` is omitted. Returns the alert."""
        with self._lock:
            tenant = self._tenant(tenant_id)
            now = self.clock()
            if incident_id is None:
                created = self.create_incident(tenant.tenant_id, display_name=seed.title, alerts=[seed],
                                               created=seed.created)
                alert_id = created["alerts"][0]["id"]
                return self._render_alert(tenant.alerts[alert_id], include_unknown=True)
            incident = self._incident(tenant, incident_id)
            alert = self._attach_alert(tenant, incident, seed, now)
            incident.severity = _highest([incident.severity, alert.severity]) or incident.severity
            self._touch(incident, now)
            return self._render_alert(alert, include_unknown=True)

    def merge_incidents(self, tenant_id: str, source_id: str, target_id: str) -> dict[str, Any]:
        """Defender correlation merges ``source`` into ``target`` (peers-and-user-needs §0, §3.7).

        The source keeps existing with status ``redirected`` and ``redirectIncidentId`` = target; its alerts and
        its tags move to the target (defender-xdr/alerts-incidents-correlation.md, "Incident contents"), whose
        severity rises to the highest of both. Returns the target (expanded).
        """
        with self._lock:
            tenant = self._tenant(tenant_id)
            source, target = self._incident(tenant, source_id), self._incident(tenant, target_id)
            if source.id == target.id:
                raise _bad_request("An incident cannot be merged into itself.")
            for incident in (source, target):
                if incident.status == GraphIncidentStatus.REDIRECTED:
                    raise _bad_request(f"Incident {incident.id} was already redirected to "
                                       f"{incident.redirect_incident_id}.")
            now = self.clock()
            for alert_id in source.alert_ids:
                alert = tenant.alerts[alert_id]
                alert.incident_id = target.id
                alert.last_update = _after(now, alert.last_update)
                target.alert_ids.append(alert_id)
            source.alert_ids = []
            known = {tag.casefold() for tag in target.custom_tags}
            target.custom_tags.extend(tag for tag in source.custom_tags if tag.casefold() not in known)
            source.custom_tags = []
            target.severity = _highest([target.severity, source.severity]) or target.severity
            source.status = GraphIncidentStatus.REDIRECTED.value
            source.redirect_incident_id = target.id
            self._touch(source, now)
            self._touch(target, now)
            return self._render_incident(tenant, target, expand_alerts=True, include_unknown=True)

    def incidents(self, tenant_id: str) -> list[dict[str, Any]]:
        """Every incident of the tenant, expanded, all enum values as stored (control plane, tests)."""
        with self._lock:
            tenant = self._tenant(tenant_id)
            return [self._render_incident(tenant, i, expand_alerts=True, include_unknown=True)
                    for i in _newest_first(tenant.incidents.values())]

    def tenant_ids(self) -> list[str]:
        with self._lock:
            return list(self._tenants)

    # --- the REST operations -----------------------------------------------------------------------------------

    def query_incidents(
        self, tenant_id: str, *, where: Expr | None, skip: int, top: int, expand_alerts: bool, include_unknown: bool,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of matching incidents, most recent first (as documented), and the number of matches.

        Offset paging (``$skip``) is what Graph offers here: an incident created while a client pages shifts the
        rest by one, so a client may see an item twice (never miss one because of an insert).
        """
        with self._lock:
            tenant = self._tenant(tenant_id)
            if where is not None:
                _check_literals(where, _INCIDENT_ENUM_PROPS, include_unknown)
            matches = [i for i in _newest_first(tenant.incidents.values())
                       if where is None or evaluate(where, _incident_values(i))]
            page = matches[skip:skip + top]
            rendered = [self._render_incident(tenant, i, expand_alerts=expand_alerts, include_unknown=include_unknown)
                        for i in page]
            return rendered, len(matches)

    def get_incident(
        self, tenant_id: str, incident_id: str, *, expand_alerts: bool, include_unknown: bool
    ) -> dict[str, Any]:
        """One incident. A redirected (merged) incident is still returned, with status ``redirected``."""
        with self._lock:
            tenant = self._tenant(tenant_id)
            return self._render_incident(tenant, self._incident(tenant, incident_id), expand_alerts=expand_alerts,
                                         include_unknown=include_unknown)

    def update_incident(
        self, tenant_id: str, incident_id: str, changes: Mapping[str, Any], *, actor: str, include_unknown: bool,
    ) -> dict[str, Any]:
        """PATCH: validate every property first, then apply all of them (nothing is half-applied)."""
        with self._lock:
            tenant = self._tenant(tenant_id)
            incident = self._incident(tenant, incident_id)
            if incident.status == GraphIncidentStatus.REDIRECTED:
                # What Graph does with a write to a merged incident is unverified; refusing makes a client follow
                # redirectIncidentId instead of writing where nobody looks.
                raise _bad_request(f"Incident {incident.id} was redirected to incident "
                                   f"{incident.redirect_incident_id}; update that incident instead.")
            values = _validated_patch(changes, _INCIDENT_WRITABLE, _INCIDENT_ENUM_PROPS, include_unknown)
            if values.get("status") == GraphIncidentStatus.REDIRECTED:
                raise _bad_request("Status 'redirected' is set by Microsoft Defender when it merges incidents.")
            for key, value in values.items():
                match key:
                    case "assignedTo":
                        incident.assigned_to = value
                    case "classification":
                        incident.classification = value
                    case "determination":
                        incident.determination = value
                    case "status":
                        incident.status = value
                    case "customTags":
                        incident.custom_tags = list(value)
            incident.last_modified_by = actor
            self._touch(incident, self.clock())
            return self._render_incident(tenant, incident, expand_alerts=False, include_unknown=include_unknown)

    def add_incident_comment(self, tenant_id: str, incident_id: str, text: str, *, author: str) -> list[dict[str, Any]]:
        """Append a comment; returns the full comment list (what the comments action answers)."""
        with self._lock:
            tenant = self._tenant(tenant_id)
            incident = self._incident(tenant, incident_id)
            now = self.clock()
            incident.comments.append(_Comment(_comment_text(text), author, now))
            self._touch(incident, now)
            return [_render_comment(c) for c in incident.comments]

    def query_alerts(
        self, tenant_id: str, *, where: Expr | None, skip: int, top: int, include_unknown: bool,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of matching alerts, most recent first, and the number of matches."""
        with self._lock:
            tenant = self._tenant(tenant_id)
            if where is not None:
                _check_literals(where, _ALERT_ENUM_PROPS, include_unknown)
            matches = [a for a in sorted(tenant.alerts.values(), key=lambda a: (a.created, a.id), reverse=True)
                       if where is None or evaluate(where, _alert_values(a))]
            return [self._render_alert(a, include_unknown=include_unknown) for a in matches[skip:skip + top]], len(
                matches)

    def get_alert(self, tenant_id: str, alert_id: str, *, include_unknown: bool) -> dict[str, Any]:
        with self._lock:
            return self._render_alert(self._alert(self._tenant(tenant_id), alert_id), include_unknown=include_unknown)

    def update_alert(
        self, tenant_id: str, alert_id: str, changes: Mapping[str, Any], *, include_unknown: bool,
    ) -> dict[str, Any]:
        with self._lock:
            tenant = self._tenant(tenant_id)
            alert = self._alert(tenant, alert_id)
            values = _validated_patch(changes, _ALERT_WRITABLE, _ALERT_ENUM_PROPS, include_unknown)
            now = self.clock()
            for key, value in values.items():
                match key:
                    case "assignedTo":
                        alert.assigned_to = value
                    case "classification":
                        alert.classification = value
                    case "determination":
                        alert.determination = value
                    case "status":
                        alert.status = value
                        alert.resolved = now if value == GraphAlertStatus.RESOLVED else None
            alert.last_update = _after(now, alert.last_update)
            return self._render_alert(alert, include_unknown=include_unknown)

    def add_alert_comment(self, tenant_id: str, alert_id: str, text: str, *, author: str) -> list[dict[str, Any]]:
        with self._lock:
            alert = self._alert(self._tenant(tenant_id), alert_id)
            now = self.clock()
            alert.comments.append(_Comment(_comment_text(text), author, now))
            alert.last_update = _after(now, alert.last_update)
            return [_render_comment(c) for c in alert.comments]

    # --- internals -------------------------------------------------------------------------------------------

    def _tenant(self, tenant_id: str) -> _Tenant:
        key = tenant_id.lower()
        tenant = self._tenants.get(key)
        if tenant is None:
            # A tenant exists for Graph as soon as anyone looks: an empty Defender workspace lists nothing.
            tenant = self._tenants[key] = _Tenant(key)
        return tenant

    def _allocate_id(self) -> str:
        allocated = self._next_id
        self._next_id += 1
        return str(allocated)

    @staticmethod
    def _incident(tenant: _Tenant, incident_id: str) -> _Incident:
        incident = tenant.incidents.get(incident_id)
        if incident is None:
            # Code and wording for an unknown incident are unverified.
            raise GraphError(404, "NotFound", f"Incident {incident_id} was not found.")
        return incident

    @staticmethod
    def _alert(tenant: _Tenant, alert_id: str) -> _Alert:
        alert = tenant.alerts.get(alert_id)
        if alert is None:
            raise GraphError(404, "NotFound", f"Alert {alert_id} was not found.")
        return alert

    def _attach_alert(self, tenant: _Tenant, incident: _Incident, seed: AlertSeed, now: datetime) -> _Alert:
        alert_id = seed.alert_id or _new_alert_id()
        if alert_id in tenant.alerts:
            raise ValueError(f"alert {alert_id} exists")
        created = seed.created or now
        alert = _Alert(
            id=alert_id, tenant_id=tenant.tenant_id, incident_id=incident.id, title=seed.title,
            severity=_enum_value("alertSeverity", seed.severity, "severity"),
            status=_enum_value("alertStatus", seed.status, "status"),
            service_source=_enum_value("serviceSource", seed.service_source, "serviceSource"),
            detection_source=_enum_value("detectionSource", seed.detection_source, "detectionSource"),
            product_name=seed.product_name or service_source_display_name(seed.service_source),
            category=seed.category, mitre_techniques=list(seed.mitre_techniques), description=seed.description,
            created=created, last_update=created, first_activity=created, last_activity=created,
            detector_id=secrets.token_hex(16), evidence=[dict(e) for e in seed.evidence],
            actor_display_name=seed.actor_display_name, threat_display_name=seed.threat_display_name,
            threat_family_name=seed.threat_family_name, recommended_actions=seed.recommended_actions,
        )
        tenant.alerts[alert_id] = alert
        incident.alert_ids.append(alert_id)
        return alert

    def _touch(self, incident: _Incident, now: datetime) -> None:
        incident.last_update = _after(now, incident.last_update)

    def _render_incident(
        self, tenant: _Tenant, incident: _Incident, *, expand_alerts: bool, include_unknown: bool
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "@odata.type": "#microsoft.graph.security.incident",
            "id": incident.id,
            "tenantId": incident.tenant_id,
            "status": _enum_out("incidentStatus", incident.status, include_unknown),
            "incidentWebUrl": f"{PORTAL}/incidents/{incident.id}?tid={incident.tenant_id}",
            "redirectIncidentId": incident.redirect_incident_id,
            "displayName": incident.display_name,
            "createdDateTime": format_graph_time(incident.created),
            "lastUpdateDateTime": format_graph_time(incident.last_update),
            "assignedTo": incident.assigned_to,
            "classification": _enum_out("alertClassification", incident.classification, include_unknown),
            "determination": _enum_out("alertDetermination", incident.determination, include_unknown),
            "severity": _enum_out("alertSeverity", incident.severity, include_unknown),
            "customTags": list(incident.custom_tags),
            "systemTags": list(incident.system_tags),
            "comments": [_render_comment(c) for c in incident.comments],
            "description": incident.description,
            "summary": incident.summary,
            "lastModifiedBy": incident.last_modified_by,
            "resolvingComment": incident.resolving_comment,
            "priorityScore": incident.priority_score,
        }
        if expand_alerts:
            body["alerts"] = [self._render_alert(tenant.alerts[a], include_unknown=include_unknown)
                              for a in incident.alert_ids]
        return body

    def _render_alert(self, alert: _Alert, *, include_unknown: bool) -> dict[str, Any]:
        return {
            "@odata.type": "#microsoft.graph.security.alert",
            "id": alert.id,
            "providerAlertId": alert.id,
            "incidentId": alert.incident_id,
            "status": _enum_out("alertStatus", alert.status, include_unknown),
            "severity": _enum_out("alertSeverity", alert.severity, include_unknown),
            "classification": _enum_out("alertClassification", alert.classification, include_unknown),
            "determination": _enum_out("alertDetermination", alert.determination, include_unknown),
            "serviceSource": _enum_out("serviceSource", alert.service_source, include_unknown),
            "detectionSource": _enum_out("detectionSource", alert.detection_source, include_unknown),
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
            "comments": [_render_comment(c) for c in alert.comments],
            "evidence": [dict(e) for e in alert.evidence],
            "systemTags": [],
        }


# --- helpers -----------------------------------------------------------------------------------------------------


def _new_alert_id() -> str:
    # The shape Defender uses: "da" + 18 digits + "_" + a signed 32-bit number (docs example).
    return f"da{secrets.randbelow(10**18):018d}_{secrets.randbelow(2**32) - 2**31}"


def _after(now: datetime, previous: datetime) -> datetime:
    # lastUpdateDateTime strictly increases even under a frozen test clock, so "modified since" never misses.
    return max(now, previous + timedelta(microseconds=1))


def _newest_first(incidents: Iterable[_Incident]) -> list[_Incident]:
    return sorted(incidents, key=lambda i: (i.created, int(i.id) if i.id.isdigit() else 0), reverse=True)


def _highest(severities: Iterable[str]) -> str | None:
    known = [s for s in severities if s in _SEVERITY_RANK]
    return max(known, key=lambda s: _SEVERITY_RANK[s]) if known else None


def _is_evolvable(enum: str, value: str) -> bool:
    return value in EVOLVABLE.get(enum, frozenset())


def _enum_value(enum: str, value: str, prop: str) -> str:
    if value not in ENUM_VALUES[enum]:
        allowed = ", ".join(ENUM_VALUES[enum])
        raise _bad_request(f"Invalid value '{value}' for property '{prop}'. Allowed values: {allowed}.")
    return value


def _enum_out(enum: str, value: str, include_unknown: bool) -> str:
    """Evolvable members are sent as ``unknownFutureValue`` unless the client opted in (reference §3.1)."""
    return value if include_unknown or not _is_evolvable(enum, value) else "unknownFutureValue"


def _check_enum_in(enum: str, value: str, prop: str, include_unknown: bool) -> None:
    _enum_value(enum, value, prop)
    if _is_evolvable(enum, value) and not include_unknown:
        # A client that did not opt in cannot know this member; Graph's answer to it using one is unverified.
        raise _bad_request(f"The value '{value}' of property '{prop}' requires the request header "
                           "'Prefer: include-unknown-enum-members'.")


def _check_literals(expr: Expr, enum_props: Mapping[str, str], include_unknown: bool) -> None:
    if isinstance(expr, And | Or):
        _check_literals(expr.left, enum_props, include_unknown)
        _check_literals(expr.right, enum_props, include_unknown)
    elif isinstance(expr, Not):
        _check_literals(expr.operand, enum_props, include_unknown)
    elif isinstance(expr, Comparison) and expr.field in enum_props and isinstance(expr.value, str):
        _check_enum_in(enum_props[expr.field], expr.value, expr.field, include_unknown)


def _validated_patch(
    changes: Mapping[str, Any], writable: frozenset[str], enum_props: Mapping[str, str], include_unknown: bool,
) -> dict[str, Any]:
    if not changes:
        raise _bad_request("The request body must contain at least one property to update.")
    values: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "@odata.type":
            continue
        if key not in writable:
            raise _bad_request(f"Property '{key}' cannot be updated. Updatable: {', '.join(sorted(writable))}.")
        if key == "assignedTo":
            if value is not None and not isinstance(value, str):
                raise _bad_request("Property 'assignedTo' must be a string or null.")
            values[key] = value or None
        elif key == "customTags":
            if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
                raise _bad_request("Property 'customTags' must be an array of strings.")
            values[key] = list(dict.fromkeys(value))  # duplicates collapse, order kept
        else:
            if not isinstance(value, str):
                raise _bad_request(f"Property '{key}' must be a string.")
            _check_enum_in(enum_props[key], value, key, include_unknown)
            values[key] = value
    return values


def _comment_text(text: str) -> str:
    if not text.strip():
        # Graph's answer to an empty comment is unverified; refusing it catches a client bug.
        raise _bad_request("Property 'comment' must not be empty.")
    return text


def _render_comment(comment: _Comment) -> dict[str, Any]:
    # The shape the comments action returns and the schema defines; the docs' incident example shows
    # createdBy/createdTime instead (reference §3.2: inconsistent docs).
    return {"comment": comment.text, "createdByDisplayName": comment.author,
            "createdDateTime": format_graph_time(comment.created)}


def _incident_values(incident: _Incident) -> dict[str, object]:
    return {
        "assignedTo": incident.assigned_to, "classification": incident.classification,
        "createdDateTime": incident.created, "determination": incident.determination,
        "lastUpdateDateTime": incident.last_update, "severity": incident.severity, "status": incident.status,
    }


def _alert_values(alert: _Alert) -> dict[str, object]:
    return {
        "assignedTo": alert.assigned_to, "classification": alert.classification, "createdDateTime": alert.created,
        "determination": alert.determination, "lastUpdateDateTime": alert.last_update, "severity": alert.severity,
        "status": alert.status, "serviceSource": alert.service_source,
    }
