"""Wire format of the Entra ID emulator (Microsoft identity platform v2 endpoints).

* ``POST /{tenant}/oauth2/v2.0/token`` — client credentials with ``client_secret`` (form or HTTP Basic) or a
  certificate-signed ``client_assertion``. What the async azure-identity credentials call (reference §5.3).
  Also a user's device-code grant and refresh tokens (``sign_in``).
* ``POST /{tenant}/oauth2/v2.0/devicecode`` — start a device-code sign-in (``sign_in``).
* ``GET /{tenant}/v2.0/.well-known/openid-configuration`` — what MSAL (the sync credentials) reads first.
* ``GET /{tenant}/discovery/v2.0/keys`` — the ``jwks_uri`` of that document (empty: tokens are opaque).
* ``GET /common/discovery/instance`` — MSAL instance discovery, for clients pointed at it explicitly.

The authority is the host a request was sent to: a national cloud's (``login.microsoftonline.us`` …,
``entra.clouds``) issues tokens for that cloud's resources and says so in its metadata; any other is the public one.

Errors carry the documented AADSTS body: ``error``, ``error_description`` (with trace/correlation/timestamp
lines), ``error_codes``, ``timestamp``, ``trace_id``, ``correlation_id``, ``error_uri`` (reference §4.1).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime
from typing import Final
from urllib.parse import parse_qsl, unquote_plus

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sentinel_signl4_emulators.entra.clouds import cloud_of_authority
from sentinel_signl4_emulators.entra.model import EntraError, EntraModel, unknown_tenant_error
from sentinel_signl4_emulators.entra.sign_in import DEVICE_CODE_GRANT

__all__ = ["entra_routes"]

_NO_STORE: Final = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}


def entra_routes(entra: EntraModel) -> list[BaseRoute]:
    """Routes under ``/{tenant}``; mount them *last* so the tenant segment cannot shadow other services."""
    api = _EntraApi(entra)
    return [
        Route("/common/discovery/instance", api.instance_discovery, methods=["GET"]),
        Route("/{tenant}/oauth2/v2.0/token", api.token, methods=["POST"]),
        Route("/{tenant}/oauth2/v2.0/devicecode", api.device_code, methods=["POST"]),
        Route("/{tenant}/v2.0/.well-known/openid-configuration", api.openid_configuration, methods=["GET"]),
        Route("/{tenant}/discovery/v2.0/keys", api.keys, methods=["GET"]),
    ]


class _EntraApi:
    def __init__(self, entra: EntraModel) -> None:
        self.entra = entra

    async def token(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        form = await _token_form(request)
        endpoint = f"{_origin(request)}{request.url.path}"
        try:
            if form.get("grant_type") in (DEVICE_CODE_GRANT, "refresh_token"):
                answer = self.entra.device_sign_in.redeem(self.entra.tenant(tenant), form,
                                                          authority=_origin(request))
                return JSONResponse(answer, headers=_NO_STORE)
            issued = self.entra.issue_token(tenant, form, token_endpoint=endpoint)
        except EntraError as exc:
            return _error_response(exc, request)
        body = {
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "ext_expires_in": issued.ext_expires_in,
            "access_token": issued.access_token,
        }
        return JSONResponse(body, headers=_NO_STORE)

    async def device_code(self, request: Request) -> Response:
        cloud = cloud_of_authority(request.url.netloc)
        try:
            answer = self.entra.device_sign_in.start(
                self.entra.tenant(request.path_params["tenant"]), await _token_form(request),
                authority=_origin(request),
                verification_uri=cloud.device_login_uri if cloud else "https://microsoft.com/devicelogin")
        except EntraError as exc:
            return _error_response(exc, request)
        return JSONResponse(answer, headers=_NO_STORE)

    async def openid_configuration(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        if not self.entra.has_tenant(tenant):
            return _error_response(unknown_tenant_error(tenant), request)
        base = f"{_origin(request)}/{tenant}"
        cloud = cloud_of_authority(request.url.netloc)
        # Field set of the real document (reference §4.3); MSAL needs authorization_endpoint and token_endpoint
        # and derives the tenant from the token endpoint's first path segment.
        document = {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "name", "tid", "ver", "oid"],
            "kerberos_endpoint": f"{base}/kerberos",
            "tenant_region_scope": "EU",
            "cloud_instance_name": cloud.instance_name if cloud else "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": cloud.graph_host if cloud else "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }
        return JSONResponse(document)

    async def keys(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        if not self.entra.has_tenant(tenant):
            return _error_response(unknown_tenant_error(tenant), request)
        return JSONResponse({"keys": []})

    async def instance_discovery(self, request: Request) -> Response:
        authorize = request.query_params.get("authorization_endpoint", "")
        # MSAL drops the port from this parameter (reference §4.3), so answer with our own origin.
        path = authorize.split("://", 1)[-1].split("/")
        tenant = path[1] if len(path) > 1 and path[1] else "common"
        origin = _origin(request)
        host = request.url.netloc
        return JSONResponse(
            {
                "tenant_discovery_endpoint": f"{origin}/{tenant}/v2.0/.well-known/openid-configuration",
                "api-version": "1.1",
                "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
            }
        )


async def _token_form(request: Request) -> dict[str, str]:
    """The form fields; a ``client_secret_basic`` header supplies client id and secret (RFC 6749 §2.3.1)."""
    raw = (await request.body()).decode("utf-8", errors="replace")
    content_type = request.headers.get("content-type", "")
    form = dict(parse_qsl(raw, keep_blank_values=True)) if "x-www-form-urlencoded" in content_type else {}
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic" and credentials:
        try:
            client_id, _, secret = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return form
        form.setdefault("client_id", unquote_plus(client_id))
        form.setdefault("client_secret", unquote_plus(secret))
    return form


def _origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _error_response(error: EntraError, request: Request) -> Response:
    now = datetime.now(UTC)
    timestamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
    trace_id = str(uuid.uuid4())
    # Entra echoes the client's client-request-id (MSAL sends one) as the correlation id.
    correlation_id = request.headers.get("client-request-id") or str(uuid.uuid4())
    description = (
        f"AADSTS{error.code}: {error.message}\r\nTrace ID: {trace_id}\r\n"
        f"Correlation ID: {correlation_id}\r\nTimestamp: {timestamp}"
    )
    body = {
        "error": error.error,
        "error_description": description,
        "error_codes": [error.code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"https://login.microsoftonline.com/error?code={error.code}",
    }
    return JSONResponse(body, status_code=error.status, headers=_NO_STORE)
