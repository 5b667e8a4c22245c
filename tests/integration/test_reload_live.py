"""``LiveReload`` on a running server (in this process, against the emulators): ``enabled = false`` stops a connector
and releases its lease; settings bound at start are reported as needing a restart while the rest is applied; a
connector added by a reload gets its webhooks at once, on the same listener."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from crash_support import free_port
from integration_harness import Harness
from sentinel_signl4.bootstrap import Runtime
from sentinel_signl4.config import Config, parse_config
from sentinel_signl4.live_reload import LiveReload, plan_reload
from sentinel_signl4.runner import run_forever
from sentinel_signl4.web.app import web_context

TOKEN = "reload-webhook-token-0123456789abcdef"


async def until(condition: Callable[[], bool], what: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.05)


def two(harness: Harness, port: int, *, beta: dict[str, Any] | None = None, with_beta: bool = True,
        store_url: str | None = None, alpha: dict[str, Any] | None = None, gamma: dict[str, Any] | None = None,
        ) -> Config:
    """alpha (High) and beta (Medium), and gamma (Low) when given its overrides."""
    common: dict[str, Any] = {"server": {"host": "127.0.0.1", "port": port}}
    if store_url is not None:
        common["store_url"] = store_url

    def one(name: str, severity: str, extra: dict[str, Any]) -> str:
        return harness.config_text(name=name, **common, overrides={
            "filter": {"severities": [severity], "max_age": "15m"}, "signl4": {"allow_shared_team": True},
            **extra, "connector": {"poll_interval": "0.5s", **extra.get("connector", {})}})

    text = one("alpha", "High", alpha or {})
    for name, severity, extra, wanted in (("beta", "Medium", beta, with_beta), ("gamma", "Low", gamma, gamma)):
        if wanted:
            more = one(name, severity, extra or {})
            text += "\n" + more[more.index("[[connectors]]"):]
    return parse_config(text, source="reload.toml")


def event() -> dict[str, Any]:
    return {"eventType": 201, "eventRaisedUtc": "2017-09-01T08:11:37.4815663Z",
            "subscription": {"id": "0acf8014-22f2-4503-88d7-f7d05b46744f"},
            "user": {"username": "Rene", "mailaddress": "rene@signl4.com", "id": "f0bd5063-9588-51cf-b3d9"},
            "alert": {"statusCode": 2, "eventId": "2518783235949759942_fbc7b4a4", "externalEventId": "INC091210",
                      "acknowledgedUserIds": [], "id": "2518981069381242800_2ab1"},
            "id": "dd209a2d-e037-41ee-b37d-f605cc0a39fb"}


async def test_disable_add_and_settings_that_need_a_restart(harness: Harness,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    first = two(harness, port)
    runtimes: list[Runtime] = []
    lives: list[LiveReload] = []
    stop = asyncio.Event()
    task = asyncio.create_task(run_forever(first, stop, on_runtime=runtimes.append, on_live=lives.append))
    try:
        await until(lambda: bool(lives), "the server to run")
        runtime, live = runtimes[0], lives[0]
        await until(lambda: all(p.runtime.health.cycles >= 1 for p in runtime.connectors.values()), "both cycles")
        ctx = web_context(runtime)  # as the console (not rebuilt on a reload) holds it
        alpha_task = live.supervisor._tasks["alpha"]
        alpha_parts = runtime.connectors["alpha"]

        # beta disabled, gamma added (takes webhooks), the store URL and the port changed (need a restart).
        new = two(harness, free_port(), beta={"connector": {"enabled": False}},
                  gamma={"sync": {"mode": "webhook", "webhook_token": TOKEN}},
                  store_url=f"sqlite:///{harness.tmp / 'elsewhere.db'}")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            path = f"/webhooks/signl4/gamma/{TOKEN}"
            assert (await client.post(path, json=event())).status_code == 404  # unknown before the reload
            plan = await live.apply(new)
            assert plan.added == ("gamma",) and plan.changed == ("beta",) and plan.unchanged == ("alpha",)
            assert set(plan.needs_restart) == {"store.url", "server.port"}
            # The listener stayed where it was, and now routes gamma's webhooks.
            assert (await client.post(path, json=event())).status_code == 202
        assert "config_needs_restart" in capsys.readouterr().err
        assert runtime.config.store.url == first.store.url and runtime.config.server.port == port
        assert live.supervisor.names() == ["alpha", "gamma"]
        lease = await runtime.store.get_lease("connector:beta")
        assert lease is not None and lease.expires_at <= datetime.now(UTC)  # beta released its lease
        assert live.supervisor._tasks["alpha"] is alpha_task and runtime.connectors["alpha"] is alpha_parts
        assert not alpha_task.done()
        gamma_health = runtime.connectors["gamma"].runtime.health
        await until(lambda: gamma_health.cycles >= 1, "gamma's first cycle")
        beta_health = runtime.connectors["beta"].runtime.health
        assert beta_health.cycles == 0  # rebuilt disabled: never scheduled
        # What the console shows follows the rebuilt and added connectors.
        assert ctx.health["beta"] is beta_health and ctx.health["gamma"] is gamma_health
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


def test_plan_reload_names_what_changed(harness: Harness) -> None:
    port = free_port()
    before = two(harness, port)
    same = two(harness, port)
    assert plan_reload(before, same).changed == () and plan_reload(before, same).needs_restart == ()
    after = two(harness, port, alpha={"connector": {"poll_interval": "3s"}}, with_beta=False)
    plan = plan_reload(before, after)
    assert plan.changed == ("alpha",) and plan.removed == ("beta",) and plan.added == ()
    # [health] feeds every connector (stuck_after): all are rebuilt. The console is built once: restart.
    text = harness.config_text(server={"host": "127.0.0.1", "port": port},
                               extra_tables='[health]\nstuck_after = "9m"\n[console]\nport = 18099\n')
    edited = parse_config(text, source="reload.toml")
    plan = plan_reload(parse_config(harness.config_text(server={"host": "127.0.0.1", "port": port}),
                                    source="reload.toml"), edited)
    assert plan.changed == ("contoso",) and plan.needs_restart == ("console",)
