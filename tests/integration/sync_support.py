"""The two-way sync harness shared by the reverse-sync and source-parity tests: one connector with its receiver and
one fresh High incident already raised as a Signl, on either incident source (a ``Side``, Sentinel by default)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from integration_harness import Harness
from sentinel_signl4.bootstrap import Runtime
from sentinel_signl4.domain import external_id_for
from sentinel_signl4.web.app import build_web_app
from source_sides import Side, View, side_for

__all__ = ["ONLY_FRESH_HIGH", "TOKEN", "Sync", "ext", "resolves_sent", "start"]

TOKEN = "test-webhook-token-0123456789abcdef"
ONLY_FRESH_HIGH = {"severities": ["High"], "max_age": "15m"}


def ext(side: Side, name: str, connector: str = "contoso") -> str:
    return external_id_for(connector, side.resource_id(name))


def resolves_sent(harness: Harness, external_id: str) -> int:
    """Inbound events carrying X-S4-Status: resolved for ``external_id`` (what the connector sent SIGNL4)."""
    return sum(1 for event in list(harness.state.signl4.events.values()) if event.external_id == external_id
               and any(p.name == "X-S4-Status" and str(p.value).lower() == "resolved" for p in event.parameters))


class Sync:
    """A connector with its receiver, one fresh High incident raised as a Signl, and SIGNL4's users."""

    def __init__(self, harness: Harness, side: Side, runtime: Runtime, name: str) -> None:
        self.h = harness
        self.side = side
        self.runtime = runtime
        self.name = name
        self.connector = runtime.connectors["contoso"].runtime
        self.web = httpx.AsyncClient(transport=httpx.ASGITransport(app=build_web_app(runtime)),
                                     base_url="https://connector.test")

    @property
    def resource_id(self) -> str:
        return self.side.resource_id(self.name)

    @property
    def ext(self) -> str:
        return ext(self.side, self.name)

    def alert(self, external_id: str | None = None) -> Any:
        [alert] = self.h.alerts(external_id or self.ext)
        return alert

    @property
    def alert_id(self) -> str:
        return str(self.alert().id)

    def view(self, name: str | None = None) -> View:
        return self.side.view(name or self.name)

    def props(self) -> dict[str, Any]:
        """The incident's raw Sentinel ``properties`` (Sentinel side only; ``view()`` reads either source)."""
        assert self.side.kind == "sentinel", "props() reads Sentinel's resource shape: use view()"
        return dict(self.view().raw["properties"])

    def comments(self) -> list[str]:
        return list(self.view().comments)

    async def deliver(self, **kwargs: Any) -> None:
        report = await self.h.state.signl4.deliver_outbound(self.web, **kwargs)
        assert report.failed == 0, report

    async def cycle(self, minutes: float = 0) -> Any:
        return await self.connector.run_once(datetime.now(UTC) + timedelta(minutes=minutes))


async def start(harness: Harness, side: Side | None = None, *, sync: dict[str, Any] | None = None,
                webhook: bool = True, api_key: bool = True, owner_map: bool = True, mode: str | None = None,
                title: str = "Credential dumping on DC01") -> Sync:
    """Create the incident on ``side`` (Sentinel if omitted), build the connector and raise the Signl.

    ``webhook`` registers the receiver with SIGNL4 and sets ``sync.webhook_token``; ``mode`` is then the default for
    ``sync.mode`` (one given in ``sync`` wins). Without it the config's ``auto`` applies: ``both`` (receiver and
    REST poll) when ``api_key`` is set too. ``owner_map`` maps the demo users unless ``sync`` brings its own."""
    side = side or side_for("sentinel", harness)
    name = side.create(title)
    overrides: dict[str, Any] = {"filter": ONLY_FRESH_HIGH, "sync": dict(sync or {})}
    if owner_map:
        overrides["sync"].setdefault("owner_map", {u.mail: u.object_id for u in harness.world.users})
    if webhook:
        if mode is not None:
            overrides["sync"].setdefault("mode", mode)
        overrides["sync"]["webhook_token"] = TOKEN
        harness.state.signl4.register_webhook(
            harness.world.signl4_subscription_id, f"https://connector.test/webhooks/signl4/contoso/{TOKEN}")
    runtime = await harness.runtime(source=side.kind, api_key=api_key, overrides=overrides)
    s = Sync(harness, side, runtime, name)
    await s.cycle()
    assert len(harness.alerts(s.ext)) == 1
    if webhook:
        await s.deliver()  # the 200 "new Signl" notification: accepted and ignored
    return s
