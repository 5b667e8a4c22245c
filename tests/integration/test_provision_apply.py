"""``provision apply`` end to end against the emulators, whose ARM enforces custom roles: a new identity can do
nothing, apply gives it the connector's role on the workspace, then ``check`` passes and a poll pages with
evidence read through the table-level role; a re-run changes nothing; a role missing an action makes exactly the
call that needs it fail, with ARM's message naming the action."""

from __future__ import annotations

import re
import stat
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from integration_harness import Harness
from sentinel_signl4.bootstrap import build_runtime
from sentinel_signl4.checks import run_checks
from sentinel_signl4.clients.azure_actions import COMMENTS_WRITE, INCIDENTS_READ
from sentinel_signl4.clients.http import build_http_client
from sentinel_signl4.clients.identity import TokenProvider, build_credential
from sentinel_signl4.clients.loganalytics import reset_query_gates
from sentinel_signl4.config import parse_config
from sentinel_signl4.errors import AuthError
from sentinel_signl4.provision.apply import TenantOutcome, apply_plans
from sentinel_signl4.provision.plan import PlanOptions, build_plan
from sentinel_signl4.provision.targets import parse_targets
from sentinel_signl4.provision.verify import check_new_identities
from sentinel_signl4_emulators.graph.model import Permission

OPERATOR_SECRET = "operator-secret-0123456789"
CONNECTOR_SECRET = "new-connector-secret-0123456789"


@pytest.fixture(autouse=True)
def _fresh_query_gates() -> Iterator[None]:
    reset_query_gates()
    yield
    reset_query_gates()


def read_secret(path: Path) -> tuple[str, int]:
    return path.read_text(), stat.S_IMODE(path.stat().st_mode)


class Setup:
    def __init__(self, harness: Harness) -> None:
        self.h = harness
        state, world = harness.state, harness.world
        self.operator = state.entra.register_app(world.tenant_id, display_name="operator", secret=OPERATOR_SECRET)
        state.authorization.grant_owner(self.operator.object_id, f"/subscriptions/{world.subscription_id}")
        self.connector = state.entra.register_app(world.tenant_id, display_name="new-connector",
                                                  secret=CONNECTOR_SECRET)
        self.text = harness.config_text(overrides={
            "credential": {"client_id": self.connector.client_id, "client_secret": CONNECTOR_SECRET},
            "sync": {"owner_map": {u.mail: u.object_id for u in world.users}},
        })
        self.providers: list[TokenProvider] = []

    def tokens_for(self, tenant_id: str) -> TokenProvider:
        provider = TokenProvider(build_credential(
            kind="client_secret", tenant_id=tenant_id, client_id=self.operator.client_id, secret=OPERATOR_SECRET,
            authority_host=self.h.server.base_url, ca_bundle=str(self.h.server.ca_path)))
        self.providers.append(provider)
        return provider

    async def apply(self) -> list[TenantOutcome]:
        options = PlanOptions(out_dir=str(self.h.tmp))  # env files go to the test's directory
        plans = build_plan(parse_targets(self.text, env={}), options)
        lines: list[str] = []
        async with build_http_client(ca_bundle=str(self.h.server.ca_path)) as http:
            return await apply_plans(plans, tokens_for=self.tokens_for, http=http, arm_endpoint=self.h.server.base_url,
                                     graph_endpoint=self.h.server.base_url, echo=lines.append, attempts=5, wait=0.0,
                                     options=options)

    async def apply_text(self, text: str, out_dir: Path, options: PlanOptions) -> list[TenantOutcome]:
        plans = build_plan(parse_targets(text, env={}), options)
        async with build_http_client(ca_bundle=str(self.h.server.ca_path)) as http:
            return await apply_plans(plans, tokens_for=self.tokens_for, http=http, arm_endpoint=self.h.server.base_url,
                                     graph_endpoint=self.h.server.base_url, echo=lambda _line: None, attempts=5,
                                     wait=0.0, options=options)

    async def check(self) -> tuple[bool, list[str]]:
        lines: list[str] = []
        ok = await run_checks(parse_config(self.text), echo=lines.append)
        return ok, lines

    def roles(self) -> list[Any]:
        return self.h.state.authorization.definitions(f"/subscriptions/{self.h.world.subscription_id}")


@pytest.fixture
async def setup(harness: Harness) -> AsyncIterator[Setup]:
    s = Setup(harness)
    yield s
    for provider in s.providers:
        await provider.close()


async def test_apply_grants_exactly_what_check_and_a_poll_with_enrichment_need(setup: Setup, harness: Harness) -> None:
    ok, lines = await setup.check()
    assert not ok
    assert any("does not have authorization to perform action 'Microsoft.SecurityInsights/incidents/read'" in line
               for line in lines), lines

    harness.state.authorization.replication_delay = 2  # the new principal is "not found" twice, then replicated
    harness.state.authorization.principal_created(setup.connector.object_id)
    (outcome,) = await setup.apply()
    assert outcome.ok, outcome.error
    (role,) = setup.roles()
    assert role.role_name == "sentinel-signl4 contoso"
    (assignment,) = harness.state.authorization.assignments(
        f"/subscriptions/{harness.world.subscription_id}", setup.connector.object_id)
    assert assignment.scope.endswith(f"/workspaces/{harness.world.workspace_name}")

    ok, lines = await setup.check()
    assert ok, lines
    runtime = await build_runtime(parse_config(setup.text))
    harness.runtimes.append(runtime)
    report = await runtime.connectors["contoso"].runtime.run_once(datetime.now(UTC))
    assert report.enqueued
    params = [{p.name: p.value for p in alert.parameters} for alert in harness.alerts()]
    assert any("Evidence 1" in p for p in params), "no Log Analytics evidence: the table-level read did not work"
    assert not any("unavailable" in str(p.get("Note", "")) for p in params)


async def test_a_second_apply_converges(setup: Setup, harness: Harness) -> None:
    assert all(o.ok for o in await setup.apply())
    assert all(o.ok for o in await setup.apply())
    assert len(setup.roles()) == 1
    assert len(harness.state.authorization.assignments(
        f"/subscriptions/{harness.world.subscription_id}", setup.connector.object_id)) == 1


async def test_a_role_without_an_action_fails_the_call_that_needs_it_naming_the_action(
        setup: Setup, harness: Harness) -> None:
    assert all(o.ok for o in await setup.apply())
    (role,) = setup.roles()
    role.actions.remove(COMMENTS_WRITE)  # an operator trimmed the role by hand
    runtime = await build_runtime(parse_config(setup.text))
    harness.runtimes.append(runtime)
    client = runtime.connectors["contoso"].sentinel
    assert client is not None
    name = harness.world.incident_names[0]
    await client.get_incident(name)  # reading still works
    with pytest.raises(AuthError) as caught:
        await client.put_comment(name, "c-1", "hello")
    assert f"does not have authorization to perform action '{COMMENTS_WRITE}'" in caught.value.message


async def test_apply_creates_the_app_its_secret_and_graph_consent_then_the_connector_signs_in_with_them(
        setup: Setup, harness: Harness, tmp_path: Path) -> None:
    """From nothing but the config (no client id, no secret, no owner_map): apply creates the app registration,
    its service principal, a secret in a 0600 file, the User.Read.All consent, the role and its assignment."""
    text = setup.text.replace(f'client_id = "{setup.connector.client_id}"\n', "").replace(
        f'client_secret = "{CONNECTOR_SECRET}"', 'client_secret = "${NEW_SECRET}"')
    setup.text = re.sub(r"\[connectors\.sync\][^\[]*", '[connectors.sync]\ntag = "SIGNL4"\n', text)
    harness.state.authorization.replication_delay = 1
    lines: list[str] = []
    options = PlanOptions(out_dir=str(tmp_path), app_name="signl4-connector-new")  # the seeded app has the default
    plans = build_plan(parse_targets(setup.text, env={}), options)
    async with build_http_client(ca_bundle=str(harness.server.ca_path)) as http:
        (outcome,) = await apply_plans(plans, tokens_for=setup.tokens_for, http=http,
                                       arm_endpoint=harness.server.base_url, graph_endpoint=harness.server.base_url,
                                       echo=lines.append, attempts=5, wait=0.0, options=options)
    assert outcome.ok, outcome.error
    (record,) = outcome.identities
    secret_file = Path(record["client_secret_file"])
    secret, mode = read_secret(secret_file)
    assert mode == 0o600
    assert secret not in "\n".join(lines) and secret not in repr(outcome)
    client_id = record["client_id"]
    assert harness.state.graph.permissions_of(client_id) == {Permission.USER_READ_ALL}

    env = dict(line.split("=", 1) for line in read_secret(
        tmp_path / f"sentinel-signl4-{harness.world.tenant_id[:8]}-{client_id[:8]}.env")[0].splitlines()[1:])
    assert env == {"AZURE_TENANT_ID": harness.world.tenant_id, "AZURE_CLIENT_ID": client_id,
                   "AZURE_CLIENT_SECRET_FILE": str(secret_file),
                   "AZURE_CLIENT_SECRET_EXPIRES": record["client_secret_expires"]}

    configured = setup.text.replace("[connectors.azure.credential]\n",
                                    f'[connectors.azure.credential]\nclient_id = "{client_id}"\n')
    lines = []
    config = parse_config(configured, env={"NEW_SECRET": secret})
    assert await run_checks(config, echo=lines.append), lines
    assert any("Graph owner lookup (User.Read.All): OK" in line for line in lines)
    runtime = await build_runtime(config)
    harness.runtimes.append(runtime)
    assert (await runtime.connectors["contoso"].runtime.run_once(datetime.now(UTC))).enqueued  # it pages

    (again,) = await setup.apply_text(setup.text, tmp_path, options)
    assert again.ok and again.done == outcome.done[-2:], again.done  # only the role and assignment PUTs again
    assert read_secret(secret_file)[0] == secret


async def test_one_failing_tenant_does_not_stop_the_others(setup: Setup, harness: Harness) -> None:
    other = "99999999-8888-7777-6666-555555555555"
    second = setup.text.split("[[connectors]]")[1].replace('name = "contoso"', 'name = "other"').replace(
        harness.world.tenant_id, other)
    setup.text = f"[[connectors]]{second}\n" + setup.text  # an unknown tenant first: its sign-in fails
    outcomes = await setup.apply()
    assert [o.tenant_id for o in outcomes] == [other, harness.world.tenant_id]
    assert not outcomes[0].ok and outcomes[1].ok
    assert len(setup.roles()) == 1



async def test_a_workload_identity_gets_its_federated_credential_and_a_managed_identity_no_app(
        setup: Setup, harness: Harness, tmp_path: Path) -> None:
    options = PlanOptions(out_dir=str(tmp_path), oidc_issuer="https://oidc.example/cluster/",
                          service_account="signl4/connector")
    workload = setup.text.replace(f'client_secret = "{CONNECTOR_SECRET}"\n', "").replace(
        'kind = "client_secret"', 'kind = "workload_identity"')
    assert all(o.ok for o in await setup.apply_text(workload, tmp_path, options))
    apps = harness.state.directory.applications(harness.world.tenant_id, "new-connector")
    (federated,) = harness.state.directory.federated(harness.world.tenant_id, apps[0]["id"])
    assert federated["subject"] == "system:serviceaccount:signl4:connector"
    assert apps[0]["passwordCredentials"] == []  # no secret for a workload identity

    managed = setup.text.replace(f'client_secret = "{CONNECTOR_SECRET}"\n', "").replace(
        'kind = "client_secret"', 'kind = "managed_identity"')
    before = len(harness.state.directory.applications(harness.world.tenant_id, None))
    (outcome,) = await setup.apply_text(managed, tmp_path, PlanOptions(out_dir=str(tmp_path)))
    assert outcome.ok, outcome.error
    assert len(harness.state.directory.applications(harness.world.tenant_id, None)) == before
    assert not any(step.startswith(("app registration", "client secret")) for step in outcome.done)


async def test_check_names_the_missing_action_and_points_to_provision(setup: Setup, harness: Harness) -> None:
    assert all(o.ok for o in await setup.apply())
    (role,) = setup.roles()
    role.actions.remove(INCIDENTS_READ)  # an operator trimmed the role by hand
    ok, lines = await setup.check()
    assert not ok
    (line,) = [line for line in lines if "Sentinel workspace access" in line]
    assert f"lacks action {INCIDENTS_READ}" in line and "sentinel-signl4 provision apply" in line, line
    assert "Responder" not in line and "Log Analytics Reader" not in line


async def test_apply_then_checks_each_tenant_with_the_new_identity(setup: Setup, harness: Harness,
                                                                  tmp_path: Path) -> None:
    """The check after apply signs in as the app apply just created (its client id, the secret from its 0600 file),
    never as the config's old credential; with the role trimmed it fails naming the missing action."""
    text = setup.text.replace(f'client_id = "{setup.connector.client_id}"\n', "").replace(
        f'client_secret = "{CONNECTOR_SECRET}"', 'client_secret = "${NEW_SECRET}"')  # not set anywhere
    options = PlanOptions(out_dir=str(tmp_path), app_name="signl4-connector-checked")
    outcomes = await setup.apply_text(text, tmp_path, options)
    assert all(o.ok for o in outcomes)
    config_path = tmp_path / "config.toml"
    lines: list[str] = []
    assert await check_new_identities(text, config_path, outcomes, echo=lines.append, env={}), lines
    tenant = harness.world.tenant_id
    assert f"Check of tenant {tenant}: OK" in lines
    assert any("[contoso] Sentinel workspace access: OK" in line for line in lines), lines
    (record,) = outcomes[0].identities
    assert record["client_id"] != setup.connector.client_id
    secret = read_secret(Path(record["client_secret_file"]))[0]
    assert secret not in "\n".join(lines)

    (role,) = setup.roles()
    role.actions.remove(INCIDENTS_READ)
    lines = []
    assert not await check_new_identities(text, config_path, outcomes, echo=lines.append, env={})
    assert f"Check of tenant {tenant}: FAILED" in lines[-1]
    assert any(f"lacks action {INCIDENTS_READ}" in line for line in lines), lines


async def test_the_check_after_apply_names_what_the_config_still_lacks(setup: Setup, tmp_path: Path) -> None:
    text = setup.text.replace('webhook_url = "', 'webhook_url = "${S4_WEBHOOK}').replace(
        f'client_id = "{setup.connector.client_id}"\n', "")
    options = PlanOptions(out_dir=str(tmp_path), app_name="signl4-connector-incomplete")
    outcomes = await setup.apply_text(text, tmp_path, options)
    lines: list[str] = []
    assert await check_new_identities(text, tmp_path / "config.toml", outcomes, echo=lines.append, env={})
    assert any("skipped, the config is not complete yet" in line for line in lines), lines
    assert any("S4_WEBHOOK" in line for line in lines), lines
