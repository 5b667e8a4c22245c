"""A user's sign-in: the device authorization grant (RFC 8628, ``/oauth2/v2.0/devicecode``) and the refresh tokens
that let one sign-in serve several resources, as ``az login --use-device-code`` and azure-identity's
``DeviceCodeCredential`` use them.

1. The client posts ``client_id`` and ``scope`` to the devicecode endpoint of an authority; it gets a
   ``device_code`` (its own), a ``user_code`` (for the user), the page to enter it at, ``expires_in`` (15 minutes)
   and the polling ``interval``.
2. It polls the token endpoint with ``grant_type=urn:ietf:params:oauth:grant-type:device_code``; until the user
   has signed in the answer is 400 ``authorization_pending``.
3. The user enters the code and signs in (here: :meth:`DeviceSignIn.complete`, the scripted user action).
4. The next poll gets the access token, an ID token (claims only: MSAL does not check its signature), the
   ``client_info`` MSAL keys its cache with, and a refresh token; ``grant_type=refresh_token`` with it gets a token
   for another resource of the same cloud without a new sign-in.

Every flow remembers the authority (scheme and host) it was started at and the scopes it asked for, so tests can
see which cloud a client signed in to (``entra.clouds``). The AADSTS codes of the device-flow errors are as
commonly reported [unverified].
"""

from __future__ import annotations

import base64
import json
import secrets
import string
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sentinel_signl4_emulators.entra.model import EntraModel, Tenant, User

__all__ = ["AZURE_CLI_CLIENT_ID", "DEVICE_CODE_GRANT", "OIDC_SCOPES", "DeviceCode", "DeviceSignIn"]

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
#: The Azure CLI: a Microsoft public client present in every tenant (azure-identity's default for user sign-in).
AZURE_CLI_CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
#: Scopes about the sign-in itself, not a resource (MSAL adds them to every request).
OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
_LIFETIME = timedelta(minutes=15)


@dataclass(slots=True)
class DeviceCode:
    """One device-code flow: who asked where, for what, and (once signed in) which user."""

    device_code: str
    user_code: str
    tenant_id: str
    client_id: str
    scopes: tuple[str, ...]
    #: ``https://host`` the flow was started at (the cloud's authority, ``entra.clouds``).
    authority: str
    expires_at: datetime
    user: User | None = None
    redeemed: bool = False


@dataclass(slots=True)
class _RefreshToken:
    tenant_id: str
    client_id: str
    user: User
    authority: str


@dataclass
class DeviceSignIn:
    """Device codes and refresh tokens of an :class:`EntraModel` (which holds the lock and the tenants)."""

    entra: EntraModel
    #: Seconds a client must wait between polls (Entra says 5).
    interval: int = 5
    _codes: dict[str, DeviceCode] = field(default_factory=dict)
    _refresh: dict[str, _RefreshToken] = field(default_factory=dict)

    def reset(self) -> None:
        self._codes.clear()
        self._refresh.clear()

    # --- the user's side (scripted user actions) -------------------------------------------------------------------

    def flows(self) -> list[DeviceCode]:
        """Every device-code flow started, oldest first."""
        with self.entra._lock:
            return list(self._codes.values())

    def complete(self, user_code: str, user_reference: str) -> DeviceCode:
        """The user enters ``user_code`` at the verification page and signs in as ``user_reference`` (object id,
        UPN or mail) of the flow's tenant. ``KeyError`` for an unknown code or user."""
        with self.entra._lock:
            flow = next((f for f in self._codes.values() if f.user_code == user_code.strip().upper()), None)
            if flow is None:
                raise KeyError(f"no device-code flow with user code {user_code!r}")
            user = self.entra.find_user(flow.tenant_id, user_reference)
            if user is None:
                raise KeyError(f"no user {user_reference!r} in tenant {flow.tenant_id}")
            flow.user = user
            return flow

    # --- the client's side -----------------------------------------------------------------------------------------

    def start(self, tenant: Tenant, form: dict[str, str], *, authority: str,
              verification_uri: str) -> dict[str, Any]:
        """The devicecode endpoint's answer to ``form`` (``client_id``, ``scope``)."""
        from sentinel_signl4_emulators.entra.model import EntraError

        client_id = form.get("client_id", "").lower()
        if client_id != AZURE_CLI_CLIENT_ID and client_id not in tenant.apps:
            raise EntraError(400, "unauthorized_client", 700016,
                             f"Application with identifier '{client_id}' was not found in the directory "
                             f"'{tenant.tenant_id}'.")
        scopes = tuple(form.get("scope", "").split())
        self._resource(scopes, authority)  # refuse a resource of another cloud now, as Entra does
        alphabet = string.ascii_uppercase + string.digits
        with self.entra._lock:
            flow = DeviceCode(device_code=secrets.token_urlsafe(48),
                              user_code="".join(secrets.choice(alphabet) for _ in range(9)),
                              tenant_id=tenant.tenant_id, client_id=client_id, scopes=scopes, authority=authority,
                              expires_at=self.entra.clock() + _LIFETIME)
            self._codes[flow.device_code] = flow
        return {"user_code": flow.user_code, "device_code": flow.device_code, "verification_uri": verification_uri,
                "expires_in": int(_LIFETIME.total_seconds()), "interval": self.interval,
                "message": f"To sign in, use a web browser to open the page {verification_uri} and enter the code "
                           f"{flow.user_code} to authenticate."}

    def redeem(self, tenant: Tenant, form: dict[str, str], *, authority: str) -> dict[str, Any]:
        """The token endpoint's answer to a device-code or refresh-token grant (the caller checked the grant)."""
        from sentinel_signl4_emulators.entra.model import EntraError

        with self.entra._lock:
            if form.get("grant_type") == DEVICE_CODE_GRANT:
                flow = self._codes.get(form.get("device_code", ""))
                if flow is None or flow.tenant_id != tenant.tenant_id or flow.redeemed:
                    raise EntraError(400, "invalid_grant", 70000,
                                     "The provided value for the input parameter 'device_code' is not valid.")
                if flow.expires_at <= self.entra.clock():
                    raise EntraError(400, "expired_token", 70020,
                                     "The provided value for the input parameter 'device_code' is not valid. "
                                     "This device code has expired.")
                if flow.user is None:
                    raise EntraError(400, "authorization_pending", 70016,
                                     "OAuth 2.0 device flow error. Authorization is pending. Continue polling.")
                if flow.authority != authority:
                    raise EntraError(400, "invalid_grant", 70000, "The device code was issued by another authority.")
                flow.redeemed = True
                client_id, user, scopes = flow.client_id, flow.user, flow.scopes
            else:
                held = self._refresh.pop(form.get("refresh_token", ""), None)
                if held is None or held.tenant_id != tenant.tenant_id or held.authority != authority:
                    raise EntraError(400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
                client_id, user, scopes = held.client_id, held.user, tuple(form.get("scope", "").split())
            resource = self._resource(scopes, authority)
            access = self.entra.issue_user_token(tenant.tenant_id, client_id, user, resource, authority=authority)
            refresh = secrets.token_urlsafe(48)
            self._refresh[refresh] = _RefreshToken(tenant.tenant_id, client_id, user, authority)
        now = int(self.entra.clock().timestamp())
        claims = {"iss": f"{authority}/{tenant.tenant_id}/v2.0", "aud": client_id, "tid": tenant.tenant_id,
                  "oid": user.object_id, "sub": user.object_id, "preferred_username": user.user_principal_name,
                  "name": user.display_name, "iat": now, "nbf": now, "exp": now + 3600, "ver": "2.0"}
        client_info = {"uid": user.object_id, "utid": tenant.tenant_id}
        return {"token_type": "Bearer", "scope": " ".join(s for s in scopes if s not in OIDC_SCOPES),
                "expires_in": access.expires_in, "ext_expires_in": access.ext_expires_in,
                "access_token": access.access_token, "refresh_token": refresh,
                "id_token": f"{_b64(json.dumps({'typ': 'JWT', 'alg': 'none'}))}.{_b64(json.dumps(claims))}.",
                "client_info": _b64(json.dumps(client_info))}

    def _resource(self, scopes: tuple[str, ...], authority: str) -> str:
        """The one resource of ``scopes`` (``<resource>/.default``), which must be one of the authority's cloud."""
        wanted = tuple(s for s in scopes if s.lower() not in OIDC_SCOPES)
        return self.entra.resource_of(" ".join(wanted), authority=authority)


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
