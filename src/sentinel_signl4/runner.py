"""``run`` and ``run --once``: wire the runtime, the supervisor and (when configured) the HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Callable
from pathlib import Path

import structlog

from sentinel_signl4.bootstrap import Runtime, build_runtime
from sentinel_signl4.config import Config, StoreConfig
from sentinel_signl4.domain import ActionKind
from sentinel_signl4.domain.phone_view import format_phone_view
from sentinel_signl4.engine.health import ConnectorHealth, HealthState
from sentinel_signl4.engine.leases import replica_id
from sentinel_signl4.engine.preview import preview
from sentinel_signl4.engine.supervisor import Supervisor
from sentinel_signl4.live_reload import LiveReload, SwappableApp
from sentinel_signl4.logs import configure_logging
from sentinel_signl4.pause_ops import apply_config_pauses
from sentinel_signl4.redact import Redactor
from sentinel_signl4.watchdog_wiring import watchdog_running
from sentinel_signl4.web import WebServer, build_console_app_for, build_web_app
from sentinel_signl4.web.server import connection_limits
from sentinel_signl4.worker_pool import WorkerPool

__all__ = ["dry_run", "health_finder", "run_forever", "run_once_all"]

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


async def dry_run(config: Config, echo: Callable[[str], None]) -> int:
    """``run --dry-run``: poll every enabled connector once and print what it would page, as the phone shows it.
    Nothing is sent to SIGNL4 and nothing is written (the store is not migrated, no lease is taken); exit code 1
    when a connector could not be polled."""
    configure_logging(level=config.logging.level, fmt=config.logging.format, secrets=config.secrets())
    redact = Redactor(config.secrets()).redact
    with tempfile.TemporaryDirectory(prefix="s4s-dry-run-") as scratch:
        runtime = await build_runtime(config, migrate=False)
        try:
            await runtime.store.pauses(runtime.clock())  # the newest table: is the schema there?
        except Exception:  # noqa: BLE001 - no (or an older) schema: nothing was paged from it yet
            await runtime.aclose()
            echo("The state store has no current schema yet (first run): previewing against an empty one.")
            scratch_store = StoreConfig(url=f"sqlite:///{Path(scratch) / 'preview.db'}")
            runtime = await build_runtime(config.model_copy(update={"store": scratch_store}))
        return await _preview_all(runtime, echo, redact)


async def _preview_all(runtime: Runtime, echo: Callable[[str], None], redact: Callable[[str], str]) -> int:
    failed = False
    try:
        now = runtime.clock()
        for name, parts in runtime.connectors.items():
            if not parts.config.enabled:
                continue
            try:
                items = await preview(parts.runtime.forward, now)
            except Exception as exc:  # noqa: BLE001 - reported per connector; the others are still previewed
                echo(redact(f"== {name}: cannot poll: {type(exc).__name__}: {exc}"))
                failed = True
                continue
            echo(f"== {name}: {len(items)} incident(s) without a Signl")
            for item in items:
                verdict = {"page": "would page", "queued": "already queued"}.get(
                    item.verdict, f"{item.verdict} (maintenance window {item.pause.id if item.pause else ''})")
                echo(redact(f"#{item.incident.number} {item.incident.severity.value}: {verdict}"))
                echo(redact(format_phone_view(item.request)))
    finally:
        await runtime.aclose()
    return 1 if failed else 0


async def run_forever(config: Config, stop: asyncio.Event,
                      on_runtime: Callable[[Runtime], None] | None = None,
                      on_live: Callable[[LiveReload], None] | None = None, *, web: bool = True, worker: bool = False,
                      on_supervisor: Callable[[Supervisor], None] | None = None,
                      workers: Callable[[Runtime], WorkerPool] | None = None) -> None:
    """Serve ``config`` until ``stop``; ``on_runtime`` is told the runtime once it is built (reloads watch it),
    ``on_live`` how to apply a new config to it once it runs. ``workers`` (``run --workers N``): the pool whose
    processes run the connectors instead of this one (see ``serve_until_stopped``)."""
    configure_logging(level=config.logging.level, fmt=config.logging.format, secrets=config.secrets())
    runtime = await build_runtime(config)
    if on_runtime is not None:
        on_runtime(runtime)
    try:
        await serve_until_stopped(runtime, stop, web=web, on_live=on_live, worker=worker,
                                  on_supervisor=on_supervisor, pool=workers(runtime) if workers else None)
    finally:
        await runtime.aclose()


def health_finder(runtime: Runtime) -> Callable[[str], ConnectorHealth | None]:
    """``name`` → the runtime's live health of that connector (after reloads too); None for an unknown name."""
    def find(name: str) -> ConnectorHealth | None:
        parts = runtime.connectors.get(name)
        return parts.runtime.health if parts is not None else None
    return find


async def serve_until_stopped(runtime: Runtime, stop: asyncio.Event, *, web: bool = True,
                              on_live: Callable[[LiveReload], None] | None = None, worker: bool = False,
                              on_supervisor: Callable[[Supervisor], None] | None = None,
                              pool: WorkerPool | None = None) -> None:
    """Run the supervisor until ``stop``; with ``web``, the HTTP server (webhooks, probes) on ``[server]`` host and
    port alongside it, and the console (status, controls, metrics) on ``[console]`` host and port unless disabled.

    The server is always started when ``web`` is set: probes and metrics are needed in every sync mode. It binds
    before any connector runs, so a port in use fails the start instead of leaving connectors running unobserved.
    On ``stop`` the supervisor finishes its cycle first; the server keeps taking webhooks meanwhile and then drains.

    With a ``pool`` this process runs no connector: the pool's workers do. Webhooks wake the worker that runs the
    connector, a reload applied here is forwarded to the workers (SIGHUP), and the supervisor built here only
    keeps the reloaded connectors' list (it is never run and registers no instance file). A ``worker`` of such a
    pool leaves the config's pauses and the watchdog to its parent.
    """
    supervisor = runtime.supervisor(owner=replica_id()) if pool is not None else runtime.supervisor()
    if on_supervisor is not None:
        on_supervisor(supervisor)
    if not worker:
        for pause in await apply_config_pauses(runtime.store, runtime.config, runtime.clock()):
            log.info("pause_from_config", pause=pause.id, what=pause.describe())
    wake = pool.wake if pool is not None else supervisor.wake
    public: SwappableApp | None = None
    async with contextlib.AsyncExitStack() as stack:
        if web:
            # The public app is rebuilt after a reload (webhooks of new connectors, probes); the listener stays.
            public = SwappableApp(lambda: build_web_app(runtime, on_event=wake))
            server = WebServer(public, host=runtime.config.server.host,
                               port=runtime.config.server.port, limits=connection_limits(runtime.config.server))
            await stack.enter_async_context(server.running())
            console = runtime.config.console
            if console.active:
                # The console and /metrics: their own listener, loopback unless configured otherwise. It is not
                # rebuilt on a reload: that would sign every operator out (its sessions live in the app).
                console_server = WebServer(build_console_app_for(runtime), host=console.host, port=console.port,
                                           limits=connection_limits(runtime.config.server))
                await stack.enter_async_context(console_server.running())
        if on_live is not None:
            on_live(LiveReload(runtime, supervisor, on_applied=_after_reload(public, pool),
                               secrets=runtime.config.secrets()))
        if not worker:
            await stack.enter_async_context(watchdog_running(runtime, replica=supervisor.owner))
        log.info("started", connectors=[n for n, p in runtime.connectors.items() if p.config.enabled],
                 replica=supervisor.owner, workers=pool.count if pool is not None else None)
        if pool is not None:
            await pool.run(stop)
        else:
            await supervisor.run(stop)
    log.info("stopped")


def _after_reload(public: SwappableApp | None, pool: WorkerPool | None) -> Callable[[], None]:
    def applied() -> None:
        if public is not None:
            public.rebuild()
        if pool is not None:
            pool.reload()
    return applied
