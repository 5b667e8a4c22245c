"""State of the Microsoft Graph security emulator: Defender XDR incidents, alerts_v2, comments, app permissions.

No HTTP here (``graph.py`` is the wire format). The model owns the service's *rules*: which PATCH properties
exist and which values they take, evolvable enums, incident merges (``redirected`` + ``redirectIncidentId``), the
"most recent first" order of listings, the per-app-per-tenant request budget, and which application permission
each operation needs. Users are not kept here: Graph's ``/users`` reads the Entra emulator's directory.

Facts come from shared/reference/microsoft-apis.md §3 and shared/specs/graph/; where a behaviour is not
documented there, a comment says ``[unverified]`` and the emulator takes the strict side, so a client that relies
on leniency fails here rather than in production.

The parts live in sibling modules and are re-exported here: the vocabulary and stored records (``graph.entities``),
enum handling (``graph.enums``), PATCH and comment rules (``graph.rules``), the request budget
(``graph.throttle``) and the JSON rendering (``graph.render``).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sentinel_signl4_emulators.common.odata import Expr, evaluate
from sentinel_signl4_emulators.graph.entities import (
    AlertSeed,
    GraphError,
    Operation,
    Permission,
    StoredAlert,
    StoredComment,
    StoredIncident,
    StoredTenant,
    bad_request,
)
from sentinel_signl4_emulators.graph.enums import (
    ALERT_ENUM_PROPS,
    ENUM_VALUES,
    INCIDENT_ENUM_PROPS,
    check_literals,
    enum_value,
)
from sentinel_signl4_emulators.graph.render import (
    ALERT_FIELDS,
    INCIDENT_FIELDS,
    alert_values,
    format_graph_time,
    incident_values,
    render_alert,
    render_comment,
    render_incident,
)
from sentinel_signl4_emulators.graph.rules import (
    ALERT_WRITABLE,
    INCIDENT_WRITABLE,
    comment_text,
    highest,
    validated_patch,
)
from sentinel_signl4_emulators.graph.throttle import (
    DEFAULT_THROTTLE_LIMIT,
    DEFAULT_THROTTLE_WINDOW,
    SlidingWindow,
    ThrottleDecision,
)
from sentinel_signl4_emulators.graph.vocab import ALERT_RESOLVED, INCIDENT_REDIRECTED, service_source_display_name

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
        self._throttle = SlidingWindow(throttle_limit, throttle_window, monotonic)
        self._defaults = (throttle_limit, throttle_window, first_incident_id)
        self._tenants: dict[str, StoredTenant] = {}
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
            self._throttle = SlidingWindow(limit, window, self._monotonic)
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
            self._throttle = SlidingWindow(limit, window, self._monotonic)

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
            chosen = severity or highest([a.severity for a in alerts]) or "medium"
            incident = StoredIncident(
                id=new_id, tenant_id=tenant.tenant_id, display_name=display_name,
                severity=enum_value("alertSeverity", chosen, "severity"),
                status=enum_value("incidentStatus", status, "status"),
                created=when, last_update=when, description=description, summary=summary,
                assigned_to=assigned_to,
                classification=enum_value("alertClassification", classification, "classification"),
                determination=enum_value("alertDetermination", determination, "determination"),
                custom_tags=list(custom_tags), system_tags=list(system_tags), priority_score=priority_score,
            )
            tenant.incidents[new_id] = incident
            for seed in alerts:
                self._attach_alert(tenant, incident, seed, when)
            return render_incident(tenant, incident, expand_alerts=True, include_unknown=True)

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
                return render_alert(tenant.alerts[alert_id], include_unknown=True)
            incident = self._incident(tenant, incident_id)
            alert = self._attach_alert(tenant, incident, seed, now)
            incident.severity = highest([incident.severity, alert.severity]) or incident.severity
            self._touch(incident, now)
            return render_alert(alert, include_unknown=True)

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
                raise bad_request("An incident cannot be merged into itself.")
            for incident in (source, target):
                if incident.status == INCIDENT_REDIRECTED:
                    raise bad_request(f"Incident {incident.id} was already redirected to "
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
            target.severity = highest([target.severity, source.severity]) or target.severity
            source.status = INCIDENT_REDIRECTED
            source.redirect_incident_id = target.id
            self._touch(source, now)
            self._touch(target, now)
            return render_incident(tenant, target, expand_alerts=True, include_unknown=True)

    def incidents(self, tenant_id: str) -> list[dict[str, Any]]:
        """Every incident of the tenant, expanded, all enum values as stored (control plane, tests)."""
        with self._lock:
            tenant = self._tenant(tenant_id)
            return [render_incident(tenant, i, expand_alerts=True, include_unknown=True)
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
                check_literals(where, INCIDENT_ENUM_PROPS, include_unknown)
            matches = [i for i in _newest_first(tenant.incidents.values())
                       if where is None or evaluate(where, incident_values(i))]
            page = matches[skip:skip + top]
            rendered = [render_incident(tenant, i, expand_alerts=expand_alerts, include_unknown=include_unknown)
                        for i in page]
            return rendered, len(matches)

    def get_incident(
        self, tenant_id: str, incident_id: str, *, expand_alerts: bool, include_unknown: bool
    ) -> dict[str, Any]:
        """One incident. A redirected (merged) incident is still returned, with status ``redirected``."""
        with self._lock:
            tenant = self._tenant(tenant_id)
            return render_incident(tenant, self._incident(tenant, incident_id), expand_alerts=expand_alerts,
                                   include_unknown=include_unknown)

    def update_incident(
        self, tenant_id: str, incident_id: str, changes: Mapping[str, Any], *, actor: str, include_unknown: bool,
    ) -> dict[str, Any]:
        """PATCH: validate every property first, then apply all of them (nothing is half-applied)."""
        with self._lock:
            tenant = self._tenant(tenant_id)
            incident = self._incident(tenant, incident_id)
            if incident.status == INCIDENT_REDIRECTED:
                # What Graph does with a write to a merged incident is unverified; refusing makes a client follow
                # redirectIncidentId instead of writing where nobody looks.
                raise bad_request(f"Incident {incident.id} was redirected to incident "
                                   f"{incident.redirect_incident_id}; update that incident instead.")
            values = validated_patch(changes, INCIDENT_WRITABLE, INCIDENT_ENUM_PROPS, include_unknown)
            if values.get("status") == INCIDENT_REDIRECTED:
                raise bad_request("Status 'redirected' is set by Microsoft Defender when it merges incidents.")
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
            return render_incident(tenant, incident, expand_alerts=False, include_unknown=include_unknown)

    def add_incident_comment(self, tenant_id: str, incident_id: str, text: str, *, author: str) -> list[dict[str, Any]]:
        """Append a comment; returns the full comment list (what the comments action answers)."""
        with self._lock:
            tenant = self._tenant(tenant_id)
            incident = self._incident(tenant, incident_id)
            now = self.clock()
            incident.comments.append(StoredComment(comment_text(text), author, now))
            self._touch(incident, now)
            return [render_comment(c) for c in incident.comments]

    def query_alerts(
        self, tenant_id: str, *, where: Expr | None, skip: int, top: int, include_unknown: bool,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of matching alerts, most recent first, and the number of matches."""
        with self._lock:
            tenant = self._tenant(tenant_id)
            if where is not None:
                check_literals(where, ALERT_ENUM_PROPS, include_unknown)
            matches = [a for a in sorted(tenant.alerts.values(), key=lambda a: (a.created, a.id), reverse=True)
                       if where is None or evaluate(where, alert_values(a))]
            return [render_alert(a, include_unknown=include_unknown) for a in matches[skip:skip + top]], len(
                matches)

    def get_alert(self, tenant_id: str, alert_id: str, *, include_unknown: bool) -> dict[str, Any]:
        with self._lock:
            return render_alert(self._alert(self._tenant(tenant_id), alert_id), include_unknown=include_unknown)

    def update_alert(
        self, tenant_id: str, alert_id: str, changes: Mapping[str, Any], *, include_unknown: bool,
    ) -> dict[str, Any]:
        with self._lock:
            tenant = self._tenant(tenant_id)
            alert = self._alert(tenant, alert_id)
            values = validated_patch(changes, ALERT_WRITABLE, ALERT_ENUM_PROPS, include_unknown)
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
                        alert.resolved = now if value == ALERT_RESOLVED else None
            alert.last_update = _after(now, alert.last_update)
            return render_alert(alert, include_unknown=include_unknown)

    def add_alert_comment(self, tenant_id: str, alert_id: str, text: str, *, author: str) -> list[dict[str, Any]]:
        with self._lock:
            alert = self._alert(self._tenant(tenant_id), alert_id)
            now = self.clock()
            alert.comments.append(StoredComment(comment_text(text), author, now))
            alert.last_update = _after(now, alert.last_update)
            return [render_comment(c) for c in alert.comments]

    # --- internals -------------------------------------------------------------------------------------------

    def _tenant(self, tenant_id: str) -> StoredTenant:
        key = tenant_id.lower()
        tenant = self._tenants.get(key)
        if tenant is None:
            # A tenant exists for Graph as soon as anyone looks: an empty Defender workspace lists nothing.
            tenant = self._tenants[key] = StoredTenant(key)
        return tenant

    def _allocate_id(self) -> str:
        allocated = self._next_id
        self._next_id += 1
        return str(allocated)

    @staticmethod
    def _incident(tenant: StoredTenant, incident_id: str) -> StoredIncident:
        incident = tenant.incidents.get(incident_id)
        if incident is None:
            # Code and wording for an unknown incident are unverified.
            raise GraphError(404, "NotFound", f"Incident {incident_id} was not found.")
        return incident

    @staticmethod
    def _alert(tenant: StoredTenant, alert_id: str) -> StoredAlert:
        alert = tenant.alerts.get(alert_id)
        if alert is None:
            raise GraphError(404, "NotFound", f"Alert {alert_id} was not found.")
        return alert

    def _attach_alert(
        self, tenant: StoredTenant, incident: StoredIncident, seed: AlertSeed, now: datetime
    ) -> StoredAlert:
        alert_id = seed.alert_id or _new_alert_id()
        if alert_id in tenant.alerts:
            raise ValueError(f"alert {alert_id} exists")
        created = seed.created or now
        alert = StoredAlert(
            id=alert_id, tenant_id=tenant.tenant_id, incident_id=incident.id, title=seed.title,
            severity=enum_value("alertSeverity", seed.severity, "severity"),
            status=enum_value("alertStatus", seed.status, "status"),
            service_source=enum_value("serviceSource", seed.service_source, "serviceSource"),
            detection_source=enum_value("detectionSource", seed.detection_source, "detectionSource"),
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

    def _touch(self, incident: StoredIncident, now: datetime) -> None:
        incident.last_update = _after(now, incident.last_update)


# --- helpers -----------------------------------------------------------------------------------------------------


def _new_alert_id() -> str:
    # The shape Defender uses: "da" + 18 digits + "_" + a signed 32-bit number (docs example).
    return f"da{secrets.randbelow(10**18):018d}_{secrets.randbelow(2**32) - 2**31}"


def _after(now: datetime, previous: datetime) -> datetime:
    # lastUpdateDateTime strictly increases even under a frozen test clock, so "modified since" never misses.
    return max(now, previous + timedelta(microseconds=1))


def _newest_first(incidents: Iterable[StoredIncident]) -> list[StoredIncident]:
    return sorted(incidents, key=lambda i: (i.created, int(i.id) if i.id.isdigit() else 0), reverse=True)
