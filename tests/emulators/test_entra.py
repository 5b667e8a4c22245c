"""Entra ID emulator in-process: client-credentials grant (secret, Basic, certificate assertion), AADSTS error
bodies, OIDC metadata, and bearer validation as other emulators use it."""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from emulators_world import ARM_SCOPE, LOGIN
from fake_clock import FakeClock
from sentinel_signl4_emulators.app import EmulatorState
from sentinel_signl4_emulators.entra.model import BearerProblem, TokenInfo
from sentinel_signl4_emulators.seed import DemoWorld, make_certificate

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def token_url(world: DemoWorld, tenant: str | None = None) -> str:
    return f"{LOGIN}/{tenant or world.tenant_id}/oauth2/v2.0/token"


def form(world: DemoWorld, **overrides: str | None) -> dict[str, str]:
    data: dict[str, str | None] = {
        "client_id": world.client_id, "client_secret": world.client_secret,
        "grant_type": "client_credentials", "scope": ARM_SCOPE,
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def assert_aadsts(response: httpx.Response, status: int, error: str, code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert "\r\nTrace ID: " in body["error_description"] and "\r\nCorrelation ID: " in body["error_description"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", body["timestamp"])
    uuid.UUID(body["trace_id"]), uuid.UUID(body["correlation_id"])
    assert body["error_uri"] == f"https://login.microsoftonline.com/error?code={code}"
    return body


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def assertion(pem: bytes, *, aud: str, iss: str, now: float, alg: str = "PS256", exp_in: int = 600,
              key: rsa.RSAPrivateKey | None = None, padded: bool = False) -> str:
    """A client assertion as MSAL builds it (x5t#S256 for PS256, x5t for RS256), dated by the emulator's clock
    (the token endpoint judges ``exp`` by its own time). ``padded`` keeps base64 '=' like azure-identity."""
    encode = (lambda data: base64.urlsafe_b64encode(data).decode()) if padded else b64url
    cert = x509.load_pem_x509_certificate(pem)
    signing_key = key or serialization.load_pem_private_key(pem, password=None)
    assert isinstance(signing_key, rsa.RSAPrivateKey)
    header = {"typ": "JWT", "alg": alg}
    if alg == "PS256":
        header["x5t#S256"] = b64url(cert.fingerprint(hashes.SHA256()))
    else:
        header["x5t"] = b64url(cert.fingerprint(hashes.SHA1()))
    claims = {"aud": aud, "iss": iss, "sub": iss, "jti": str(uuid.uuid4()), "nbf": int(now), "exp": int(now) + exp_in}
    signed = f"{encode(json.dumps(header).encode())}.{encode(json.dumps(claims).encode())}".encode()
    pad: padding.AsymmetricPadding = (
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
        if alg == "PS256" else padding.PKCS1v15()
    )
    return f"{signed.decode()}.{encode(signing_key.sign(signed, pad, hashes.SHA256()))}"


async def test_client_secret_grant_returns_an_opaque_bearer_token_recorded_with_its_audience(
    http: httpx.AsyncClient, world: DemoWorld, state: EmulatorState, clock: FakeClock
) -> None:
    response = await http.post(token_url(world), data=form(world))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token_type", "expires_in", "ext_expires_in", "access_token"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599
    assert response.headers["cache-control"].startswith("no-store")
    info = state.entra.validate_bearer(f"Bearer {body['access_token']}", "https://management.azure.com/")
    assert isinstance(info, TokenInfo)
    assert (info.tenant_id, info.client_id, info.audience) == (world.tenant_id, world.client_id,
                                                               "https://management.azure.com")
    assert info.expires_at == clock() + state.entra.token_lifetime


async def test_secret_in_http_basic_auth_is_accepted(http: httpx.AsyncClient, world: DemoWorld) -> None:
    response = await http.post(token_url(world), data=form(world, client_id=None, client_secret=None),
                               auth=(world.client_id, world.client_secret))
    assert response.status_code == 200, response.text


async def test_wrong_secret_is_401_aadsts7000215(http: httpx.AsyncClient, world: DemoWorld) -> None:
    response = await http.post(token_url(world), data=form(world, client_secret="not-it"),
                               headers={"client-request-id": "8d4b0d4f-8a5c-4c43-9a43-3b8cf0b6a1d2"})
    body = assert_aadsts(response, 401, "invalid_client", 7000215)
    assert "Invalid client secret provided" in body["error_description"]
    assert body["correlation_id"] == "8d4b0d4f-8a5c-4c43-9a43-3b8cf0b6a1d2"  # echoed like Entra does


async def test_missing_secret_is_401_aadsts7000218(http: httpx.AsyncClient, world: DemoWorld) -> None:
    response = await http.post(token_url(world), data=form(world, client_secret=None))
    assert_aadsts(response, 401, "invalid_client", 7000218)


async def test_unknown_client_is_400_aadsts700016(http: httpx.AsyncClient, world: DemoWorld) -> None:
    response = await http.post(token_url(world), data=form(world, client_id=str(uuid.uuid4())))
    body = assert_aadsts(response, 400, "unauthorized_client", 700016)
    assert f"was not found in the directory '{world.tenant_id}'" in body["error_description"]


async def test_unknown_tenant_is_400_aadsts90002(http: httpx.AsyncClient, world: DemoWorld) -> None:
    response = await http.post(token_url(world, str(uuid.uuid4())), data=form(world))
    assert_aadsts(response, 400, "invalid_request", 90002)


@pytest.mark.parametrize(
    "scope",
    ["https://management.azure.com/user_impersonation", "https://management.azure.com",
     "https://management.azure.com/.default https://graph.microsoft.com/.default", ""],
)
async def test_scope_other_than_one_dot_default_is_400_aadsts70011(
    http: httpx.AsyncClient, world: DemoWorld, scope: str
) -> None:
    response = await http.post(token_url(world), data=form(world, scope=scope))
    assert_aadsts(response, 400, "invalid_scope", 70011)


async def test_unknown_resource_is_400_aadsts500011(http: httpx.AsyncClient, world: DemoWorld) -> None:
    response = await http.post(token_url(world), data=form(world, scope="https://vault.example/.default"))
    assert_aadsts(response, 400, "invalid_resource", 500011)


async def test_grant_type_must_be_client_credentials(http: httpx.AsyncClient, world: DemoWorld) -> None:
    response = await http.post(token_url(world), data=form(world, grant_type="password"))
    assert_aadsts(response, 400, "unsupported_grant_type", 70003)


@pytest.mark.parametrize("alg", ["PS256", "RS256"])
async def test_certificate_assertion_signed_by_the_registered_certificate_gets_a_token(
    http: httpx.AsyncClient, world: DemoWorld, clock: FakeClock, alg: str
) -> None:
    jwt = assertion(world.certificate_pem, aud=token_url(world), iss=world.client_id, now=clock().timestamp(), alg=alg)
    response = await http.post(token_url(world), data=form(
        world, client_secret=None, client_assertion=jwt, client_assertion_type=JWT_BEARER))
    assert response.status_code == 200, response.text


async def test_azure_identity_style_padded_base64_segments_are_accepted(
    http: httpx.AsyncClient, world: DemoWorld, clock: FakeClock
) -> None:
    # azure-identity's own assertion builder keeps '=' padding in every segment (and signs the padded text).
    jwt = assertion(world.certificate_pem, aud=token_url(world), iss=world.client_id, now=clock().timestamp(),
                    padded=True)
    assert "=" in jwt  # the 256-byte signature always needs padding
    response = await http.post(token_url(world), data=form(
        world, client_secret=None, client_assertion=jwt, client_assertion_type=JWT_BEARER))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("case", "code"),
    [("wrong_aud", 700023), ("wrong_iss", 700021), ("expired", 700024), ("unknown_cert", 700027),
     ("bad_signature", 700027), ("garbage", 50027)],
)
async def test_invalid_client_assertions_are_401_invalid_client(
    http: httpx.AsyncClient, world: DemoWorld, clock: FakeClock, case: str, code: int
) -> None:
    pem, aud, iss, exp_in = world.certificate_pem, token_url(world), world.client_id, 600
    key = None
    if case == "wrong_aud":
        aud = f"{LOGIN}/common/oauth2/v2.0/token"
    elif case == "wrong_iss":
        iss = str(uuid.uuid4())
    elif case == "expired":
        exp_in = -60
    elif case == "unknown_cert":
        pem = make_certificate("stranger", clock())[0]
    elif case == "bad_signature":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwt = "not.a.jwt" if case == "garbage" else assertion(
        pem, aud=aud, iss=iss, now=clock().timestamp(), exp_in=exp_in, key=key)
    response = await http.post(token_url(world), data=form(
        world, client_secret=None, client_assertion=jwt, client_assertion_type=JWT_BEARER))
    assert_aadsts(response, 401, "invalid_client", code)


async def test_openid_configuration_points_back_at_the_emulator_origin(
    http: httpx.AsyncClient, world: DemoWorld
) -> None:
    response = await http.get(f"https://127.0.0.1:8443/{world.tenant_id}/v2.0/.well-known/openid-configuration")
    assert response.status_code == 200
    document = response.json()
    base = f"https://127.0.0.1:8443/{world.tenant_id}"
    assert document["token_endpoint"] == f"{base}/oauth2/v2.0/token"
    assert document["authorization_endpoint"] == f"{base}/oauth2/v2.0/authorize"
    assert document["issuer"] == f"{base}/v2.0"
    unknown = await http.get(f"{LOGIN}/{uuid.uuid4()}/v2.0/.well-known/openid-configuration")
    assert_aadsts(unknown, 400, "invalid_request", 90002)
    keys = await http.get(document["jwks_uri"])
    assert keys.json() == {"keys": []}


async def test_instance_discovery_answers_with_the_tenant_discovery_endpoint(
    http: httpx.AsyncClient, world: DemoWorld
) -> None:
    response = await http.get(
        "https://127.0.0.1:8443/common/discovery/instance",
        params={"authorization_endpoint": f"https://127.0.0.1/{world.tenant_id}/oauth2/v2.0/authorize",
                "api-version": "1.0"},
    )
    assert response.json()["tenant_discovery_endpoint"] == (
        f"https://127.0.0.1:8443/{world.tenant_id}/v2.0/.well-known/openid-configuration"
    )


async def test_validate_bearer_reports_missing_invalid_expired_and_wrong_audience(
    http: httpx.AsyncClient, world: DemoWorld, state: EmulatorState, clock: FakeClock
) -> None:
    token = (await http.post(token_url(world), data=form(world))).json()["access_token"]
    entra = state.entra
    assert entra.validate_bearer(None, ARM_SCOPE).problem is BearerProblem.MISSING  # type: ignore[union-attr]
    assert entra.validate_bearer("Basic abc", "x").problem is BearerProblem.INVALID  # type: ignore[union-attr]
    assert entra.validate_bearer("Bearer forged", "x").problem is BearerProblem.INVALID  # type: ignore[union-attr]
    wrong = entra.validate_bearer(f"Bearer {token}", "https://api.loganalytics.io")
    assert wrong.problem is BearerProblem.WRONG_AUDIENCE  # type: ignore[union-attr]
    accepted = entra.validate_bearer(f"Bearer {token}", ["https://api.loganalytics.io", "https://management.azure.com"])
    assert isinstance(accepted, TokenInfo)
    clock.advance(seconds=3600)
    assert entra.validate_bearer(f"Bearer {token}", "https://management.azure.com").problem is (  # type: ignore[union-attr]
        BearerProblem.EXPIRED
    )


async def test_rotated_out_secret_fails_but_issued_tokens_stay_valid_until_revoked(
    http: httpx.AsyncClient, world: DemoWorld, state: EmulatorState
) -> None:
    token = (await http.post(token_url(world), data=form(world))).json()["access_token"]
    state.entra.remove_secret(world.tenant_id, world.client_id, world.client_secret)
    assert_aadsts(await http.post(token_url(world), data=form(world)), 401, "invalid_client", 7000215)
    assert isinstance(state.entra.validate_bearer(f"Bearer {token}", "https://management.azure.com"), TokenInfo)
    assert state.entra.revoke_tokens(world.client_id) == 1
    assert not isinstance(state.entra.validate_bearer(f"Bearer {token}", "https://management.azure.com"), TokenInfo)
