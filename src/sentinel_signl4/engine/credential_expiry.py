"""When a connector's credential stops working: a certificate's notAfter, or a client secret's configured date.

Entra ID does not tell a client when its secret expires (only the app registration shows it), so the operator
copies the date into ``[connectors.azure.credential] expires``. A certificate carries its own ``notAfter``, read
from the file on every check so that a rotated file is noticed without a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from sentinel_signl4.config import CredentialConfig

__all__ = ["CredentialExpiry", "certificate_not_after", "credential_expiry"]


@dataclass(frozen=True, slots=True)
class CredentialExpiry:
    at: datetime
    what: str  # "client secret" or "certificate <file name>"


def credential_expiry(cred: CredentialConfig) -> CredentialExpiry | None:
    """The earliest known expiry of ``cred``, or None when nothing is known. Raises ``ValueError`` (with the file
    name, never its content) when a certificate file cannot be read."""
    found: list[CredentialExpiry] = []
    if cred.expires is not None:
        # The date Entra shows; the secret is treated as gone from the start of that day (UTC).
        found.append(CredentialExpiry(datetime.combine(cred.expires, time(0), UTC), "client secret"))
    if cred.kind == "certificate" and cred.certificate_path:
        password = cred.certificate_password.get_secret_value() if cred.certificate_password else None
        found.append(CredentialExpiry(certificate_not_after(Path(cred.certificate_path), password),
                                      f"certificate {Path(cred.certificate_path).name}"))
    return min(found, key=lambda e: e.at) if found else None


def certificate_not_after(path: Path, password: str | None = None) -> datetime:
    """The earliest ``notAfter`` of the certificates in ``path`` (PEM, or PKCS#12 as azure-identity accepts)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read certificate file {path.name}: {exc.strerror}") from None
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            _key, cert, extra = pkcs12.load_key_and_certificates(data, password.encode() if password else None)
            certs = [c for c in (cert, *extra) if c is not None]
    except ValueError:
        raise ValueError(f"certificate file {path.name} holds no readable certificate") from None
    if not certs:
        raise ValueError(f"certificate file {path.name} holds no certificate")
    return min(c.not_valid_after_utc for c in certs)
