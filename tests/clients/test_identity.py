"""build_credential for every kind, and the AADSTS summary of Entra's verbose errors."""

from __future__ import annotations

import pytest
from azure.identity.aio import (
    CertificateCredential,
    ClientSecretCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)
from pydantic import SecretStr

from sentinel_signl4.clients.identity import CredentialKind, TokenProvider, auth_error_summary, build_credential

TENANT = "7a2c1c5e-0f0b-4d3e-9a51-3c1c2f7b9e10"
CLIENT = "5b1e9a40-2d6f-4a8e-b7c3-0e9d8f7a6b5c"


async def test_client_secret_credential_points_at_the_authority() -> None:
    credential = build_credential(kind="client_secret", tenant_id=TENANT, client_id=CLIENT,
                                  secret=SecretStr("s3cret-value"), authority_host="https://localhost:8443")
    assert isinstance(credential, ClientSecretCredential)
    assert "s3cret-value" not in repr(TokenProvider(credential))
    await credential.close()


async def test_certificate_credential_loads_the_pem(tmp_path: pytest.TempPathFactory) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA(key_type=trustme.KeyType.RSA)  # azure-identity signs assertions with RS256
    cert = ca.issue_cert("sentinel-signl4.local", key_type=trustme.KeyType.RSA)
    pem = tmp_path / "app.pem"  # type: ignore[operator]
    cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
    credential = build_credential(kind=CredentialKind.CERTIFICATE, tenant_id=TENANT, client_id=CLIENT,
                                  cert_path=str(pem), authority_host="https://localhost:8443")
    assert isinstance(credential, CertificateCredential)
    await credential.close()


async def test_workload_identity_reads_its_token_file(tmp_path: pytest.TempPathFactory) -> None:
    token_file = tmp_path / "token"  # type: ignore[operator]
    token_file.write_text("federated-token")
    credential = build_credential(kind="workload_identity", tenant_id=TENANT, client_id=CLIENT,
                                  token_file=str(token_file), authority_host="https://localhost:8443",
                                  ca_bundle="/etc/ssl/certs/ca-certificates.crt")
    assert isinstance(credential, WorkloadIdentityCredential)
    await credential.close()


async def test_managed_identity_with_and_without_a_client_id() -> None:
    for client_id in (None, CLIENT):
        credential = build_credential(kind="managed_identity", client_id=client_id)
        assert isinstance(credential, ManagedIdentityCredential)
        await credential.close()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kind": "client_secret", "tenant_id": TENANT, "client_id": CLIENT}, "needs a secret"),
    ({"kind": "client_secret", "client_id": CLIENT, "secret": "x"}, "needs tenant_id"),
    ({"kind": "certificate", "tenant_id": TENANT, "client_id": CLIENT}, "needs cert_path"),
    ({"kind": "workload_identity", "tenant_id": TENANT}, "needs client_id"),
])
def test_missing_arguments_are_named(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_credential(**kwargs)  # type: ignore[arg-type]


def test_unknown_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="password"):
        build_credential(kind="password")


def test_aadsts_summary_is_the_code_and_first_sentence() -> None:
    verbose = ("Authentication failed: AADSTS700016: Application with identifier 'x' was not found in the "
               "directory 'y'. This can happen if the application has not been installed.\r\n"
               "Trace ID: 1\r\nCorrelation ID: 2\r\nTimestamp: 3")
    assert auth_error_summary(verbose) == (
        "AADSTS700016: Application with identifier 'x' was not found in the directory 'y'."
    )
    assert auth_error_summary("Authentication failed: something odd\nmore") == "something odd"
