"""When a connector's credential stops working: a certificate's notAfter, or a client secret's configured date.

Entra ID does not tell a client when its secret expires (only the app registration shows it), so the operator
copies the date into ``[connectors.azure.credential] expires``. A certificate carries its own ``notAfter``, read
from the file on every check so that a rotated file is noticed without a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

__all__ = ["CredentialExpiry", "certificate_not_after", "credential_expiry"]


@dataclass(frozen=True, slots=True)
class CredentialExpiry:
    at: datetime
    what: str  # "client secret" or "certificate <file name>"


def credential_expiry(*, secret_expires: date | None = None, certificate_path: str | None = None,
                      certificate_password: str | None = None) -> CredentialExpiry | None:
    """The earliest known expiry of a credential (the configured secret date, the certificate file's ``notAfter``),
    or None when nothing is known. Raises ``ValueError`` (with the file name, never its content) when a certificate
    file cannot be read."""
    found: list[CredentialExpiry] = []
    if secret_expires is not None:
        # The date Entra shows; the secret is treated as gone from the start of that day (UTC).
        found.append(CredentialExpiry(datetime.combine(secret_expires, time(0), UTC), "client secret"))
    if certificate_path:
        found.append(CredentialExpiry(certificate_not_after(Path(certificate_path), certificate_password),
                                      f"certificate {Path(certificate_path).name}"))
    return min(found, key=lambda e: e.at) if found else None


def certificate_not_after(path: Path, password: str | None = None) -> datetime:
    """The earliest ``notAfter`` of the certificates in ``path`` (PEM, or PKCS#12 as azure-identity accepts)."""
    from cryptography import x509  # loaded only when a certificate is configured
    from cryptography.hazmat.primitives.serialization import pkcs12

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
