"""``/healthz`` (liveness), ``/readyz`` (readiness) and ``/metrics`` (Prometheus text format).

Readiness means "this replica can do its job": the store takes a write within ``ready_timeout`` seconds (a one-row
probe, so a locked, read-only or full SQLite file is caught, not only an unreachable server) and every enabled
connector has left ``starting`` (it finished a cycle, or it is on standby because another replica holds its
lease). A connector in ``error`` is still *ready*: it keeps retrying on its own, restarting or un-routing the
process would not fix a remote outage, and webhooks must keep landing in the inbox meanwhile. Errors are shown by
the status page and ``s4s_connector_up``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from sentinel_signl4.engine.health import HealthState, store_error_message
from sentinel_signl4.web.context import WebContext, json_response

__all__ = ["DEFAULT_READY_TIMEOUT", "HealthEndpoints"]

DEFAULT_READY_TIMEOUT = 2.0
# The row the write probe rewrites: in the cursors table, under a connector name no connector can have.
PROBE_CONNECTOR, PROBE_NAME = "", "readyz_write_probe"


class HealthEndpoints:
    """The three probe endpoints, as Starlette endpoints (bound methods)."""

    def __init__(self, ctx: WebContext, *, ready_timeout: float = DEFAULT_READY_TIMEOUT) -> None:
        self._ctx = ctx
        self._ready_timeout = ready_timeout
        self._enabled = [c.name for c in ctx.config.connectors if c.enabled]
        # At most one probe at a time: one that outlives a request (waiting for a lock) is awaited by the next.
        self._probe: asyncio.Task[None] | None = None

    async def healthz(self, _request: Request) -> Response:
        """Always 200 while the event loop can answer: the process is alive."""
        return json_response(200, {"status": "alive"})

    async def readyz(self, _request: Request) -> Response:
        """200 when ready, else 503; the body lists what is not ready either way."""
        not_ready: list[str] = []
        store = await self._check_store()
        if not store["ok"]:
            not_ready.append(f"store: {store['error']}")
        connectors: dict[str, str] = {}
        for name in self._enabled:
            health = self._ctx.health.get(name)
            state = health.state if health is not None else HealthState.STARTING
            connectors[name] = state.value
            if state is HealthState.STARTING:
                not_ready.append(f"connector {name}: no cycle completed yet")
        ready = not not_ready
        body = {"ready": ready, "store": store, "connectors": connectors, "not_ready": not_ready}
        return json_response(200 if ready else 503, body)

    async def _check_store(self) -> dict[str, Any]:
        if self._probe is None or self._probe.done():
            self._probe = asyncio.create_task(self._write_probe(), name="readyz-store-probe")
        probe = self._probe
        done, _ = await asyncio.wait({probe}, timeout=self._ready_timeout)
        if not done:
            return {"ok": False, "error": f"store not writable: no answer within {self._ready_timeout:g} s "
                                          "(locked by another writer, or too slow)"}
        exc = probe.exception()
        if exc is None:
            return {"ok": True, "error": None}
        return {"ok": False, "error": self._ctx.redactor.redact(store_error_message(exc).removeprefix("store: "))}

    async def _write_probe(self) -> None:
        await self._ctx.store.ping()
        await self._ctx.store.set_cursor(PROBE_CONNECTOR, PROBE_NAME, self._ctx.clock().isoformat())

    async def metrics(self, _request: Request) -> Response:
        """The process's metrics in the Prometheus text exposition format."""
        now = self._ctx.clock()
        for name in self._enabled:
            health = self._ctx.health.get(name)
            if health is not None:
                self._ctx.metrics.publish_health(health, now)
        # Rendering takes CPU in proportion to the series (0.4 s at 1,000 connectors, twice that under --workers,
        # which also reads the workers' files: docs/decisions.md): in a thread, so webhooks and probes are still
        # served meanwhile.
        body = await asyncio.to_thread(self._ctx.metrics.exposition)
        return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
