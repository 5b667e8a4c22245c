"""``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from sentinel_signl4.config import parse_config
from sentinel_signl4.web import build_web_app_from_context
from web_world import CLIENT_SECRET, NOW, SECRETS, Harness, alpha_path, config_text, event

ENABLED = ["alpha", "bravo", "charlie", "delta", "foxtrot"]  # echo is disabled


def finish_first_cycle(harness: Harness, *names: str) -> None:
    for name in names:
        harness.health[name].ok(NOW)


async def test_healthz_is_200_even_when_nothing_else_is_ready(client: httpx.AsyncClient, harness: Harness,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    async def down() -> None:
        raise OSError("store down")

    monkeypatch.setattr(harness.store, "ping", down)
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "alive"}


async def test_readyz_waits_for_every_enabled_connector_to_finish_a_cycle(client: httpx.AsyncClient,
                                                                          harness: Harness) -> None:
    starting = await client.get("/readyz")
    assert starting.status_code == 503
    body = starting.json()
    assert body["ready"] is False
    assert body["store"] == {"ok": True, "error": None}
    assert body["connectors"] == dict.fromkeys(ENABLED, "starting")
    assert body["not_ready"] == [f"connector {name}: no cycle completed yet" for name in ENABLED]

    finish_first_cycle(harness, "alpha", "bravo", "charlie", "delta")
    one_left = await client.get("/readyz")
    assert one_left.status_code == 503
    assert one_left.json()["not_ready"] == ["connector foxtrot: no cycle completed yet"]

    # Standby (another replica holds the lease) is ready: that replica runs the connector.
    harness.health["foxtrot"].standby(NOW)
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["ready"] is True
    assert ready.json()["not_ready"] == []
    assert ready.json()["connectors"]["foxtrot"] == "standby"


async def test_a_connector_in_error_is_still_ready(client: httpx.AsyncClient, harness: Harness) -> None:
    finish_first_cycle(harness, *ENABLED)
    harness.health["alpha"].failed(NOW, "AuthError: token expired")
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["connectors"]["alpha"] == "error"


async def test_readyz_is_503_when_the_store_fails_and_the_error_is_redacted(
        client: httpx.AsyncClient, harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    finish_first_cycle(harness, *ENABLED)

    async def down() -> None:
        raise ConnectionRefusedError(f"connect failed using password {CLIENT_SECRET}")

    monkeypatch.setattr(harness.store, "ping", down)
    response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["store"]["ok"] is False
    assert body["store"]["error"].startswith("ConnectionRefusedError: connect failed")
    assert body["not_ready"] == [f"store: {body['store']['error']}"]
    assert not any(secret in response.text for secret in SECRETS)

    monkeypatch.undo()
    assert (await client.get("/readyz")).status_code == 200


async def test_readyz_does_not_hang_on_a_store_that_does_not_answer(
        client: httpx.AsyncClient, harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    finish_first_cycle(harness, *ENABLED)

    async def hangs() -> None:
        await asyncio.sleep(30)

    monkeypatch.setattr(harness.store, "ping", hangs)
    # The app was built with ready_timeout=0.2; the ping hangs for 30 s. Answering at all before the ping would have
    # returned is the property (a hang detector with a wide margin, not a timing measurement).
    response = await asyncio.wait_for(client.get("/readyz"), timeout=20)
    assert response.status_code == 503
    assert response.json()["store"] == {
        "ok": False, "error": "store not writable: no answer within 0.2 s (locked by another writer, or too slow)"}


async def test_readyz_is_503_while_the_store_cannot_be_written_and_200_once_it_can(
        client: httpx.AsyncClient, harness: Harness, db_path: Path) -> None:
    finish_first_cycle(harness, *ENABLED)
    assert (await client.get("/readyz")).status_code == 200
    locker = sqlite3.connect(db_path, isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")  # another connection holds SQLite's write lock; reads still work
        await harness.store.ping()
        locked = await client.get("/readyz")
        assert locked.status_code == 503
        assert locked.json()["store"]["error"].startswith("store not writable: no answer within 0.2 s")
        assert locked.json()["not_ready"] == [f"store: {locked.json()['store']['error']}"]
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    deadline = time.monotonic() + 60
    while (response := await client.get("/readyz")).status_code != 200:
        assert time.monotonic() < deadline, response.text
        await asyncio.sleep(0.1)
    assert response.json()["store"] == {"ok": True, "error": None}
    with sqlite3.connect(db_path) as conn:
        [(probe,)] = conn.execute("SELECT value FROM cursors WHERE connector = '' AND name = 'readyz_write_probe'")
    assert probe == NOW.isoformat()


async def test_metrics_are_in_prometheus_text_format_and_count_webhooks(client: httpx.AsyncClient,
                                                                        console: httpx.AsyncClient,
                                                                        harness: Harness) -> None:
    await client.post(alpha_path(), json=event())
    await client.post(alpha_path(), json=event())
    harness.health["alpha"].ok(NOW)  # the scrape mirrors live health into the gauges
    response = await console.get("/metrics")  # on the console listener, beside the status page
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in families.values() for s in family.samples}
    assert samples[("s4s_webhook_events_total", (("connector", "alpha"), ("outcome", "accepted")))] == 1
    assert samples[("s4s_webhook_events_total", (("connector", "alpha"), ("outcome", "duplicate")))] == 1
    # Pre-created at zero for every connector that takes webhooks, so rate() works from the first scrape.
    assert samples[("s4s_webhook_events_total", (("connector", "bravo"), ("outcome", "malformed")))] == 0
    assert samples[("s4s_connector_up", (("connector", "alpha"),))] == 1
    assert not any(secret in response.text for secret in SECRETS)


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
async def test_read_only_endpoints_refuse_post(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.post(path)).status_code == 405


@pytest.mark.parametrize("path", ["/metrics", "/", "/status", "/status.json", "/login", "/connectors/alpha"])
async def test_the_public_listener_serves_no_console_page_and_no_metrics(client: httpx.AsyncClient,
                                                                         path: str) -> None:
    """Status, console and metrics are on the console listener only (loopback by default), never beside the
    public webhook receiver."""
    assert (await client.get(path)).status_code == 404


async def test_without_console_users_metrics_stay_on_the_public_listener(harness: Harness) -> None:
    """No console user, no console listener: Prometheus still scrapes /metrics where it did before; the status
    page, which needs a sign-in, is not served."""
    text = config_text(harness.config.store.url).split("[console]")[0] + "[[connectors]]" + config_text(
        harness.config.store.url).split("[[connectors]]", 1)[1]
    config = parse_config(text, env={})
    assert config.console.users == () and not config.console.active
    ctx = replace(harness.context(), config=config)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_web_app_from_context(ctx)),
                                 base_url="http://testserver") as public:
        assert (await public.get("/metrics")).status_code == 200
        assert (await public.get("/status")).status_code == 404
