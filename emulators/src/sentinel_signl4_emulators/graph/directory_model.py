"""State of the emulated Graph directory objects provisioning creates: applications, service principals, password
and federated credentials, app role assignments. Backed by the Entra model (an app created here can sign in) and
the Graph model (an app role assignment to Microsoft Graph is the consent its security endpoints check).

Shapes from the Graph v1.0 reference (application, servicePrincipal, passwordCredential,
federatedIdentityCredential, appRoleAssignment). Microsoft Graph's own service principal carries the app roles the
connector needs, with their published ids where known (User.Read.All df021288-…, SecurityIncident.Read.All
45cc0394-…; the others [unverified]); clients look roles up by ``value``. A new service principal is announced to
the RBAC emulator, which may refuse role assignments to it for a while (replication delay).

Certificates (keyCredentials): ``PATCH /applications/{id}`` replaces the collection (Update application), and
``POST /applications/{id}/addKey`` adds one with a proof of possession of an existing one. The rules are those of
the addKey reference (learn.microsoft.com/graph/api/application-addkey): an app without a valid certificate cannot
use it; the proof is a JWT signed with the private key of one of the app's valid certificates, ``aud``
``00000002-0000-0000-c000-000000000000``, ``iss`` the application's object id, and at most 10 minutes between
``nbf`` and ``exp``. The error codes and texts for a refused proof are not published: the ones here are derived
(400 ``Request_BadRequest``) [unverified].
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from sentinel_signl4_emulators.entra.model import EntraModel
from sentinel_signl4_emulators.graph.model import GraphModel

__all__ = ["GRAPH_APP_ID", "GRAPH_APP_ROLES", "DirectoryError", "DirectoryModel"]

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_APP_ROLES = {
    "User.Read.All": "df021288-bdef-4463-88db-98f22de89214",
    "SecurityIncident.Read.All": "45cc0394-e837-488b-a098-1918f48d186c",
    "SecurityIncident.ReadWrite.All": "34bf0e97-1971-4929-b999-9e2442d941d7",
    "SecurityAlert.Read.All": "472e4a4d-bb4a-4026-98d1-0b0d74cb74a5",
    "SecurityAlert.ReadWrite.All": "ed4fca05-be46-441f-9803-1873825f9ef2",
}


class DirectoryError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class _Application:
    id: str  # the application object's id (not the client id)
    app_id: str
    tenant_id: str
    display_name: str
    passwords: list[dict[str, Any]] = field(default_factory=list)
    federated: list[dict[str, Any]] = field(default_factory=list)
    keys: list[tuple[dict[str, Any], x509.Certificate]] = field(default_factory=list)

    def to_graph(self) -> dict[str, Any]:
        return {"id": self.id, "appId": self.app_id, "displayName": self.display_name,
                "signInAudience": "AzureADMyOrg", "passwordCredentials": [dict(p) for p in self.passwords],
                "keyCredentials": [dict(entry) for entry, _ in self.keys]}


PROOF_AUDIENCE = "00000002-0000-0000-c000-000000000000"


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _certificate(credential: dict[str, Any]) -> x509.Certificate:
    """The public certificate of a keyCredential's ``key`` (base64 of the DER or PEM certificate)."""
    if credential.get("type") != "AsymmetricX509Cert" or credential.get("usage") != "Verify":
        raise DirectoryError(400, "Request_BadRequest",
                             "keyCredential: only type AsymmetricX509Cert with usage Verify is emulated.")
    try:
        raw = base64.b64decode(str(credential.get("key") or ""), validate=True)
        return (x509.load_pem_x509_certificate(raw) if raw.startswith(b"-----BEGIN")
                else x509.load_der_x509_certificate(raw))
    except (ValueError, binascii.Error):
        raise DirectoryError(400, "Request_BadRequest", "keyCredential.key is not a base64 certificate.") from None


def _entry(credential: dict[str, Any], cert: x509.Certificate) -> dict[str, Any]:
    thumbprint = cert.fingerprint(hashes.SHA1())  # noqa: S303 - customKeyIdentifier is the SHA-1 thumbprint
    return {"keyId": str(uuid.uuid4()), "type": "AsymmetricX509Cert", "usage": "Verify", "key": None,
            "displayName": credential.get("displayName") or cert.subject.rfc4514_string(),
            "customKeyIdentifier": thumbprint.hex().upper(),
            "startDateTime": cert.not_valid_before_utc.isoformat().replace("+00:00", "Z"),
            "endDateTime": cert.not_valid_after_utc.isoformat().replace("+00:00", "Z")}


def _check_proof(proof: str, app: _Application, valid: list[x509.Certificate], now: datetime) -> None:
    refused = DirectoryError(400, "Request_BadRequest", "Proof of possession validation failed.")
    try:
        header_b64, payload_b64, signature_b64 = proof.split(".")
        header, claims = json.loads(_b64url(header_b64)), json.loads(_b64url(payload_b64))
        signature = _b64url(signature_b64)
    except (ValueError, binascii.Error):
        raise refused from None
    if not isinstance(header, dict) or header.get("alg") != "RS256" or not isinstance(claims, dict):
        raise refused
    signed = f"{header_b64}.{payload_b64}".encode()
    for cert in valid:
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            continue
        try:
            key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
            break
        except InvalidSignature:
            continue
    else:
        raise refused
    nbf, exp = claims.get("nbf"), claims.get("exp")
    if (claims.get("aud") != PROOF_AUDIENCE or claims.get("iss") != app.id
            or not isinstance(nbf, int | float) or not isinstance(exp, int | float)
            or exp - nbf > 600 or not nbf - 300 <= now.timestamp() <= exp):
        raise refused


@dataclass
class DirectoryModel:
    entra: EntraModel
    graph: GraphModel
    on_principal_created: Callable[[str], None] | None = None
    _apps: dict[str, _Application] = field(default_factory=dict)
    _service_principals: set[str] = field(default_factory=set)  # client ids of apps created here with an SP
    _created_here: set[str] = field(default_factory=set)  # client ids of apps created through Graph
    _assignments: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def reset(self) -> None:
        with self._lock:
            self._apps.clear()
            self._service_principals.clear()
            self._created_here.clear()
            self._assignments.clear()

    @staticmethod
    def graph_sp_id(tenant_id: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"graph-service-principal/{tenant_id.lower()}"))

    def graph_service_principal(self, tenant_id: str) -> dict[str, Any]:
        return {"id": self.graph_sp_id(tenant_id), "appId": GRAPH_APP_ID, "displayName": "Microsoft Graph",
                "appRoles": [{"id": role_id, "value": value, "allowedMemberTypes": ["Application"],
                              "isEnabled": True} for value, role_id in GRAPH_APP_ROLES.items()]}

    # --- applications -------------------------------------------------------------------------------------------

    def create_application(self, tenant_id: str, display_name: str) -> dict[str, Any]:
        if not display_name:
            raise DirectoryError(400, "Request_BadRequest", "displayName is required.")
        registered = self.entra.register_app(tenant_id, display_name=display_name)
        app = _Application(id=str(uuid.uuid4()), app_id=registered.client_id, tenant_id=tenant_id.lower(),
                           display_name=display_name)
        with self._lock:
            self._apps[app.id] = app
            self._created_here.add(app.app_id)
        return app.to_graph()

    def _known(self, tenant_id: str) -> list[_Application]:
        """Every app of the tenant, including those registered directly in the Entra model (seeded ones)."""
        tenant = tenant_id.lower()
        with self._lock:
            known = {a.app_id for a in self._apps.values()}
            for entra_tenant in self.entra.tenants():
                if entra_tenant.tenant_id != tenant:
                    continue
                for registered in entra_tenant.apps.values():
                    if registered.client_id not in known:
                        app = _Application(id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"app/{registered.client_id}")),
                                           app_id=registered.client_id, tenant_id=tenant,
                                           display_name=registered.display_name)
                        self._apps[app.id] = app
            return [a for a in self._apps.values() if a.tenant_id == tenant]

    def applications(self, tenant_id: str, display_name: str | None) -> list[dict[str, Any]]:
        return [a.to_graph() for a in self._known(tenant_id)
                if display_name is None or a.display_name == display_name]

    def _application(self, tenant_id: str, object_id: str) -> _Application:
        self._known(tenant_id)
        with self._lock:
            app = self._apps.get(object_id)
        if app is None or app.tenant_id != tenant_id.lower():
            raise DirectoryError(404, "Request_ResourceNotFound",
                                 f"Resource '{object_id}' does not exist or one of its queried reference-property "
                                 "objects are not present.")
        return app

    def application(self, tenant_id: str, object_id: str) -> dict[str, Any]:
        return self._application(tenant_id, object_id).to_graph()

    def add_password(self, tenant_id: str, object_id: str, credential: dict[str, Any],
                     now: datetime) -> dict[str, Any]:
        app = self._application(tenant_id, object_id)
        secret = secrets.token_urlsafe(30)
        self.entra.add_secret(tenant_id, app.app_id, secret)
        entry = {"keyId": str(uuid.uuid4()), "displayName": credential.get("displayName"),
                 "startDateTime": now.isoformat().replace("+00:00", "Z"), "endDateTime": credential.get("endDateTime"),
                 "hint": secret[:3]}
        with self._lock:
            app.passwords.append(entry)
        return {**entry, "secretText": secret}

    def set_keys(self, tenant_id: str, object_id: str, credentials: list[dict[str, Any]]) -> None:
        """Update application with ``keyCredentials``: the collection is replaced. New certificates can sign in."""
        app = self._application(tenant_id, object_id)
        parsed = [(credential, _certificate(credential)) for credential in credentials]
        known = {cert.fingerprint(hashes.SHA256()) for _, cert in app.keys}
        with self._lock:
            app.keys = [(_entry(credential, cert), cert) for credential, cert in parsed]
        for _, cert in parsed:
            if cert.fingerprint(hashes.SHA256()) not in known:
                self.entra.add_certificate(tenant_id, app.app_id, cert.public_bytes(serialization.Encoding.PEM))

    def add_key(self, tenant_id: str, object_id: str, body: dict[str, Any], now: datetime) -> dict[str, Any]:
        """addKey: one more certificate, after the proof of possession of a valid existing one."""
        app = self._application(tenant_id, object_id)
        moment = now if now.tzinfo else now.replace(tzinfo=UTC)
        valid = [cert for _, cert in app.keys if cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc]
        if not valid:
            raise DirectoryError(400, "Request_BadRequest", "The application has no valid certificate: use Update "
                                 "application to add the first one.")
        credential = body.get("keyCredential")
        if not isinstance(credential, dict):
            raise DirectoryError(400, "Request_BadRequest", "keyCredential is required.")
        _check_proof(str(body.get("proof") or ""), app, valid, moment)
        cert = _certificate(credential)
        entry = _entry(credential, cert)
        with self._lock:
            app.keys.append((entry, cert))
        self.entra.add_certificate(tenant_id, app.app_id, cert.public_bytes(serialization.Encoding.PEM))
        return dict(entry)

    def add_federated(self, tenant_id: str, object_id: str, body: dict[str, Any]) -> dict[str, Any]:
        app = self._application(tenant_id, object_id)
        with self._lock:
            if any(f["name"] == body.get("name") for f in app.federated):
                raise DirectoryError(409, "Request_MultipleObjectsWithSameKeyValue",
                                     "FederatedIdentityCredential with name already exists.")
            entry = {"id": str(uuid.uuid4()), "name": body.get("name"), "issuer": body.get("issuer"),
                     "subject": body.get("subject"), "audiences": body.get("audiences") or []}
            app.federated.append(entry)
        return entry

    def federated(self, tenant_id: str, object_id: str) -> list[dict[str, Any]]:
        return [dict(f) for f in self._application(tenant_id, object_id).federated]

    # --- service principals -------------------------------------------------------------------------------------

    def create_service_principal(self, tenant_id: str, app_id: str) -> dict[str, Any]:
        registered = self.entra.find_app(app_id)
        if registered is None or not any(a.app_id == app_id.lower() for a in self._known(tenant_id)):
            raise DirectoryError(400, "Request_BadRequest", f"The appId '{app_id}' of the service principal "
                                 "does not reference a valid application object.")
        with self._lock:
            if registered.client_id in self._service_principals or registered.client_id not in self._created_here:
                raise DirectoryError(409, "Request_MultipleObjectsWithSameKeyValue",
                                     "The service principal already exists.")
            self._service_principals.add(registered.client_id)
        if self.on_principal_created is not None:
            self.on_principal_created(registered.object_id)
        return {"id": registered.object_id, "appId": registered.client_id, "displayName": registered.display_name}

    def service_principals(self, tenant_id: str, app_id: str) -> list[dict[str, Any]]:
        if app_id.lower() == GRAPH_APP_ID:
            return [self.graph_service_principal(tenant_id)]
        with self._lock:
            created_here = set(self._created_here)
            return [{"id": app.object_id, "appId": app.client_id, "displayName": app.display_name}
                    for tenant in self.entra.tenants() if tenant.tenant_id == tenant_id.lower()
                    for app in tenant.apps.values() if app.client_id == app_id.lower()
                    # apps registered outside Graph (seeded, managed identities) have their principal already
                    and (app.client_id not in created_here or app.client_id in self._service_principals)]

    def assign_app_role(self, tenant_id: str, resource_id: str, body: dict[str, Any]) -> dict[str, Any]:
        if resource_id != self.graph_sp_id(tenant_id) or body.get("resourceId") != resource_id:
            raise DirectoryError(400, "Request_BadRequest", "Only app roles of Microsoft Graph are emulated.")
        permission = next((v for v, rid in GRAPH_APP_ROLES.items() if rid == body.get("appRoleId")), None)
        principal = str(body.get("principalId") or "")
        app = next((a for t in self.entra.tenants() if t.tenant_id == tenant_id.lower()
                    for a in t.apps.values() if a.object_id == principal), None)
        if permission is None or app is None:
            raise DirectoryError(400, "Request_BadRequest", "Invalid appRoleId or principalId.")
        with self._lock:
            if any(a["principalId"] == principal and a["appRoleId"] == body["appRoleId"] for a in self._assignments):
                raise DirectoryError(409, "Request_BadRequest", "Permission being assigned already exists on the "
                                     "object")
            entry = {"id": str(uuid.uuid4()), "principalId": principal, "resourceId": resource_id,
                     "appRoleId": body["appRoleId"], "principalType": "ServicePrincipal"}
            self._assignments.append(entry)
        self.graph.grant(app.client_id, [permission])
        return entry

    def app_role_assignments(self, resource_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(a) for a in self._assignments if a["resourceId"] == resource_id]

    def assignments_of(self, principal_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(a) for a in self._assignments if a["principalId"] == principal_id]
