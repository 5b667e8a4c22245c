"""Graph emulator front door: bearer tokens (401), application permissions (403), 150 requests/minute (429)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from graph_world import (
    ARM_SCOPE,
    GRAPH,
    NOBODY_ID,
    OTHER_TENANT,
    OTHER_WRITER_ID,
    READER_ID,
    TENANT,
    WRITER_ID,
    GraphCaller,
    assert_graph_error,
    graph_token,
)
from sentinel_signl4_emulators.app import EmulatorState
from sentinel_signl4_emulators.entra.model import EntraModel
from sentinel_signl4_emulators.graph.model import DEFAULT_THROTTLE_LIMIT, GraphModel, Permission
from sentinel_signl4_emulators.graph.routes import build_graph_app


@pytest.mark.parametrize(("authorization", "message"), [
    (None, "Access token is empty."),
    ("Bearer not-a-token", "Access token validation failure."),
    ("Basic dXNlcjpwYXNz", "Access token validation failure."),
])
async def test_missing_or_invalid_tokens_get_401(graph: GraphCaller, authorization: str | None,
                                                 message: str) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await graph.http.get(f"{GRAPH}/v1.0/security/incidents", headers=headers)
    error = assert_graph_error(response, 401, "InvalidAuthenticationToken")
    assert error["message"] == message
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


async def test_a_token_for_another_resource_gets_401(http: httpx.AsyncClient, graph: GraphCaller) -> None:
    arm = GraphCaller(http, await graph_token(http, scope=ARM_SCOPE))
    error = assert_graph_error(await arm.get("security/incidents"), 401, "InvalidAuthenticationToken")
    assert "audience" in error["message"]


async def test_expired_tokens_get_401(state: EmulatorState, graph: GraphCaller) -> None:
    state.entra.clock = lambda: state.clock() + state.entra.token_lifetime * 2
    error = assert_graph_error(await graph.get("security/incidents"), 401, "InvalidAuthenticationToken")
    assert "expired" in error["message"]


async def test_permissions_decide_per_operation(state: EmulatorState, http: httpx.AsyncClient,
                                                graph: GraphCaller) -> None:
    incident = state.graph.create_incident(TENANT, display_name="x")
    reader = GraphCaller(http, await graph_token(http, client_id=READER_ID))
    nobody = GraphCaller(http, await graph_token(http, client_id=NOBODY_ID))

    assert (await reader.get("security/incidents")).status_code == 200
    assert (await reader.get("security/alerts_v2")).status_code == 200
    error = assert_graph_error(await reader.patch(f"security/incidents/{incident['id']}", {"status": "inProgress"}),
                               403, "Authorization_RequestDenied")
    assert "SecurityIncident.ReadWrite.All" in error["message"]
    assert_graph_error(await reader.post(f"security/incidents/{incident['id']}/comments", {"comment": "x"}), 403,
                       "Authorization_RequestDenied")
    for path in ("security/incidents", "security/alerts_v2", f"users/{WRITER_ID}"):
        assert_graph_error(await nobody.get(path), 403, "Authorization_RequestDenied")
    assert state.graph.get_incident(TENANT, incident["id"], expand_alerts=False, include_unknown=True)[
        "status"] == "active"

    state.graph.grant(NOBODY_ID, [Permission.SECURITY_INCIDENT_READ_WRITE])
    assert (await nobody.patch(f"security/incidents/{incident['id']}", {"status": "inProgress"})).status_code == 200
    state.graph.revoke(NOBODY_ID)
    assert_graph_error(await nobody.get("security/incidents"), 403, "Authorization_RequestDenied")


async def test_each_tenant_sees_only_its_own_incidents(state: EmulatorState, http: httpx.AsyncClient,
                                                       graph: GraphCaller) -> None:
    mine = state.graph.create_incident(TENANT, display_name="mine")
    theirs = state.graph.create_incident(OTHER_TENANT, display_name="theirs")
    other = GraphCaller(http, await graph_token(http, client_id=OTHER_WRITER_ID, tenant=OTHER_TENANT))
    assert [i["id"] for i in (await graph.get("security/incidents")).json()["value"]] == [mine["id"]]
    assert [i["id"] for i in (await other.get("security/incidents")).json()["value"]] == [theirs["id"]]
    assert_graph_error(await other.get(f"security/incidents/{mine['id']}"), 404, "NotFound")


async def test_client_request_id_is_echoed(graph: GraphCaller) -> None:
    response = await graph.http.get(f"{GRAPH}/v1.0/security/incidents",
                                    headers=graph.headers(**{"client-request-id": "abc-123"}))
    assert response.headers["client-request-id"] == "abc-123"
    assert response.headers["request-id"] != "abc-123"


def test_the_default_budget_is_150_requests_per_minute() -> None:
    model = GraphModel()
    assert (model.throttle_limit, model.throttle_window) == (DEFAULT_THROTTLE_LIMIT, 60.0) == (150, 60.0)


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def monotonic() -> Monotonic:
    return Monotonic()


@pytest.fixture
async def throttled(monotonic: Monotonic) -> AsyncIterator[tuple[GraphModel, EntraModel, httpx.AsyncClient]]:
    """A standalone Graph app on a fake monotonic clock with the real 150/minute budget."""
    entra, model = EntraModel(), GraphModel(monotonic=monotonic)
    for tenant, client_id in ((TENANT, WRITER_ID), (TENANT, READER_ID), (OTHER_TENANT, OTHER_WRITER_ID)):
        entra.register_app(tenant, client_id=client_id, secret="s")
        model.grant(client_id, [Permission.SECURITY_INCIDENT_READ_WRITE, Permission.USER_READ_ALL])
    entra.add_user(TENANT, user_principal_name="a@contoso.com", display_name="A")
    transport = httpx.ASGITransport(app=build_graph_app(model, entra))
    async with httpx.AsyncClient(transport=transport, base_url=GRAPH) as http:
        yield model, entra, http


def token_for(entra: EntraModel, tenant: str, client_id: str) -> dict[str, str]:
    issued = entra.issue_token(tenant, {"grant_type": "client_credentials", "client_id": client_id,
                                        "client_secret": "s", "scope": "https://graph.microsoft.com/.default"},
                               token_endpoint="https://login.test")
    return {"Authorization": f"Bearer {issued.access_token}"}


async def test_the_151st_request_in_a_minute_gets_429_with_retry_after(
    throttled: tuple[GraphModel, EntraModel, httpx.AsyncClient], monotonic: Monotonic
) -> None:
    _model, entra, http = throttled
    writer = token_for(entra, TENANT, WRITER_ID)
    for n in range(150):
        monotonic.now += 0.2  # 150 requests over 30 seconds
        response = await http.get("/v1.0/security/incidents", headers=writer)
        assert response.status_code == 200, n
    response = await http.get("/v1.0/security/incidents", headers=writer)
    error = assert_graph_error(response, 429, "TooManyRequests")
    assert error["message"]
    # The first request of the window (at +0.2 s) leaves it 60 s later: 30.2 s from now.
    assert response.headers["Retry-After"] == "31"

    # Other apps of the tenant, the same app in another tenant and /users have budgets of their own.
    assert (await http.get("/v1.0/security/incidents", headers=token_for(entra, TENANT, READER_ID))).status_code == 200
    other = token_for(entra, OTHER_TENANT, OTHER_WRITER_ID)
    assert (await http.get("/v1.0/security/incidents", headers=other)).status_code == 200
    assert (await http.get("/v1.0/users/a@contoso.com", headers=writer)).status_code == 200

    monotonic.now += 31
    assert (await http.get("/v1.0/security/incidents", headers=writer)).status_code == 200


async def test_refused_requests_do_not_use_up_the_budget(
    throttled: tuple[GraphModel, EntraModel, httpx.AsyncClient], monotonic: Monotonic
) -> None:
    model, entra, http = throttled
    model.configure_throttle(3, 60)
    writer = token_for(entra, TENANT, WRITER_ID)
    statuses = [(await http.get("/v1.0/security/incidents", headers=writer)).status_code for _ in range(3)]
    monotonic.now += 30
    statuses += [(await http.get("/v1.0/security/incidents", headers=writer)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200, 429, 429, 429]
    monotonic.now += 30  # the three granted requests leave the window; the refused ones were never in it
    assert (await http.get("/v1.0/security/incidents", headers=writer)).status_code == 200
