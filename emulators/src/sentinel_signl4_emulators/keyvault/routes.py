"""Azure Key Vault secrets: ``GET|PUT {vault}/secrets/{name}[/{version}]?api-version=7.4``.

The vault is the emulator's origin. Shapes (Key Vault REST reference, "Get Secret" / "Set Secret", api-version 7.4):

* 200 ``{"value", "id": "{vault}/secrets/{name}/{version}", "attributes": {"enabled", "created", "updated",
  "recoveryLevel", "recoverableDays"}, "tags"?}``; ``created``/``updated`` are Unix seconds.
* Errors are ``{"error": {"code", "message"}}``: 404 ``SecretNotFound``, 401 ``Unauthorized``, 400 ``BadParameter``.
* A request without a bearer token gets 401 with ``WWW-Authenticate: Bearer authorization="{authority}/{tenant}",
  resource="https://vault.azure.net"``: Key Vault's clients send the first request without a token and take the
  tenant and the resource from this challenge (azure-keyvault-secrets' ChallengeAuthPolicy).

Derived, not confirmed by an official source: the exact 401 and 400 message texts (taken from observed service
answers quoted in public issues) and the missing-``api-version`` answer. Disabled secrets, soft delete and
access policies (403) are not emulated.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sentinel_signl4_emulators.entra.model import BearerProblem, EntraModel, TokenInfo

__all__ = ["KEYVAULT_AUDIENCE", "KeyVaultModel", "keyvault_routes"]

KEYVAULT_AUDIENCE = "https://vault.azure.net"
_AUTHORITY = "https://login.microsoftonline.com"


@dataclass(slots=True)
class _Version:
    version: str
    value: str
    created: int
    tags: dict[str, str] = field(default_factory=dict)


class KeyVaultModel:
    """One vault's secrets with their versions. ``tenant_id`` is named in the 401 challenge. Thread-safe."""

    def __init__(self, tenant_id: str = "") -> None:
        self.tenant_id = tenant_id
        self._secrets: dict[str, list[_Version]] = {}
        self._reads: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self.tenant_id = ""
            self._secrets.clear()
            self._reads.clear()

    def set_secret(self, name: str, value: str, tags: dict[str, str] | None = None) -> str:
        """Add a new current version of ``name``; returns its version id."""
        version = _Version(uuid.uuid4().hex, value, int(time.time()), dict(tags or {}))
        with self._lock:
            self._secrets.setdefault(name.lower(), []).append(version)
        return version.version

    def get(self, name: str, version: str | None) -> _Version | None:
        with self._lock:
            versions = self._secrets.get(name.lower(), [])
            self._reads.append((name, version or ""))
            if not version:
                return versions[-1] if versions else None
            return next((v for v in versions if v.version == version), None)

    def reads(self) -> list[tuple[str, str]]:
        """Every GET so far, as ``(name, version or "")``."""
        with self._lock:
            return list(self._reads)


def keyvault_routes(model: KeyVaultModel, entra: EntraModel) -> list[Route]:
    api = _Api(model, entra)
    return [
        Route("/secrets/{name}", api.get, methods=["GET"]),
        Route("/secrets/{name}", api.put, methods=["PUT"]),
        Route("/secrets/{name}/{version}", api.get, methods=["GET"]),
    ]


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


class _Api:
    def __init__(self, model: KeyVaultModel, entra: EntraModel) -> None:
        self.model = model
        self.entra = entra

    def _check(self, request: Request) -> Response | None:
        if not request.query_params.get("api-version"):
            return _error(400, "BadParameter", "The 'api-version' query parameter is missing.")
        caller = self.entra.validate_bearer(request.headers.get("authorization"), KEYVAULT_AUDIENCE)
        if isinstance(caller, TokenInfo):
            return None
        challenge = (f'Bearer authorization="{_AUTHORITY}/{self.model.tenant_id}", '
                     f'resource="{KEYVAULT_AUDIENCE}"')
        message = {
            BearerProblem.MISSING: "AKV10000: Request is missing a Bearer or PoP token.",
            BearerProblem.EXPIRED: "AKV10022: Invalid audience or token expired.",
            BearerProblem.WRONG_AUDIENCE: "AKV10022: Invalid audience.",
        }.get(caller.problem, "AKV10032: Invalid issuer.")
        return _error(401, "Unauthorized", message, {"WWW-Authenticate": challenge})

    def _body(self, request: Request, name: str, found: _Version) -> JSONResponse:
        vault = f"{request.url.scheme}://{request.url.netloc}"
        body: dict[str, object] = {
            "value": found.value,
            "id": f"{vault}/secrets/{name}/{found.version}",
            "attributes": {"enabled": True, "created": found.created, "updated": found.created,
                           "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90},
        }
        if found.tags:
            body["tags"] = found.tags
        return JSONResponse(body)

    async def get(self, request: Request) -> Response:
        refused = self._check(request)
        if refused is not None:
            return refused
        name, version = request.path_params["name"], request.path_params.get("version")
        found = self.model.get(name, version)
        if found is None:
            what = f"{name}/{version}" if version else name
            return _error(404, "SecretNotFound", f"A secret with (name/id) {what} was not found in this key vault. "
                          "If you recently deleted this secret you may be able to recover it using the correct "
                          "recovery command. For help resolving this issue, please see "
                          "https://go.microsoft.com/fwlink/?linkid=2125182")
        return self._body(request, name, found)

    async def put(self, request: Request) -> Response:
        refused = self._check(request)
        if refused is not None:
            return refused
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("value"), str):
            return _error(400, "BadParameter", "Property 'value' is required.")
        name = request.path_params["name"]
        version = self.model.set_secret(name, body["value"], body.get("tags") or {})
        found = self.model.get(name, version)
        assert found is not None
        return self._body(request, name, found)
