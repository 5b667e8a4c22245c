"""Build the public Starlette app (webhooks and probes); each endpoint lives in its own module. The status page,
the console and ``/metrics`` are on the console's own listener (``console_app.py``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.routing import Route

from sentinel_signl4.bootstrap import LiveView
from sentinel_signl4.redact import Redactor
from sentinel_signl4.web.console_app import build_console_app
from sentinel_signl4.web.context import WebContext
from sentinel_signl4.web.health import DEFAULT_READY_TIMEOUT, HealthEndpoints
from sentinel_signl4.web.webhook import WEBHOOK_PREFIX, WebhookReceiver

if TYPE_CHECKING:
    from sentinel_signl4.bootstrap import Runtime

__all__ = ["build_console_app_for", "build_web_app", "build_web_app_from_context", "web_context"]


def build_web_app(runtime: Runtime, *, clock: Callable[[], datetime] | None = None,
                  ready_timeout: float = DEFAULT_READY_TIMEOUT,
                  on_event: Callable[[str], None] | None = None) -> Starlette:
    """The public app for ``runtime``: its config, store, metrics and connectors' live health.

    ``clock`` (default: the runtime's) stamps inbox events and the status page; ``ready_timeout`` bounds the store
    ping of ``/readyz`` in seconds.
    """
    return build_web_app_from_context(web_context(runtime, clock=clock, on_event=on_event),
                                      ready_timeout=ready_timeout)


def web_context(runtime: Runtime, *, clock: Callable[[], datetime] | None = None,
                on_event: Callable[[str], None] | None = None) -> WebContext:
    """What the endpoints of both listeners need from ``runtime``."""
    config = runtime.config
    return WebContext(
        config=config,
        store=runtime.store,
        metrics=runtime.metrics,
        # Live views: a reload rebuilds connectors, and the console's app outlives it.
        health=LiveView(runtime, lambda parts: parts.runtime.health),
        clock=clock or runtime.clock,
        redactor=Redactor(config.secrets()),
        on_event=on_event,
        forwards=LiveView(runtime, lambda parts: parts.runtime.forward),
    )


def build_web_app_from_context(ctx: WebContext, *, ready_timeout: float = DEFAULT_READY_TIMEOUT) -> Starlette:
    """The app for an explicit ``WebContext`` (what ``build_web_app`` uses; handy without a full ``Runtime``)."""
    receiver = WebhookReceiver(ctx.config.connectors, store=ctx.store, metrics=ctx.metrics, clock=ctx.clock,
                               max_body_bytes=ctx.config.server.max_body_bytes, on_event=ctx.on_event,
                               body_timeout=ctx.config.server.body_timeout.total_seconds())
    probes = HealthEndpoints(ctx, ready_timeout=ready_timeout)
    routes = [
        # One route for the whole prefix: the receiver splits connector and token itself, so that a token
        # containing "/" still works and every malformed path gets the same 404 as a wrong token.
        Route(WEBHOOK_PREFIX + "/{rest:path}", receiver.handle, methods=["POST"]),
        # The bare prefix too: otherwise Starlette would answer it with a redirect to "prefix/" instead of 404.
        Route(WEBHOOK_PREFIX, receiver.handle, methods=["POST"]),
        Route("/healthz", probes.healthz),
        Route("/readyz", probes.readyz),
    ]
    if not ctx.config.console.active:
        # No console listener (no user configured): Prometheus still finds /metrics where it always was.
        routes.append(Route("/metrics", probes.metrics))
    return Starlette(routes=routes)


def build_console_app_for(runtime: Runtime, *, clock: Callable[[], datetime] | None = None) -> Starlette:
    """The console app (``[console]``) for ``runtime``."""
    return build_console_app(web_context(runtime, clock=clock))
