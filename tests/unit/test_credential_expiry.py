"""A credential's expiry: a certificate's notAfter read from its file (PEM or PKCS#12), a client secret's date."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from sentinel_signl4.config import CredentialConfig
from sentinel_signl4.engine.credential_expiry import CredentialExpiry, certificate_not_after, credential_expiry

NOT_AFTER = datetime(2027, 3, 4, 5, 6, 7, tzinfo=UTC)


def make_certificate(not_after: datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sentinel-signl4 app")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_after - timedelta(days=365))
            .not_valid_after(not_after).sign(key, hashes.SHA256()))
    return key, cert


def test_notafter_of_a_pem_file_with_its_key(tmp_path: Path) -> None:
    key, cert = make_certificate(NOT_AFTER)
    path = tmp_path / "app.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM))
    assert certificate_not_after(path) == NOT_AFTER


def test_notafter_of_a_password_protected_pkcs12_file(tmp_path: Path) -> None:
    key, cert = make_certificate(NOT_AFTER)
    path = tmp_path / "app.pfx"
    path.write_bytes(pkcs12.serialize_key_and_certificates(
        b"app", key, cert, None, serialization.BestAvailableEncryption(b"pfx-password")))
    assert certificate_not_after(path, "pfx-password") == NOT_AFTER
    with pytest.raises(ValueError, match=r"app\.pfx holds no readable certificate"):
        certificate_not_after(path, "wrong")


def test_an_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"cannot read certificate file missing\.pem"):
        certificate_not_after(tmp_path / "missing.pem")


def test_the_earliest_of_a_configured_date_and_the_certificate_wins(tmp_path: Path) -> None:
    _key, cert = make_certificate(NOT_AFTER)
    path = tmp_path / "app.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    cred = CredentialConfig(kind="certificate", client_id="c", certificate_path=str(path))
    expiry = _expiry_of(cred)
    assert expiry is not None and (expiry.at, expiry.what) == (NOT_AFTER, "certificate app.pem")
    earlier = CredentialConfig(kind="client_secret", client_id="c", client_secret="s3cr3t-value",
                               expires=date(2026, 12, 24))
    expiry = _expiry_of(earlier)
    assert expiry is not None
    assert (expiry.at, expiry.what) == (datetime(2026, 12, 24, tzinfo=UTC), "client secret")
    assert _expiry_of(CredentialConfig(kind="managed_identity")) is None


def _expiry_of(cred: CredentialConfig) -> CredentialExpiry | None:
    """The plain values the connector's bootstrap passes for ``cred``."""
    return credential_expiry(
        secret_expires=cred.expires,
        certificate_path=cred.certificate_path if cred.kind == "certificate" else None,
        certificate_password=cred.certificate_password.get_secret_value() if cred.certificate_password else None)
