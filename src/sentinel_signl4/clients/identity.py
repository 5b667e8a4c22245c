"""Entra ID credentials (azure-identity, async) and the :class:`TokenProvider` the clients ask for bearer tokens.

The credentials are azure-identity's own, so token caching and refresh-before-expiry are theirs. What we add is
the error contract: a rejected credential becomes :class:`AuthError` whose message is the AADSTS code and its first
sentence (no trace ids, no correlation blobs, never the secret); a network failure becomes :class:`TransientError`.

Against a local emulator, pass ``authority_host="https://localhost:8443"`` and ``ca_bundle=<emulator CA>``: the
async ``ClientSecretCredential`` then POSTs straight to ``{authority}/{tenant}/oauth2/v2.0/token`` with no
discovery (shared/reference/microsoft-apis.md §5.3).
"""

from __future__ import annotations

import asyncio
import re
from enum import StrEnum
from types import TracebackType
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.identity.aio import (
    CertificateCredential,
    ClientSecretCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)

from sentinel_signl4.clients.http import tls_failure
from sentinel_signl4.errors import AuthError, PermanentError, RateLimitedError, RemoteError, TransientError
from sentinel_signl4.redact import Redactor, SecretLike, reveal

__all__ = [
    "CredentialKind",
    "TokenProvider",
    "auth_error_summary",
    "build_credential",
]

# azure-identity's defaults are 10 retries and 300 s socket timeouts: far too patient for a poller that runs every
# minute. Our own retry policy sits above the token call, so the credential only smooths single hiccups.
_PIPELINE_OPTIONS: dict[str, Any] = {"retry_total": 2, "connection_timeout": 10, "read_timeout": 30}

_AADSTS = re.compile(r"(AADSTS\d+):\s*(.*?\.)(?=\s|$)", re.DOTALL)


class CredentialKind(StrEnum):
    """How the connector authenticates to Entra ID."""

    CLIENT_SECRET = "client_secret"
    CERTIFICATE = "certificate"
    MANAGED_IDENTITY = "managed_identity"
    WORKLOAD_IDENTITY = "workload_identity"


def build_credential(
    *,
    kind: CredentialKind | str,
    tenant_id: str | None = None,
    client_id: str | None = None,
    secret: str | SecretLike | None = None,
    cert_path: str | None = None,
    cert_password: str | SecretLike | None = None,
    token_file: str | None = None,
    authority_host: str | None = None,
    ca_bundle: str | None = None,
) -> AsyncTokenCredential:
    """Build the azure-identity async credential for ``kind``.

    ``authority_host`` is a full ``https://host[:port]`` URL (azure-identity rejects anything else); when omitted,
    ``AZURE_AUTHORITY_HOST`` or the public cloud applies. ``ca_bundle`` is passed as ``connection_verify`` to the
    credential's own HTTP pipeline. Raises :class:`ValueError` when a required argument is missing.
    """
    kind = CredentialKind(kind)
    options: dict[str, Any] = dict(_PIPELINE_OPTIONS)
    if ca_bundle:
        options["connection_verify"] = ca_bundle
    if authority_host:
        options["authority"] = authority_host
    if kind is CredentialKind.CLIENT_SECRET:
        plain_secret = reveal(secret)
        tenant, client = _require(kind, tenant_id=tenant_id, client_id=client_id)
        if not plain_secret:
            raise ValueError("client_secret credential needs a secret")
        return ClientSecretCredential(tenant, client, plain_secret, **options)
    if kind is CredentialKind.CERTIFICATE:
        tenant, client = _require(kind, tenant_id=tenant_id, client_id=client_id)
        if not cert_path:
            raise ValueError("certificate credential needs cert_path")
        password = reveal(cert_password)
        if password:
            options["password"] = password
        return CertificateCredential(tenant, client, certificate_path=cert_path, **options)
    if kind is CredentialKind.WORKLOAD_IDENTITY:
        tenant, client = _require(kind, tenant_id=tenant_id, client_id=client_id)
        if not token_file:
            raise ValueError("workload_identity credential needs token_file")
        return WorkloadIdentityCredential(
            tenant_id=tenant, client_id=client, token_file_path=token_file, **options
        )
    # Managed identity talks to a local metadata endpoint (IMDS, App Service): no authority, no custom CA.
    return ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()


def _require(kind: CredentialKind, *, tenant_id: str | None, client_id: str | None) -> tuple[str, str]:
    missing = [name for name, value in (("tenant_id", tenant_id), ("client_id", client_id)) if not value]
    if missing:
        raise ValueError(f"{kind.value} credential needs {' and '.join(missing)}")
    return str(tenant_id), str(client_id)


def auth_error_summary(message: str) -> str:
    """``"AADSTS7000215: Invalid client secret provided."`` from azure-identity's verbose message.

    Entra's descriptions run on with trace and correlation ids and timestamps; the code and its first sentence
    are what a human needs (the code is searchable). Falls back to the first line of the message.
    """
    match = _AADSTS.search(message)
    if match:
        return f"{match.group(1)}: {match.group(2).strip()}"
    first_line = message.strip().splitlines()[0] if message.strip() else "authentication failed"
    return first_line.removeprefix("Authentication failed: ")[:300]


class TokenProvider:
    """Bearer tokens for the clients, from an azure-identity async credential, with our error contract.

    azure-identity caches and refreshes tokens, so callers simply ask before every request. ``secrets`` are values
    to scrub from error messages (client secret, certificate password), in case a remote message ever echoes one.
    ``timeout`` bounds one token acquisition, azure-identity's own retries included. Tests may subclass and
    override :meth:`token` (e.g. to fetch from the emulator's token endpoint over an ASGI transport).
    """

    def __init__(
        self,
        credential: AsyncTokenCredential,
        *,
        secrets: tuple[str | SecretLike | None, ...] = (),
        timeout: float = 45.0,
    ) -> None:
        self._credential = credential
        self._redactor = Redactor(secrets)
        self._timeout = timeout

    async def __aenter__(self) -> TokenProvider:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self._credential).__name__})"

    async def token(self, scope: str) -> str:
        """An access token for ``scope``; raises :class:`AuthError`, :class:`RateLimitedError` or
        :class:`TransientError`."""
        try:
            async with asyncio.timeout(self._timeout):
                access = await self._credential.get_token(scope)
        except ClientAuthenticationError as exc:
            raise self._auth_failure(exc, scope) from exc
        except (ServiceRequestError, ServiceResponseError) as exc:
            if tls_failure(exc) is not None:
                raise PermanentError(self._redactor.redact(
                    f"entra: token for {scope} -> TLS handshake failed: {exc}; check the CA bundle"
                )) from exc
            raise TransientError(self._redactor.redact(f"entra: token for {scope} -> not obtained: {exc}")) from exc
        except HttpResponseError as exc:
            raise self._auth_failure(exc, scope) from exc
        except TimeoutError as exc:
            raise TransientError(f"entra: token for {scope} -> no answer within {self._timeout:g} s") from exc
        return access.token

    def _auth_failure(self, exc: HttpResponseError, scope: str) -> RemoteError:
        status = exc.status_code
        summary = self._redactor.redact(auth_error_summary(str(exc.message or exc)))
        message = f"entra: token for {scope} -> " + (f"HTTP {status}: " if status else "") + summary
        code = summary.split(":", 1)[0] if summary.startswith("AADSTS") else None
        if status == 429:
            return RateLimitedError(message, status=status, code=code)
        if status is not None and (status >= 500 or status == 408):
            return TransientError(message, status=status, code=code)
        return AuthError(message, status=status, code=code)

    async def close(self) -> None:
        """Close the credential's HTTP session."""
        await self._credential.close()
