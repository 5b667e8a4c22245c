"""A local certificate authority for the HTTPS emulator server.

Real clients (azure-identity, MSAL, aiohttp, requests) refuse plain HTTP authorities, so the emulators are served over
TLS with a throw-away CA. :func:`ensure_certificates` writes ``ca.pem`` (trust this one: ``connection_verify=``,
``REQUESTS_CA_BUNDLE``, ``verify=``), ``server.pem`` and ``server.key`` into a directory, reusing them while they are
still valid so that a CA a user already trusts keeps working across runs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from sentinel_signl4_emulators.entra.clouds import HOSTS as NATIONAL_CLOUD_HOSTS

__all__ = ["SERVER_NAMES", "CertPaths", "ensure_certificates"]

#: Identities the server certificate is valid for: the emulators' own address, and the national clouds' hosts they
#: answer for when a client reaches them through a tunnelling proxy (``entra.clouds``).
SERVER_NAMES = ("127.0.0.1", "localhost", *NATIONAL_CLOUD_HOSTS)

# Regenerate a little before expiry so a long demo session never crosses the boundary.
_MIN_REMAINING = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class CertPaths:
    """Where the CA certificate, the server certificate chain and the server private key live."""

    ca: Path
    cert: Path
    key: Path


def ensure_certificates(directory: str | os.PathLike[str]) -> CertPaths:
    """Return valid CA and server certificate files in ``directory``, generating them when missing or unusable."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    paths = CertPaths(ca=root / "ca.pem", cert=root / "server.pem", key=root / "server.key")
    with _directory_lock(root):
        if not _usable(paths, datetime.now(UTC)):
            _generate(paths)
    return paths


def _generate(paths: CertPaths) -> None:
    ca = trustme.CA(organization_name="sentinel-signl4 emulator")
    leaf = ca.issue_cert(*SERVER_NAMES, common_name="sentinel-signl4 emulator")
    _write_atomically(paths.ca, ca.cert_pem.bytes(), mode=0o644)
    _write_atomically(paths.cert, b"".join(pem.bytes() for pem in leaf.cert_chain_pems), mode=0o644)
    _write_atomically(paths.key, leaf.private_key_pem.bytes(), mode=0o600)


def _usable(paths: CertPaths, now: datetime) -> bool:
    """True when all three files exist, belong together, cover our host names and are not about to expire."""
    try:
        ca = x509.load_pem_x509_certificate(paths.ca.read_bytes())
        server = x509.load_pem_x509_certificates(paths.cert.read_bytes())[0]
        key = serialization.load_pem_private_key(paths.key.read_bytes(), password=None)
        server.verify_directly_issued_by(ca)
        names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, TypeError, IndexError, x509.ExtensionNotFound, InvalidSignature):
        return False
    for cert in (ca, server):
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc - _MIN_REMAINING:
            return False
    covered = {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    covered |= set(names.get_values_for_type(x509.DNSName))
    if not set(SERVER_NAMES) <= covered:
        return False
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key.public_key().public_bytes(*spki) == server.public_key().public_bytes(*spki)


def _write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    # Readers (another test process, the CLI) must never see a half-written PEM.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


@contextlib.contextmanager
def _directory_lock(root: Path) -> Iterator[None]:
    """Serialise generation between processes sharing the directory (POSIX only; elsewhere best effort)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(root / ".lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
