"""The request timeout the docs promise (README "The one documented duplicate window": at most 15 s) is the one
every remote call of a connector actually runs with."""

from __future__ import annotations

import httpx

from integration_harness import Harness
from sentinel_signl4.bootstrap import build_runtime
from sentinel_signl4.domain import SignlRequest

DOCUMENTED_READ_TIMEOUT = 15.0


async def test_sends_and_sentinel_calls_use_the_documented_request_timeout(harness: Harness) -> None:
    timeouts: dict[str, float | None] = {}

    def answer(request: httpx.Request) -> httpx.Response:
        timeouts[request.url.host + request.url.path] = request.extensions["timeout"]["read"]
        if "/webhook/" in request.url.path:
            return httpx.Response(201, json={"eventId": "e-1"})
        return httpx.Response(200, json={"value": []})

    runtime = await build_runtime(harness.config(), transport=httpx.MockTransport(answer))
    harness.runtimes.append(runtime)
    parts = runtime.connectors["contoso"]
    await parts.signl4.send_event(SignlRequest(external_id="timeout-probe", title="t"))
    assert parts.sentinel is not None
    await parts.sentinel.check_access()
    assert len(timeouts) == 2
    assert set(timeouts.values()) == {DOCUMENTED_READ_TIMEOUT}, timeouts
