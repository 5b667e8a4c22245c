"""State of the Entra ID emulator: tenants, app registrations, issued access tokens.

No HTTP here (see ``entra.py`` for the wire format). The model decides *what* happens — which AADSTS error, which
token — so the same rules serve the token endpoint and in-process tests, and other emulators (ARM, Graph, Log
Analytics) call :meth:`EntraModel.validate_bearer` to authenticate their callers.

Access tokens are opaque random strings (clients never parse them, §4.1); the model remembers what each one is for.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from sentinel_signl4_emulators.entra.clouds import cloud_of_authority
from sentinel_signl4_emulators.entra.sign_in import DeviceSignIn

__all__ = [
    "JWT_BEARER",
    "KNOWN_RESOURCES",
    "AppCertificate",
    "AppRegistration",
    "BearerError",
    "BearerProblem",
    "EntraError",
    "EntraModel",
    "IssuedToken",
    "Tenant",
    "TokenInfo",
    "User",
    "normalize_audience",
    "unknown_tenant_error",
]

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

#: Resources (audiences) a client-credentials token can be requested for. Entra answers any other resource with
#: AADSTS500011; which resources exist is per tenant in reality, here it is a fixed set plus what tests add.
KNOWN_RESOURCES = frozenset(
    {
        "https://management.azure.com",
        "https://management.core.windows.net",
        "https://api.loganalytics.io",
        "https://api.loganalytics.azure.com",
        "https://graph.microsoft.com",
        "https://vault.azure.net",
    }
)


def normalize_audience(audience: str) -> str:
    """``https://management.azure.com/`` and ``https://management.azure.com`` are the same resource."""
    return audience.rstrip("/").lower()


@dataclass(slots=True)
class AppCertificate:
    """A certificate credential registered on an app (only its public part, as in the portal)."""

    certificate: x509.Certificate

    @property
    def sha1_thumbprint(self) -> bytes:
        return self.certificate.fingerprint(hashes.SHA1())  # noqa: S303 - x5t is defined as SHA-1 (RFC 7515)

    @property
    def sha256_thumbprint(self) -> bytes:
        return self.certificate.fingerprint(hashes.SHA256())

    @property
    def thumbprint_hex(self) -> str:
        """The upper-case hex SHA-1 thumbprint the Azure portal shows."""
        return self.sha1_thumbprint.hex().upper()


@dataclass(slots=True)
class AppRegistration:
    client_id: str
    display_name: str
    #: Object id of the app's service principal: what ARM error messages and comment authors show.
    object_id: str
    secrets: list[str] = field(default_factory=list)
    certificates: list[AppCertificate] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class User:
    """A directory user: what Sentinel fills an incident owner from and Graph ``/users/{id}`` returns."""

    object_id: str
    user_principal_name: str
    display_name: str
    mail: str | None = None


@dataclass(slots=True)
class Tenant:
    tenant_id: str
    apps: dict[str, AppRegistration] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)  # by object id


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What an issued access token stands for."""

    token: str
    tenant_id: str
    client_id: str
    #: The caller's principal: the app's service principal, or the user of a delegated (signed-in user) token.
    app_object_id: str
    app_display_name: str
    audience: str  # the resource as requested, without the "/.default" suffix
    expires_at: datetime
    #: ``https://host`` of the authority that issued it (a national cloud's, ``entra.clouds``); "" if unknown.
    authority: str = ""
    #: Set for a user's token (device-code sign-in), None for an app's.
    user_object_id: str | None = None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int
    ext_expires_in: int


class EntraError(Exception):
    """An OAuth error as Entra reports it (``error``, AADSTS code, message, HTTP status)."""

    def __init__(self, status: int, error: str, code: int, message: str) -> None:
        super().__init__(f"AADSTS{code}: {message}")
        self.status = status
        self.error = error
        self.code = code
        self.message = message


class BearerProblem(StrEnum):
    MISSING = "missing"
    INVALID = "invalid"
    EXPIRED = "expired"
    WRONG_AUDIENCE = "wrong_audience"


@dataclass(frozen=True, slots=True)
class BearerError:
    """Why an ``Authorization`` header was not accepted; each emulator renders it in its own error format."""

    problem: BearerProblem
    token: TokenInfo | None = None  # set for EXPIRED and WRONG_AUDIENCE


class EntraModel:
    """Tenants, apps and tokens. Thread-safe: the HTTPS server thread and the test thread share it."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        token_lifetime: timedelta = timedelta(seconds=3599),
    ) -> None:
        self.clock = clock
        self.token_lifetime = token_lifetime
        self.known_resources: set[str] = set(KNOWN_RESOURCES)
        self._tenants: dict[str, Tenant] = {}
        self._tokens: dict[str, TokenInfo] = {}
        self._lock = threading.RLock()
        #: Users' device-code sign-ins and their refresh tokens.
        self.device_sign_in = DeviceSignIn(self)

    # --- setup (control plane, seed, tests) ---------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self._tenants.clear()
            self._tokens.clear()
            self.known_resources = set(KNOWN_RESOURCES)
            self.device_sign_in.reset()

    def add_tenant(self, tenant_id: str | None = None) -> Tenant:
        with self._lock:
            tenant_id = (tenant_id or str(uuid.uuid4())).lower()
            return self._tenants.setdefault(tenant_id, Tenant(tenant_id))

    def register_app(
        self,
        tenant_id: str,
        *,
        client_id: str | None = None,
        display_name: str = "sentinel-signl4",
        secret: str | None = None,
        certificate_pem: bytes | str | None = None,
    ) -> AppRegistration:
        """Register an app in ``tenant_id`` (created if needed) with an optional secret and certificate."""
        with self._lock:
            tenant = self.add_tenant(tenant_id)
            app = AppRegistration(
                client_id=(client_id or str(uuid.uuid4())).lower(),
                display_name=display_name,
                object_id=str(uuid.uuid4()),
            )
            tenant.apps[app.client_id] = app
            if secret is not None:
                app.secrets.append(secret)
            if certificate_pem is not None:
                self.add_certificate(tenant_id, app.client_id, certificate_pem)
            return app

    def add_secret(self, tenant_id: str, client_id: str, secret: str) -> None:
        with self._lock:
            self._app(tenant_id, client_id).secrets.append(secret)

    def remove_secret(self, tenant_id: str, client_id: str, secret: str) -> None:
        """Rotate a secret out: tokens already issued stay valid, new requests with it fail (AADSTS7000215)."""
        with self._lock:
            self._app(tenant_id, client_id).secrets.remove(secret)

    def add_certificate(self, tenant_id: str, client_id: str, certificate_pem: bytes | str) -> AppCertificate:
        """Register the public certificate of a PEM bundle (a private key in the bundle is ignored)."""
        data = certificate_pem.encode() if isinstance(certificate_pem, str) else certificate_pem
        cert = AppCertificate(x509.load_pem_x509_certificate(data))
        with self._lock:
            self._app(tenant_id, client_id).certificates.append(cert)
        return cert

    def add_user(
        self,
        tenant_id: str,
        *,
        user_principal_name: str,
        display_name: str,
        mail: str | None = None,
        object_id: str | None = None,
    ) -> User:
        with self._lock:
            tenant = self.add_tenant(tenant_id)
            user = User(
                object_id=(object_id or str(uuid.uuid4())).lower(),
                user_principal_name=user_principal_name,
                display_name=display_name,
                mail=mail,
            )
            tenant.users[user.object_id] = user
            return user

    def find_user(self, tenant_id: str, reference: str) -> User | None:
        """A user of ``tenant_id`` by object id, user principal name or mail (case-insensitive)."""
        wanted = reference.strip().lower()
        with self._lock:
            tenant = self._tenants.get(tenant_id.lower())
            if tenant is None or not wanted:
                return None
            for user in tenant.users.values():
                if wanted in (user.object_id, user.user_principal_name.lower(), (user.mail or "").lower()):
                    return user
        return None

    def users(self, tenant_id: str) -> list[User]:
        with self._lock:
            tenant = self._tenants.get(tenant_id.lower())
            return list(tenant.users.values()) if tenant else []

    def tenants(self) -> list[Tenant]:
        with self._lock:
            return list(self._tenants.values())

    def find_app(self, client_id: str) -> AppRegistration | None:
        """The app with ``client_id`` in whichever tenant registered it."""
        with self._lock:
            for tenant in self._tenants.values():
                if client_id.lower() in tenant.apps:
                    return tenant.apps[client_id.lower()]
        return None

    def has_tenant(self, tenant_id: str) -> bool:
        with self._lock:
            return tenant_id.lower() in self._tenants

    def tokens(self) -> list[TokenInfo]:
        with self._lock:
            return list(self._tokens.values())

    def revoke_tokens(self, client_id: str | None = None) -> int:
        """Forget issued tokens (all, or one app's) so callers see 401 InvalidAuthenticationToken."""
        with self._lock:
            doomed = [t for t, info in self._tokens.items() if client_id is None or info.client_id == client_id]
            for token in doomed:
                del self._tokens[token]
            return len(doomed)

    # --- token endpoint ------------------------------------------------------------------------------------------

    def issue_token(self, tenant_id: str, form: dict[str, str], *, token_endpoint: str) -> IssuedToken:
        """Run the v2 client-credentials grant on an already-decoded form; raise :class:`EntraError` on failure.

        ``token_endpoint`` is the URL the request was sent to: a client assertion's ``aud`` must name it.
        The order of checks follows what Entra reports first for a request with several problems [unverified].
        """
        with self._lock:
            tenant = self._tenants.get(tenant_id.lower())
            if tenant is None:
                raise unknown_tenant_error(tenant_id)
            grant_type = form.get("grant_type")
            if grant_type != "client_credentials":
                raise EntraError(
                    400, "unsupported_grant_type", 70003,
                    f"The app requested an unsupported grant type '{grant_type}'.",
                )
            client_id = form.get("client_id", "").lower()
            if not client_id:
                raise EntraError(
                    400, "invalid_request", 900144,
                    "The request body must contain the following parameter: 'client_id'.",
                )
            app = tenant.apps.get(client_id)
            if app is None:
                raise EntraError(
                    400, "unauthorized_client", 700016,
                    f"Application with identifier '{client_id}' was not found in the directory '{tenant_id}'. "
                    "This can happen if the application has not been installed by the administrator of the "
                    "tenant or consented to by any user in the tenant. You may have sent your authentication "
                    "request to the wrong tenant.",
                )
            authority = _origin_of(token_endpoint)
            audience = self.resource_of(form.get("scope", ""), authority=authority)
            self._authenticate(app, form, token_endpoint)
            return self._issue(TokenInfo(
                token=secrets.token_urlsafe(48),
                tenant_id=tenant.tenant_id,
                client_id=app.client_id,
                app_object_id=app.object_id,
                app_display_name=app.display_name,
                audience=audience,
                expires_at=self.clock() + self.token_lifetime,
                authority=authority,
            ))

    def tenant(self, tenant_id: str) -> Tenant:
        """``tenant_id``'s tenant; AADSTS90002 for an unknown one."""
        with self._lock:
            tenant = self._tenants.get(tenant_id.lower())
        if tenant is None:
            raise unknown_tenant_error(tenant_id)
        return tenant

    def issue_user_token(self, tenant_id: str, client_id: str, user: User, resource: str, *,
                         authority: str) -> IssuedToken:
        """An access token for ``user`` signed in through ``client_id`` (``sign_in``), for ``resource``."""
        with self._lock:
            return self._issue(TokenInfo(
                token=secrets.token_urlsafe(48), tenant_id=tenant_id.lower(), client_id=client_id,
                app_object_id=user.object_id, app_display_name=user.display_name, audience=resource,
                expires_at=self.clock() + self.token_lifetime, authority=authority, user_object_id=user.object_id))

    def _issue(self, info: TokenInfo) -> IssuedToken:
        self._tokens[info.token] = info
        lifetime = int(self.token_lifetime.total_seconds())
        return IssuedToken(access_token=info.token, expires_in=lifetime, ext_expires_in=lifetime)

    def resource_of(self, scope: str, *, authority: str = "") -> str:
        """The resource of a token request's ``scope`` (one ``<resource>/.default``), known to ``authority``'s
        cloud: a national cloud's authority issues tokens for that cloud's resources only (``entra.clouds``)."""
        return self._audience(scope, authority)

    def _audience(self, scope: str, authority: str = "") -> str:
        scopes = scope.split()
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            # Client credentials take exactly one "<resource>/.default" scope. The exact AADSTS code for a missing
            # "/.default" (70011 vs 1002012) is unverified; 70011 is the documented invalid_scope one.
            raise EntraError(
                400, "invalid_scope", 70011,
                f"The provided request must include a 'scope' input parameter. The provided value for the input "
                f"parameter 'scope' is not valid. The scope {scope} is not valid.",
            )
        resource = scopes[0].removesuffix("/.default")
        cloud = cloud_of_authority(authority.split("://", 1)[-1]) if authority else None
        known = cloud.resources if cloud is not None else self.known_resources
        if normalize_audience(resource) not in known:
            # Wording of AADSTS500011 as commonly reported [unverified].
            raise EntraError(
                400, "invalid_resource", 500011,
                f"The resource principal named {resource} was not found in the tenant. This can happen if the "
                "application has not been installed by the administrator of the tenant or consented to by any "
                "user in the tenant. You might have sent your authentication request to the wrong tenant.",
            )
        return resource

    def _authenticate(self, app: AppRegistration, form: dict[str, str], token_endpoint: str) -> None:
        if "client_assertion" in form:
            if form.get("client_assertion_type") != JWT_BEARER:
                raise EntraError(
                    400, "invalid_request", 90014,
                    "The request body must contain the following parameter: 'client_assertion_type'.",
                )
            _verify_assertion(app, form["client_assertion"], token_endpoint, self.clock())
            return
        secret = form.get("client_secret")
        if not secret:
            raise EntraError(
                401, "invalid_client", 7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )
        if not any(secrets.compare_digest(secret, known) for known in app.secrets):
            raise EntraError(
                401, "invalid_client", 7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
                f"value, not the client secret ID, for a secret added to app '{app.client_id}'.",
            )

    # --- resource side -------------------------------------------------------------------------------------------

    def validate_bearer(self, header: str | None, audience: str | Iterable[str]) -> TokenInfo | BearerError:
        """Check an ``Authorization`` header for a resource accepting ``audience`` (one or several)."""
        if not header or not header.strip():
            return BearerError(BearerProblem.MISSING)
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return BearerError(BearerProblem.INVALID)
        with self._lock:
            info = self._tokens.get(token.strip())
        if info is None:
            return BearerError(BearerProblem.INVALID)
        if info.expires_at <= self.clock():
            return BearerError(BearerProblem.EXPIRED, info)
        accepted = {normalize_audience(audience)} if isinstance(audience, str) else set(
            map(normalize_audience, audience)
        )
        if normalize_audience(info.audience) not in accepted:
            return BearerError(BearerProblem.WRONG_AUDIENCE, info)
        return info

    def _app(self, tenant_id: str, client_id: str) -> AppRegistration:
        tenant = self._tenants.get(tenant_id.lower())
        app = tenant.apps.get(client_id.lower()) if tenant else None
        if app is None:
            raise KeyError(f"no app {client_id} in tenant {tenant_id}")
        return app


def _origin_of(url: str) -> str:
    """``https://host[:port]`` of ``url``."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def unknown_tenant_error(tenant_id: str) -> EntraError:
    """AADSTS90002, returned by the token endpoint and the OIDC metadata endpoint for an unknown tenant."""
    return EntraError(
        400, "invalid_request", 90002,
        f"Tenant '{tenant_id}' not found. Check to make sure you have the correct tenant ID and are signing into "
        "the correct cloud. Check with your subscription administrator, this may happen if there are no active "
        "subscriptions for the tenant.",
    )


# --- client assertions (RFC 7523) -------------------------------------------------------------------------------


def _invalid_assertion(code: int, message: str) -> EntraError:
    # invalid_client is a 401 (RFC 6749 §5.2). AADSTS700023 wording is from a reported MSAL.NET trace; 700027,
    # 700021, 700024 and 50027 wordings are as commonly reported and unverified.
    return EntraError(401, "invalid_client", code, message)


def _b64url_decode(part: str) -> bytes:
    # azure-identity pads its segments with '=' (aad_client_base.py); strict JWT parsers would reject that, Entra
    # accepts it — so must we.
    padded = part.rstrip("=") + "=" * (-len(part.rstrip("=")) % 4)
    return base64.urlsafe_b64decode(padded)


def _verify_assertion(app: AppRegistration, assertion: str, token_endpoint: str, now: datetime) -> None:
    try:
        header_b64, payload_b64, signature_b64 = assertion.split(".")
        header: dict[str, Any] = json.loads(_b64url_decode(header_b64))
        claims: dict[str, Any] = json.loads(_b64url_decode(payload_b64))
        signature = _b64url_decode(signature_b64)
    except (ValueError, binascii.Error) as exc:
        raise _invalid_assertion(50027, "JWT token is invalid or malformed.") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _invalid_assertion(50027, "JWT token is invalid or malformed.")
    cert = _certificate_for(app, header)
    public_key = cert.certificate.public_key()
    alg = header.get("alg")
    if not isinstance(public_key, rsa.RSAPublicKey) or alg not in ("RS256", "PS256"):
        raise _invalid_assertion(700027, f"Client assertion failed signature validation. Unsupported alg '{alg}'.")
    pad: padding.AsymmetricPadding = (
        padding.PKCS1v15()
        if alg == "RS256"
        else padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    )
    signed = f"{header_b64}.{payload_b64}".encode()
    try:
        public_key.verify(signature, signed, pad, hashes.SHA256())
    except InvalidSignature as exc:
        raise _invalid_assertion(700027, "Client assertion failed signature validation.") from exc
    if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
        raise _invalid_assertion(
            700021, "Client assertion application identifier doesn't match 'client_id' parameter.",
        )
    if claims.get("aud") != token_endpoint:
        raise _invalid_assertion(
            700023,
            "Client assertion audience claim does not match Realm issuer. Review the documentation at "
            "https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials .",
        )
    timestamp = now.timestamp()
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not isinstance(exp, int | float) or exp <= timestamp or (isinstance(nbf, int | float) and nbf > timestamp + 300):
        raise _invalid_assertion(700024, "Client assertion is not within its valid time range.")


def _certificate_for(app: AppRegistration, header: dict[str, Any]) -> AppCertificate:
    wanted_sha256, wanted_sha1 = header.get("x5t#S256"), header.get("x5t")
    for cert in app.certificates:
        try:
            if isinstance(wanted_sha256, str) and _b64url_decode(wanted_sha256) == cert.sha256_thumbprint:
                return cert
            if isinstance(wanted_sha1, str) and _b64url_decode(wanted_sha1) == cert.sha1_thumbprint:
                return cert
        except (ValueError, binascii.Error):
            break
    key_id = wanted_sha256 or wanted_sha1
    raise _invalid_assertion(
        700027,
        f"The certificate with identifier used to sign the client assertion is not registered on application. "
        f"[Reason - The key was not found., Thumbprint of key used by client: '{key_id}'].",
    )
