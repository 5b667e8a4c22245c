"""State of the Microsoft Sentinel (Microsoft.SecurityInsights) emulator.

Workspaces hold incidents, their comments, alerts and entities; role assignments say who may read or write.
This module owns the service's *rules* — PUT replaces the writable set, etag concurrency, classification on
close, owner resolution from the directory, sequential incident numbers — and renders resources in their ARM
JSON form (the resource *is* the incident's public shape). HTTP concerns (auth, api-version, query strings,
paging links, throttling headers) live in ``sentinel.py``.

The parts live in sibling modules and are re-exported here: the vocabulary and stored records
(``sentinel.entities``), validation and classification rules (``sentinel.rules``) and the ARM JSON rendering
(``sentinel.render``).

Facts come from reference/microsoft-apis.md §1; where it marks something unverified, so does a comment here.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sentinel_signl4_emulators.common.odata import Expr, OrderBy, Value, evaluate
from sentinel_signl4_emulators.common.throttle import TokenBuckets
from sentinel_signl4_emulators.entra.model import EntraModel
from sentinel_signl4_emulators.sentinel.entities import (
    UNSET,
    Action,
    Author,
    EntitySeed,
    IncidentWrite,
    OwnerRef,
    Page,
    Role,
    SecurityAlertSeed,
    StoredComment,
    StoredIncident,
    StoredOwner,
    Unset,
    Workspace,
    WorkspaceRef,
    new_comment_etag,
    new_incident_etag,
)
from sentinel_signl4_emulators.sentinel.render import (
    INCIDENT_FIELDS,
    filter_values,
    format_timestamp,
    render_alert,
    render_comment,
    render_entity,
    render_incident,
)
from sentinel_signl4_emulators.sentinel.rules import (
    COMMENT_MAX_LENGTH,
    SentinelError,
    apply_classification,
    bad_request,
    enum_value,
    merge_labels,
)
from sentinel_signl4_emulators.sentinel.vocab import Classification, ClassificationReason, IncidentStatus, Severity
from sentinel_signl4_emulators.sentinel.write_limits import WriteLimits

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
        #: Sentinel's own per-workspace limits (75 incident PUTs, 75 comment PUTs, 100 alerts and 100 entities
        #: calls per 5 minutes), checked after ARM's buckets.
        self.write_limits = WriteLimits()
        self._workspaces: dict[tuple[str, str, str], Workspace] = {}
        self._subscriptions: dict[str, str] = {}  # subscription id (lower) -> tenant id
        self._roles: list[tuple[str, str, Role]] = []  # (client id, scope (lower), role)
        #: Custom roles (``AuthorizationModel``): consulted when no built-in role allows an action.
        self.custom_roles: Any = None
        self._lock = threading.RLock()

    # --- setup ---------------------------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self._workspaces.clear()
            self._subscriptions.clear()
            self._roles.clear()
            self.throttle.reset()
            self.write_limits.reset()

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

    def custom_role_allows(self, principal_object_id: str, ref: WorkspaceRef, action: str) -> bool:
        """Whether a custom role assignment grants ``action`` on the workspace to the principal."""
        return bool(self.custom_roles is not None
                    and self.custom_roles.allows(principal_object_id, ref.resource_id, action))

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
            incident = StoredIncident(
                name=(name or str(uuid.uuid4())),
                number=number,
                title=title,
                severity=Severity(severity).value,
                status=IncidentStatus(status).value,
                created=when,
                last_modified=when,
                etag=new_incident_etag(),
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
            apply_classification(
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
            return render_incident(ws, incident)

    def get_incident(self, workspace: WorkspaceRef | str, name: str) -> dict[str, Any]:
        with self._lock:
            ws = self._existing_workspace(workspace)
            return render_incident(ws, self._incident(ws, name))

    def list_incidents(self, workspace: WorkspaceRef | str) -> list[dict[str, Any]]:
        """Every incident of the workspace by incident number (no filter, no paging)."""
        with self._lock:
            ws = self.workspace(workspace)
            return [render_incident(ws, i) for i in sorted(ws.incidents.values(), key=lambda i: i.number)]

    def find_incident(self, name: str) -> tuple[WorkspaceRef, dict[str, Any]]:
        """Locate an incident by its (globally unique) name in any workspace."""
        with self._lock:
            for ws in self._workspaces.values():
                if name.lower() in ws.incidents:
                    return ws.ref, render_incident(ws, ws.incidents[name.lower()])
        raise KeyError(f"no incident {name}")

    def update_incident_as_analyst(
        self,
        workspace: WorkspaceRef | str,
        name: str,
        *,
        title: str | Unset = UNSET,
        severity: Severity | str | Unset = UNSET,
        status: IncidentStatus | str | Unset = UNSET,
        description: str | Unset | None = UNSET,
        owner: str | Unset | None = UNSET,
        labels: Iterable[str] | Unset = UNSET,
        add_labels: Iterable[str] = (),
        classification: Classification | str | Unset | None = UNSET,
        classification_reason: ClassificationReason | str | Unset | None = UNSET,
        classification_comment: str | Unset | None = UNSET,
    ) -> dict[str, Any]:
        """A human edit in the portal: changes only what is given, validates like a PUT, bumps the etag."""
        with self._lock:
            ws = self.workspace(workspace)
            current = self._incident(ws, name)
            resource = render_incident(ws, current)["properties"]
            owner_ref: OwnerRef | None
            if isinstance(owner, Unset):
                owner_ref = _owner_ref_of(current.owner)
            else:
                owner_ref = OwnerRef(user_principal_name=owner) if owner else None
            label_names = [n for n, _ in current.labels] if isinstance(labels, Unset) else list(labels)
            label_names += [n for n in add_labels if n not in label_names]

            def pick(value: object, key: str) -> Any:
                return resource.get(key) if isinstance(value, Unset) else value

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
                raise bad_request("An incident cannot be merged into itself.")
            if IncidentStatus.CLOSED.value in (merged.status, survivor.status):
                raise bad_request("Closed incidents are not merged.")
            now = self.clock()
            survivor.alerts.extend(merged.alerts)
            survivor.entities.extend(merged.entities)
            known = {name.casefold() for name, _ in survivor.labels}
            survivor.labels.extend(label for label in merged.labels if label[0].casefold() not in known)
            merged.alerts, merged.entities = [], []
            merged.labels = [("Redirected", "AutoAssigned")]
            merged.status = IncidentStatus.CLOSED.value
            apply_classification(merged, merged.status, Classification.UNDETERMINED.value, None, None)
            self._touch(survivor, now)
            self._touch(merged, now)
            return render_incident(ws, merged)

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
            return [render_comment(ws, incident, c) for c in incident.comments.values()]

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
            rows: list[tuple[tuple[Value, str], StoredIncident]] = []
            for incident in ws.incidents.values():
                values = filter_values(incident)
                if where is None or evaluate(where, values):
                    rows.append(((values[order.field], incident.name.lower()), incident))
            rows.sort(key=lambda row: row[0], reverse=order.descending)
            if after is not None:
                cursor = (after[0], after[1].lower())
                rows = [r for r in rows if (r[0] < cursor if order.descending else r[0] > cursor)]
            page, more = rows[:top], len(rows) > top
            next_cursor = (page[-1][0][0], page[-1][1].name) if more and page else None
            return Page([render_incident(ws, incident) for _, incident in page], next_cursor)

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
                    raise bad_request(f"Incident property '{prop}' is required.")
            assert write.title is not None and write.severity is not None and write.status is not None
            severity = enum_value(Severity, write.severity, "severity")
            status = enum_value(IncidentStatus, write.status, "status")
            owner = self._resolve_owner(ws, write.owner) if write.owner else None
            now = self.clock()
            created = current is None
            if current is None:
                current = StoredIncident(
                    name=name, number=ws.next_number, title=write.title, severity=severity, status=status,
                    created=now, last_modified=now, etag="", provider_name="Azure Sentinel",
                    provider_incident_id=str(ws.next_number),
                )
            staged = replace(current, labels=list(current.labels))
            apply_classification(
                staged, status, write.classification, write.classification_reason, write.classification_comment,
            )
            staged.title, staged.severity, staged.status = write.title, severity, status
            staged.description = write.description
            staged.owner = owner
            staged.labels = merge_labels(current.labels, write.labels)
            # Every writable property is replaced as sent, so an omitted one is cleared (§1.6). For owner, labels
            # and description that is documented behaviour; for the activity times it is assumed [unverified].
            staged.first_activity, staged.last_activity = write.first_activity, write.last_activity
            if created:
                staged.etag = new_incident_etag()
                ws.next_number += 1
            else:
                self._touch(staged, now)
            ws.incidents[name.lower()] = staged
            return render_incident(ws, staged), created

    def put_comment(
        self, workspace: WorkspaceRef, incident_name: str, comment_id: str, message: str, author: Author
    ) -> tuple[dict[str, Any], bool]:
        """Create (201) or update (200) a comment with a client-chosen id."""
        if not message.strip():
            raise bad_request("Comment message is required.")
        if len(message) > COMMENT_MAX_LENGTH:
            raise bad_request(
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
                existing.etag = new_comment_etag()
                return render_comment(ws, incident, existing), False
            comment = StoredComment(comment_id, message, author, now, now, new_comment_etag())
            incident.comments[comment_id.lower()] = comment
            # A new comment bumps commentsCount and, we assume, the incident's etag and lastModifiedTimeUtc
            # (reference §1.7: very likely, unverified) — clients must re-GET before the next PUT anyway.
            self._touch(incident, now)
            return render_comment(ws, incident, comment), True

    def get_comment(self, workspace: WorkspaceRef, incident_name: str, comment_id: str) -> dict[str, Any]:
        with self._lock:
            ws = self._existing_workspace(workspace)
            incident = self._incident(ws, incident_name)
            comment = incident.comments.get(comment_id.lower())
            if comment is None:
                raise SentinelError(404, "NotFound", f"Comment '{comment_id}' was not found.")
            return render_comment(ws, incident, comment)

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
            return Page([render_comment(ws, incident, c) for _, c in page], next_cursor)

    def alert_resources(self, workspace: WorkspaceRef, incident_name: str) -> list[dict[str, Any]]:
        with self._lock:
            ws = self._existing_workspace(workspace)
            return [render_alert(ws, a) for a in self._incident(ws, incident_name).alerts]

    def entity_resources(self, workspace: WorkspaceRef, incident_name: str) -> dict[str, Any]:
        with self._lock:
            ws = self._existing_workspace(workspace)
            entities = self._incident(ws, incident_name).entities
            counts: dict[str, int] = {}
            for entity in entities:
                counts[entity.kind] = counts.get(entity.kind, 0) + 1
            return {
                "entities": [render_entity(ws, e) for e in entities],
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
    def _incident(ws: Workspace, name: str) -> StoredIncident:
        incident = ws.incidents.get(name.lower())
        if incident is None:
            # Code as listed in §1.10; exact message unverified.
            raise SentinelError(404, "NotFound", f"Incident '{name}' was not found.")
        return incident

    def _touch(self, incident: StoredIncident, now: datetime) -> None:
        # lastModifiedTimeUtc strictly increases even under a frozen test clock.
        incident.last_modified = max(now, incident.last_modified + timedelta(microseconds=1))
        incident.etag = new_incident_etag()

    def _resolve_owner(self, ws: Workspace, owner: OwnerRef) -> StoredOwner | None:
        reference = owner.reference
        if reference is None:
            return None  # {} unassigns (XSOAR sends it)
        user = self.entra.find_user(ws.tenant_id, reference)
        if user is None:
            # What the service does with an unknown owner is unverified; refusing catches mapping bugs.
            raise bad_request(f"Owner '{reference}' was not found in the directory of tenant '{ws.tenant_id}'.")
        return StoredOwner(user.object_id, user.user_principal_name, user.display_name, user.mail)


# --- helpers ---------------------------------------------------------------------------------------------------


def _ref(ref: WorkspaceRef | str) -> WorkspaceRef:
    return ref if isinstance(ref, WorkspaceRef) else WorkspaceRef.parse(ref)


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def _owner_ref_of(owner: StoredOwner | None) -> OwnerRef | None:
    return None if owner is None else OwnerRef(object_id=owner.object_id)
