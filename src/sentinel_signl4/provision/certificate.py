"""The connector's certificate credential, made by ``provision apply``: generated here, only its public part uploaded.

The key pair and a self-signed certificate are generated locally (RSA 2048, SHA-256) and written as one PEM file
(private key and certificate, what ``certificate_path`` takes) with mode 0600. Entra ID gets the certificate only:

* the first one through *Update application* (``PATCH /applications/{id}`` with ``keyCredentials``), because
  ``addKey`` refuses an app that has no valid certificate yet (learn.microsoft.com/graph/api/application-addkey);
* a renewal (less than ``RENEW_BEFORE`` left) through ``POST /applications/{id}/addKey``, with a proof of possession
  signed by the current key: a JWT with ``aud`` ``00000002-0000-0000-c000-000000000000``, ``iss`` the application's
  object id, and ``nbf``/``exp`` 10 minutes apart (the maximum the reference allows). The old certificate stays
  registered until it expires, so a running connector keeps signing in while the new file is rolled out.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

__all__ = ["PROOF_AUDIENCE", "RENEW_BEFORE", "LocalCertificate", "key_credential", "new_certificate", "proof_of",
           "read_certificate", "write_certificate"]

PROOF_AUDIENCE = "00000002-0000-0000-c000-000000000000"
RENEW_BEFORE = timedelta(days=30)


@dataclass(frozen=True)
class LocalCertificate:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    @property
    def thumbprint(self) -> str:
        """The SHA-1 thumbprint, upper-case hex: what Entra shows as ``customKeyIdentifier``."""
        return self.cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - the thumbprint is SHA-1

    @property
    def expires(self) -> datetime:
        return self.cert.not_valid_after_utc


def new_certificate(subject: str, days: int, now: datetime | None = None) -> LocalCertificate:
    start = (now or datetime.now(UTC)) - timedelta(minutes=5)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return LocalCertificate(key, cert)


def write_certificate(path: Path, local: LocalCertificate) -> None:
    """Private key and certificate in one PEM file, mode 0600, replaced atomically (never half written)."""
    data = local.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()) + local.cert.public_bytes(serialization.Encoding.PEM)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.chmod(scratch, 0o600)
    scratch.replace(path)


def read_certificate(path: Path) -> LocalCertificate | None:
    """The key pair in ``path``, None when there is no such file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path}: not an RSA private key")
    return LocalCertificate(key, x509.load_pem_x509_certificate(data))


def key_credential(local: LocalCertificate, display_name: str) -> dict[str, object]:
    """The keyCredential Graph takes: the DER certificate in base64, public part only."""
    der = local.cert.public_bytes(serialization.Encoding.DER)
    return {"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.b64encode(der).decode(),
            "displayName": display_name}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def proof_of(current: LocalCertificate, application_object_id: str, now: float | None = None) -> str:
    """The addKey proof of possession, signed with ``current``'s private key (RS256)."""
    issued = int(time.time() if now is None else now)
    thumbprint = current.cert.fingerprint(hashes.SHA1())  # noqa: S303 - x5t is SHA-1 (RFC 7515)
    header = {"alg": "RS256", "typ": "JWT", "x5t": _b64url(thumbprint)}
    claims = {"aud": PROOF_AUDIENCE, "iss": application_object_id, "nbf": issued, "exp": issued + 600}
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    signature = current.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"
