"""State of the emulated Azure RBAC (``Microsoft.Authorization``): custom role definitions and role assignments.

Shapes follow the REST reference, api-version 2022-04-01 (learn.microsoft.com/rest/api/authorization/
role-definitions/create-or-update and role-assignments/create): a role definition is ``properties.roleName``,
``description``, ``type`` (``CustomRole``), ``permissions[{actions, notActions, dataActions, notDataActions}]`` and
``assignableScopes``; a role assignment is ``properties.roleDefinitionId``, ``principalId``, ``principalType`` and
``scope``. Rules enforced: a custom role's name is unique in the directory (409 ``RoleDefinitionWithSameNameExists``),
assignable scopes are management groups, subscriptions or resource groups, an assignment's scope lies inside an
assignable scope, an assignment is unique per principal, role and scope (409 ``RoleAssignmentExists``), and its
principal must exist in the directory (400 ``PrincipalNotFound``, which a new principal also gets for the first
``replication_delay`` attempts: Entra's replication delay). Error wording as documented in Azure RBAC's
troubleshooting page [exact text unverified].

Who may write: a principal holding ``owner`` (``grant_owner``: what an operator with Owner or User Access
Administrator has) on a scope containing the target scope; anyone else gets 403 ``AuthorizationFailed`` naming the
``Microsoft.Authorization/…/write`` action. :meth:`allows` answers the data-plane question the Sentinel and Log
Analytics emulators ask: does a principal hold ``action`` at ``scope`` through a custom role (``*`` wildcards in
actions, ``notActions`` subtracted, assignments inherited down the scope hierarchy, case-insensitive).
"""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AuthorizationError", "AuthorizationModel", "CustomRole", "RoleAssignment"]

_ASSIGNABLE = re.compile(r"^/(subscriptions/[^/]+(/resourceGroups/[^/]+)?|providers/Microsoft\.Management/"
                         r"managementGroups/[^/]+)$", re.IGNORECASE)


class AuthorizationError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class CustomRole:
    id: str
    subscription_id: str
    role_name: str
    description: str
    actions: list[str]
    not_actions: list[str]
    data_actions: list[str]
    not_data_actions: list[str]
    assignable_scopes: list[str]

    @property
    def resource_id(self) -> str:
        return f"/subscriptions/{self.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{self.id}"

    def to_arm(self) -> dict[str, Any]:
        return {
            "id": self.resource_id, "name": self.id, "type": "Microsoft.Authorization/roleDefinitions",
            "properties": {
                "roleName": self.role_name, "description": self.description, "type": "CustomRole",
                "permissions": [{"actions": self.actions, "notActions": self.not_actions,
                                 "dataActions": self.data_actions, "notDataActions": self.not_data_actions}],
                "assignableScopes": self.assignable_scopes,
            },
        }

    def grants(self, action: str) -> bool:
        return (any(_matches(pattern, action) for pattern in self.actions)
                and not any(_matches(pattern, action) for pattern in self.not_actions))


@dataclass
class RoleAssignment:
    id: str
    scope: str
    role_definition_id: str
    principal_id: str
    principal_type: str

    def to_arm(self) -> dict[str, Any]:
        return {
            "id": f"{self.scope}/providers/Microsoft.Authorization/roleAssignments/{self.id}", "name": self.id,
            "type": "Microsoft.Authorization/roleAssignments",
            "properties": {"roleDefinitionId": self.role_definition_id, "principalId": self.principal_id,
                           "principalType": self.principal_type, "scope": self.scope},
        }


def _matches(pattern: str, action: str) -> bool:
    regex = "^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$"
    return re.match(regex, action, re.IGNORECASE) is not None


def _within(scope: str, container: str) -> bool:
    scope, container = scope.rstrip("/").lower(), container.rstrip("/").lower()
    return scope == container or scope.startswith(container + "/")


@dataclass
class AuthorizationModel:
    """Custom roles and their assignments. ``principal_exists`` says whether an object id is in the directory."""

    principal_exists: Any = None  # Callable[[str], bool]; set by EmulatorState
    replication_delay: int = 0
    _roles: dict[str, CustomRole] = field(default_factory=dict)
    _assignments: dict[str, RoleAssignment] = field(default_factory=dict)
    _owners: list[tuple[str, str]] = field(default_factory=list)
    _not_yet_replicated: dict[str, int] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def reset(self) -> None:
        with self._lock:
            self._roles.clear()
            self._assignments.clear()
            self._owners.clear()
            self._not_yet_replicated.clear()
            self.replication_delay = 0

    def grant_owner(self, principal_id: str, scope: str) -> None:
        with self._lock:
            self._owners.append((principal_id.lower(), scope))

    def principal_created(self, principal_id: str) -> None:
        """A new principal: role assignments to it fail ``replication_delay`` times first."""
        with self._lock:
            if self.replication_delay:
                self._not_yet_replicated[principal_id.lower()] = self.replication_delay

    # --- control plane ----------------------------------------------------------------------------------------

    def _require_owner(self, caller_oid: str, scope: str, action: str, client_id: str) -> None:
        if not any(oid == caller_oid.lower() and _within(scope, owned) for oid, owned in self._owners):
            raise AuthorizationError(
                403, "AuthorizationFailed",
                f"The client '{client_id}' with object id '{caller_oid}' does not have authorization to perform "
                f"action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, "
                "please refresh your credentials.")

    def put_definition(self, subscription_id: str, role_id: str, body: dict[str, Any], *, caller_oid: str,
                       client_id: str, tenant_of: Any) -> CustomRole:
        props = body.get("properties") if isinstance(body.get("properties"), dict) else {}
        assert isinstance(props, dict)
        scopes = [str(s) for s in props.get("assignableScopes") or []]
        permissions = props.get("permissions") or [{}]
        first = permissions[0] if isinstance(permissions, list) and permissions else {}
        name = str(props.get("roleName") or "")
        if not name or not scopes or (not first.get("actions") and not first.get("dataActions")):
            raise AuthorizationError(400, "InvalidRoleDefinition",
                                     "The role definition needs roleName, permissions and assignableScopes.")
        bad = [s for s in scopes if not _ASSIGNABLE.match(s)]
        if bad:
            raise AuthorizationError(400, "InvalidAssignableScope", f"The assignable scope '{bad[0]}' is not "
                                     "supported: use management groups, subscriptions or resource groups.")
        with self._lock:
            for scope in scopes:
                self._require_owner(caller_oid, scope, "Microsoft.Authorization/roleDefinitions/write", client_id)
            tenant = tenant_of(subscription_id)
            clash = [r for r in self._roles.values() if r.role_name.lower() == name.lower() and r.id != role_id.lower()
                     and tenant_of(r.subscription_id) == tenant]
            if clash:
                raise AuthorizationError(409, "RoleDefinitionWithSameNameExists",
                                         "A custom role with the same name already exists in this directory. Use a "
                                         "different name.")
            role = CustomRole(
                id=role_id.lower(), subscription_id=subscription_id, role_name=name,
                description=str(props.get("description") or ""),
                actions=[str(a) for a in first.get("actions") or []],
                not_actions=[str(a) for a in first.get("notActions") or []],
                data_actions=[str(a) for a in first.get("dataActions") or []],
                not_data_actions=[str(a) for a in first.get("notDataActions") or []],
                assignable_scopes=scopes,
            )
            self._roles[role.id] = role
            return role

    def definitions(self, scope: str, role_name: str | None = None) -> list[CustomRole]:
        """Custom roles assignable at or below ``scope`` (optionally by exact ``roleName``)."""
        with self._lock:
            return [r for r in self._roles.values()
                    if any(_within(s, scope) or _within(scope, s) for s in r.assignable_scopes)
                    and (role_name is None or r.role_name.lower() == role_name.lower())]

    def put_assignment(self, scope: str, assignment_id: str, body: dict[str, Any], *, caller_oid: str,
                       client_id: str, tenant_id: str) -> RoleAssignment:
        props = body.get("properties") if isinstance(body.get("properties"), dict) else {}
        assert isinstance(props, dict)
        role_ref = str(props.get("roleDefinitionId") or "")
        principal = str(props.get("principalId") or "").lower()
        with self._lock:
            self._require_owner(caller_oid, scope, "Microsoft.Authorization/roleAssignments/write", client_id)
            role = self._roles.get(role_ref.rstrip("/").rsplit("/", 1)[-1].lower())
            if role is None:
                raise AuthorizationError(400, "RoleDefinitionDoesNotExist",
                                         f"The specified role definition with ID '{role_ref}' does not exist.")
            if not any(_within(scope, s) for s in role.assignable_scopes):
                raise AuthorizationError(403, "AuthorizationFailed",
                                         f"The role definition '{role.role_name}' is not assignable at scope "
                                         f"'{scope}'.")
            pending = self._not_yet_replicated.get(principal, 0)
            if pending or not (self.principal_exists and self.principal_exists(principal)):
                if pending:
                    self._not_yet_replicated[principal] = pending - 1
                raise AuthorizationError(
                    400, "PrincipalNotFound",
                    f"Principal {principal.replace('-', '')} does not exist in the directory {tenant_id}. Check that "
                    "you have the correct principal ID. If you are creating this principal and then immediately "
                    "assigning a role, this error might be related to a replication delay.")
            for existing in self._assignments.values():
                if (existing.principal_id == principal and existing.role_definition_id.lower() == role_ref.lower()
                        and existing.scope.lower() == scope.lower()):
                    raise AuthorizationError(409, "RoleAssignmentExists", "The role assignment already exists.")
            assignment = RoleAssignment(id=assignment_id.lower() or str(uuid.uuid4()), scope=scope,
                                        role_definition_id=role_ref, principal_id=principal,
                                        principal_type=str(props.get("principalType") or "ServicePrincipal"))
            self._assignments[assignment.id] = assignment
            return assignment

    def assignments(self, scope: str, principal_id: str | None = None) -> list[RoleAssignment]:
        """Assignments at, above (inherited) or below ``scope``, as ARM's list at a scope returns them."""
        with self._lock:
            return [a for a in self._assignments.values()
                    if (_within(scope, a.scope) or _within(a.scope, scope))
                    and (principal_id is None or a.principal_id == principal_id.lower())]

    def remove_assignments(self, principal_id: str) -> None:
        with self._lock:
            for key in [k for k, a in self._assignments.items() if a.principal_id == principal_id.lower()]:
                del self._assignments[key]

    # --- the data-plane question -------------------------------------------------------------------------------

    def allows(self, principal_id: str, scope: str, action: str) -> bool:
        with self._lock:
            for assignment in self._assignments.values():
                if assignment.principal_id != principal_id.lower() or not _within(scope, assignment.scope):
                    continue
                role = self._roles.get(assignment.role_definition_id.rstrip("/").rsplit("/", 1)[-1].lower())
                if role is not None and role.grants(action):
                    return True
        return False

    def has_custom_access(self, principal_id: str, scope: str) -> bool:
        """Whether any custom role assignment of ``principal_id`` covers ``scope``."""
        with self._lock:
            return any(a.principal_id == principal_id.lower() and _within(scope, a.scope)
                       for a in self._assignments.values())
