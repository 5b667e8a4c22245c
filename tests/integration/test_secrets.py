"""No secret — client secret, SIGNL4 team secret, API key, webhook token — in any log line, error, metric, page
or repr, even when every one of them is wrong and gets echoed in remote error messages."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from console_access import console_client, console_for
from integration_harness import Harness
from sentinel_signl4.logs import configure_logging
from sentinel_signl4.web.app import build_web_app
from sentinel_signl4_emulators.common.faults import FaultRule

CLIENT_SECRET = "cs-Q8~very-secret-client-value"
TEAM_SECRET = "tm9secretteam77"
WEBHOOK_TOKEN = "wh-token-0123456789abcdefghij"


async def test_no_secret_reaches_logs_errors_metrics_pages_or_reprs(harness: Harness, tmp_path: Path) -> None:
    stream = io.StringIO()
    base = harness.server.base_url
    # The client secret comes from a secret file, the API key from Key Vault: both are redacted like the others.
    secret_file = tmp_path / "client_secret"
    secret_file.write_text(CLIENT_SECRET + "\n", encoding="utf-8")
    harness.state.keyvault.tenant_id = harness.world.tenant_id
    harness.state.keyvault.set_secret("signl4-api-key", harness.world.signl4_api_key)
    wrong = {"credential": {"client_secret": "${file:" + str(secret_file) + "}"},
             "signl4": {"webhook_url": f"{base}/webhook/{TEAM_SECRET}",
                        "api_key": "${keyvault:" + base + "/secrets/signl4-api-key}"},
             "sync": {"webhook_token": WEBHOOK_TOKEN},
             "logging": {"level": "debug"}}
    world = harness.world  # the vault is read with an identity of its own, not the connector's (wrong) one
    vault = {"extra_tables": f"[keyvault]\nverify_challenge_resource = false\ntenant_id = \"{world.tenant_id}\"\n"
                             f"authority_host = \"{base}\"\n[keyvault.credential]\nkind = \"client_secret\"\n"
                             f"client_id = \"{world.client_id}\"\nclient_secret = \"{world.client_secret}\"\n"}
    config = harness.config(overrides=wrong, **vault)
    api_key = harness.world.signl4_api_key
    secrets = [CLIENT_SECRET, TEAM_SECRET, WEBHOOK_TOKEN, api_key]
    configure_logging(level="debug", fmt="json", secrets=config.secrets(), stream=stream)
    try:
        runtime = await harness.runtime(overrides=wrong, **vault)
        connector = runtime.connectors["contoso"].runtime
        await connector.run_once(datetime.now(UTC))          # AADSTS7000215
        assert connector.health.error and "AADSTS7000215" in connector.health.error
        errors = [connector.health.error]
        # Now with a good Azure secret but a wrong SIGNL4 secret, and SIGNL4 echoing the URL in a 5xx first.
        good_azure = {**wrong, "credential": {}}
        assert harness.state.keyvault.reads()  # the API key was read from the emulated vault
        harness.state.faults.add(FaultRule(path=r"^/webhook/", method="POST", kind="status", status=503, count=1,
                                           body={"message": f"upstream failed for /webhook/{TEAM_SECRET}"}))
        runtime2 = await harness.runtime(overrides=good_azure, **vault)
        harness.state.sentinel.create_incident(harness.world.workspace, title="Leak probe", severity="High",
                                               created=datetime.now(UTC) - timedelta(minutes=1))
        c2 = runtime2.connectors["contoso"].runtime
        await c2.run_once(datetime.now(UTC))
        await c2.run_once(datetime.now(UTC) + timedelta(minutes=5))
        assert c2.health.error and "3004" in c2.health.error
        errors.append(c2.health.error)
        for row in await runtime2.store.list_actions("contoso"):
            errors.append(str(row.last_error))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_web_app(runtime2)),
                                     base_url="http://connector.test") as web:
            pages = [(await web.get("/readyz")).text]
            wrong_token = await web.post("/webhooks/signl4/contoso/guess", json={"id": "1", "eventType": 200})
            pages.append(wrong_token.text)
        async with console_client(console_for(runtime2)) as console:
            pages += [(await console.get(path)).text
                      for path in ("/", "/status", "/status.json", "/metrics", "/connectors/contoso")]
        reprs = [repr(config), repr(runtime2.connectors["contoso"].signl4), repr(runtime2.connectors["contoso"]),
                 str(config.model_dump())]
    finally:
        configure_logging(level="warning", stream=io.StringIO())
    text = "\n".join([stream.getvalue(), *errors, *pages, *reprs])
    assert "AADSTS7000215" in stream.getvalue()  # the log did record the failures …
    for secret in secrets:
        assert secret not in text, f"secret {secret[:4]}… leaked"  # … without the secrets
