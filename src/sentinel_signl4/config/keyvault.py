"""``${keyvault:https://<vault>.vault.azure.net/secrets/<name>[/<version>]}`` references, read with
azure-keyvault-secrets.

The identity: ``[keyvault]`` when present (typically a managed identity), else, for a reference inside a connector's
table, that connector's own ``azure.credential`` (which must not itself come from Key Vault). Every reference is
read when the config is loaded; ``run`` loads the config again every ``[keyvault] refresh_interval`` and after a
connector's credential is rejected, and restarts the connectors with the new values when one changed
(runner_reload.py).
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from sentinel_signl4.config.schema import CredentialConfig, KeyVaultConfig

__all__ = ["KeyVaultReadError", "SecretRef", "parse_ref", "read_references"]

_PATH = re.compile(r"^/secrets/(?P<name>[0-9A-Za-z-]{1,127})(?:/(?P<version>[0-9A-Za-z]{1,64}))?/?$")
_CONNECTOR = re.compile(r"^connectors\[(\d+)\]")
_TIMEOUT = 60.0


class KeyVaultReadError(ValueError):
    """A reference could not be read; the message names the reference and the reason, never a value."""

    def __init__(self, message: str, target: str = "") -> None:
        super().__init__(message)
        self.target = target


@dataclass(frozen=True, slots=True)
class SecretRef:
    vault_url: str
    name: str
    version: str | None

    def __str__(self) -> str:
        tail = f"/{self.version}" if self.version else ""
        return f"{self.vault_url}/secrets/{self.name}{tail}"


def parse_ref(target: str) -> SecretRef:
    parts = urlsplit(target)
    match = _PATH.match(parts.path)
    if parts.scheme != "https" or not parts.netloc or match is None or parts.query or parts.fragment:
        raise KeyVaultReadError(f"${{keyvault:{target}}} must look like "
                                "https://<vault>.vault.azure.net/secrets/<name>[/<version>]")
    return SecretRef(f"https://{parts.netloc}", match["name"], match["version"])


@dataclass(frozen=True, slots=True)
class _Identity:
    tenant_id: str
    credential: CredentialConfig
    authority_host: str | None
    verify_challenge_resource: bool


def read_references(refs: Mapping[str, str], data: Mapping[str, Any]) -> dict[str, str]:
    """Values of ``refs`` (target → config key of its first use), read with the identity ``data`` names for it.

    ``data`` is the config with every other reference resolved. Runs in its own thread and event loop, so it works
    from synchronous code and from inside a running loop alike."""
    ca_bundle = (data.get("tls") or {}).get("ca_bundle")
    plan: dict[str, tuple[SecretRef, _Identity]] = {t: (parse_ref(t), _identity(key, data)) for t, key in refs.items()}
    result: dict[str, str] = {}
    failure: list[BaseException] = []

    def work() -> None:
        try:
            result.update(asyncio.run(asyncio.wait_for(_read_all(plan, ca_bundle), _TIMEOUT)))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=work, name="keyvault-read", daemon=True)
    thread.start()
    thread.join()
    if failure:
        if isinstance(failure[0], KeyVaultReadError):
            raise failure[0]
        if isinstance(failure[0], TimeoutError):
            raise KeyVaultReadError(f"reading Key Vault secrets took longer than {_TIMEOUT:.0f}s") from None
        raise failure[0]
    return result


def _identity(key: str, data: Mapping[str, Any]) -> _Identity:
    try:
        settings = KeyVaultConfig.model_validate(data.get("keyvault") or {})
    except ValidationError as exc:
        raise KeyVaultReadError(f"[keyvault] is invalid: {exc.errors()[0]['msg']}") from None
    if settings.credential is not None:
        return _Identity(settings.tenant_id, settings.credential, settings.authority_host,
                         settings.verify_challenge_resource)
    match = _CONNECTOR.match(key)
    if match is None:
        raise KeyVaultReadError("a ${keyvault:…} reference outside a connector's table needs [keyvault] credential, "
                                "the identity that reads it")
    try:
        azure = data["connectors"][int(match.group(1))]["azure"]
        credential = CredentialConfig.model_validate(azure.get("credential") or {})
        endpoints = azure.get("endpoints") or {}
        return _Identity(str(azure["tenant_id"]), credential, endpoints.get("authority_host"),
                         settings.verify_challenge_resource)
    except (KeyError, TypeError, AttributeError, ValidationError):
        raise KeyVaultReadError("the connector's azure.credential is needed to read its ${keyvault:…} references "
                                "and is incomplete (or comes from Key Vault itself: set [keyvault] credential)"
                                ) from None


async def _read_all(plan: Mapping[str, tuple[SecretRef, _Identity]], ca_bundle: str | None) -> dict[str, str]:
    values: dict[str, str] = {}
    for target, (ref, who) in plan.items():
        try:
            values[target] = await _read_one(ref, who, ca_bundle)
        except KeyVaultReadError as exc:
            raise KeyVaultReadError(str(exc), target) from None
    return values


async def _read_one(ref: SecretRef, who: _Identity, ca_bundle: str | None) -> str:
    from azure.core.exceptions import (
        AzureError,
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
    )
    from azure.keyvault.secrets.aio import SecretClient

    from sentinel_signl4.clients.identity import auth_error_summary, build_credential

    cred = who.credential
    credential = build_credential(
        kind=cred.kind, tenant_id=who.tenant_id or None, client_id=cred.client_id,
        secret=cred.client_secret.get_secret_value() if cred.client_secret else None,
        cert_path=cred.certificate_path,
        cert_password=cred.certificate_password.get_secret_value() if cred.certificate_password else None,
        token_file=cred.token_file, authority_host=who.authority_host, ca_bundle=ca_bundle)
    options: dict[str, Any] = {"verify_challenge_resource": who.verify_challenge_resource}
    if ca_bundle:
        options["connection_verify"] = ca_bundle
    async with credential, SecretClient(ref.vault_url, credential, **options) as client:
        try:
            secret = await client.get_secret(ref.name, ref.version)
        except ResourceNotFoundError:
            raise KeyVaultReadError(f"Key Vault secret {ref} was not found (SecretNotFound)") from None
        except ClientAuthenticationError as exc:
            raise KeyVaultReadError(f"cannot read Key Vault secret {ref}: "
                                    f"{auth_error_summary(str(exc.message or exc))}") from None
        except HttpResponseError as exc:
            code = exc.error.code if exc.error is not None else None
            raise KeyVaultReadError(f"cannot read Key Vault secret {ref}: HTTP {exc.status_code}"
                                    f"{f' {code}' if code else ''}") from None
        except AzureError as exc:
            raise KeyVaultReadError(f"cannot reach Key Vault for secret {ref}: {type(exc).__name__}") from None
        except ValueError as exc:  # the client's own checks, e.g. a challenge resource for another domain
            raise KeyVaultReadError(f"cannot read Key Vault secret {ref}: {exc}") from None
    if secret.value is None:
        raise KeyVaultReadError(f"Key Vault secret {ref} has no value")
    return secret.value
