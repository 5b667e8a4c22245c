"""Build the Starlette app: routes only; each endpoint lives in its own module."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.routing import Route

from sentinel_signl4.redact import Redactor
from sentinel_signl4.web.context import WebContext
from sentinel_signl4.web.dashboard import Dashboard
from sentinel_signl4.web.health import DEFAULT_READY_TIMEOUT, HealthEndpoints
from sentinel_signl4.web.webhook import WEBHOOK_PREFIX, WebhookReceiver

if TYPE_CHECKING:
    from sentinel_signl4.bootstrap import Runtime

__all__ = ["build_web_app", "build_web_app_from_context"]


def build_web_app(runtime: Runtime, *, clock: Callable[[], datetime] | None = None,
                  ready_timeout: float = DEFAULT_READY_TIMEOUT,
                  on_event: Callable[[str], None] | None = None) -> Starlette:
    """The app for ``runtime``: its config, store, metrics and connectors' live health.

    ``clock`` (default: the runtime's) stamps inbox events and the status page; ``ready_timeout`` bounds the store
    ping of ``/readyz`` in seconds.
    """
    config = runtime.config
    ctx = WebContext(
        config=config,
        store=runtime.store,
        metrics=runtime.metrics,
        health={name: parts.runtime.health for name, parts in runtime.connectors.items()},
        clock=clock or runtime.clock,
        redactor=Redactor(config.secrets()),
        on_event=on_event,
    )
    return build_web_app_from_context(ctx, ready_timeout=ready_timeout)


def build_web_app_from_context(ctx: WebContext, *, ready_timeout: float = DEFAULT_READY_TIMEOUT) -> Starlette:
    """The app for an explicit ``WebContext`` (what ``build_web_app`` uses; handy without a full ``Runtime``)."""
    receiver = WebhookReceiver(ctx.config.connectors, store=ctx.store, metrics=ctx.metrics, clock=ctx.clock,
                               max_body_bytes=ctx.config.server.max_body_bytes, on_event=ctx.on_event,
                               body_timeout=ctx.config.server.body_timeout.total_seconds())
    probes = HealthEndpoints(ctx, ready_timeout=ready_timeout)
    dashboard = Dashboard(ctx)
    routes = [
        # One route for the whole prefix: the receiver splits connector and token itself, so that a token
        # containing "/" still works and every malformed path gets the same 404 as a wrong token.
        Route(WEBHOOK_PREFIX + "/{rest:path}", receiver.handle, methods=["POST"]),
        # The bare prefix too: otherwise Starlette would answer it with a redirect to "prefix/" instead of 404.
        Route(WEBHOOK_PREFIX, receiver.handle, methods=["POST"]),
        Route("/healthz", probes.healthz),
        Route("/readyz", probes.readyz),
        Route("/metrics", probes.metrics),
        Route("/", dashboard.page),
        Route("/status", dashboard.page),
        Route("/status.json", dashboard.json),
    ]
    return Starlette(routes=routes)
