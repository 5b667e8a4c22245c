"""``run`` and ``run --once``: wire the runtime, the supervisor and (when configured) the HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog

from sentinel_signl4.bootstrap import Runtime, build_runtime
from sentinel_signl4.config import Config
from sentinel_signl4.domain import ActionKind
from sentinel_signl4.engine.health import HealthState
from sentinel_signl4.logs import configure_logging
from sentinel_signl4.watchdog_wiring import watchdog_running
from sentinel_signl4.web import WebServer, build_web_app
from sentinel_signl4.web.server import connection_limits

__all__ = ["run_forever", "run_once_all"]

log = structlog.get_logger("sentinel_signl4.runner")


async def run_once_all(config: Config) -> int:
    """One cycle of every enabled connector, concurrently. Exit code 1 when any connector is in error (or did not
    finish its cycle), else 0: degraded still pages, standby is another replica's turn."""
    configure_logging(level=config.logging.level, fmt=config.logging.format, secrets=config.secrets())
    runtime = await build_runtime(config)
    try:
        reports = await runtime.supervisor().run_each_once()
        for name, report in reports.items():
            health = runtime.connectors[name].runtime.health
            if report is None:
                log.info("cycle_skipped", connector=name, state=health.state.value, reason=health.reason)
                continue
            log.info("cycle_done", connector=name, seen=report.seen, queued=len(report.enqueued),
                     raised=report.done[ActionKind.RAISE_SIGNL], tagged=report.done[ActionKind.TAG_INCIDENT],
                     retried=sum(report.retried.values()), dead=sum(report.dead.values()),
                     state=health.state.value, reason=health.reason)
        states = [runtime.connectors[name].runtime.health.state for name in reports]
        fine = (HealthState.OK, HealthState.DEGRADED, HealthState.STANDBY)
        return 0 if all(state in fine for state in states) else 1
    finally:
        await runtime.aclose()


async def run_forever(config: Config, stop: asyncio.Event,
                      on_runtime: Callable[[Runtime], None] | None = None) -> None:
    """Serve ``config`` until ``stop``; ``on_runtime`` is told the runtime once it is built (reloads watch it)."""
    configure_logging(level=config.logging.level, fmt=config.logging.format, secrets=config.secrets())
    runtime = await build_runtime(config)
    if on_runtime is not None:
        on_runtime(runtime)
    try:
        await serve_until_stopped(runtime, stop)
    finally:
        await runtime.aclose()


async def serve_until_stopped(runtime: Runtime, stop: asyncio.Event, *, web: bool = True) -> None:
    """Run the supervisor until ``stop``; with ``web``, the HTTP server (webhooks, probes, metrics, status page)
    on ``[server]`` host and port alongside it.

    The server is always started when ``web`` is set: probes and metrics are needed in every sync mode. It binds
    before any connector runs, so a port in use fails the start instead of leaving connectors running unobserved.
    On ``stop`` the supervisor finishes its cycle first; the server keeps taking webhooks meanwhile and then drains.
    """
    supervisor = runtime.supervisor()
    async with contextlib.AsyncExitStack() as stack:
        if web:
            server = WebServer(build_web_app(runtime, on_event=supervisor.wake), host=runtime.config.server.host,
                               port=runtime.config.server.port, limits=connection_limits(runtime.config.server))
            await stack.enter_async_context(server.running())
        await stack.enter_async_context(watchdog_running(runtime, replica=supervisor.owner))
        log.info("started", connectors=[n for n, p in runtime.connectors.items() if p.config.enabled],
                 replica=supervisor.owner)
        await supervisor.run(stop)
    log.info("stopped")
