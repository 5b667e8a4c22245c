"""Start the ``[watchdog]`` alongside ``run``: the periodic outage check and the event-loop watcher."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import httpx
import structlog

from sentinel_signl4 import __version__
from sentinel_signl4.bootstrap import REQUEST_TIMEOUT, LiveView, Runtime
from sentinel_signl4.clients.http import ssl_context
from sentinel_signl4.clients.ratelimit import limiter_for
from sentinel_signl4.clients.retry import RetryPolicy
from sentinel_signl4.clients.signl4 import Signl4Client
from sentinel_signl4.config.watchdog import WatchdogConfig
from sentinel_signl4.domain import SignlRequest
from sentinel_signl4.engine.loop_watch import LoopWatcher
from sentinel_signl4.engine.watchdog import WATCHDOG_SERVICE, Watchdog
from sentinel_signl4.redact import Redactor, redact_url

__all__ = ["SyncWebhookSender", "build_watchdog", "watchdog_running"]

log = structlog.get_logger("sentinel_signl4.watchdog")


class SyncWebhookSender:
    """Sends one event to the watchdog's webhook from a plain thread (used while the event loop is stuck)."""

    def __init__(self, webhook_url: str, *, ca_bundle: str | None) -> None:
        self._url = webhook_url
        self._client = httpx.Client(verify=ssl_context(ca_bundle), timeout=REQUEST_TIMEOUT, follow_redirects=False,
                                    headers={"User-Agent": f"sentinel-signl4/{__version__}"})

    def __call__(self, request: SignlRequest) -> None:
        try:
            response = self._client.post(self._url, json=request.to_payload())
        except httpx.HTTPError as exc:
            raise RuntimeError(f"POST {redact_url(self._url)} failed: {type(exc).__name__}") from None
        if response.status_code >= 300:
            raise RuntimeError(f"POST {redact_url(self._url)} -> HTTP {response.status_code}")

    def close(self) -> None:
        self._client.close()


def build_watchdog(runtime: Runtime, cfg: WatchdogConfig, *, replica: str) -> Watchdog:
    """The outage checker for ``runtime``'s enabled connectors, paging through SIGNL4's webhook."""
    client = Signl4Client(runtime.http, webhook_url=cfg.webhook_url.get_secret_value(),
                          limiter=limiter_for("watchdog"), retry=RetryPolicy(attempts=3, total_timeout=30.0),
                          timeout=REQUEST_TIMEOUT)
    # Live: a reload rebuilds, adds and removes connectors while the watchdog runs.
    healths = LiveView(runtime, lambda parts: parts.runtime.health if parts.config.enabled else None)
    return Watchdog(runtime.store, client.send_event, healths, after=cfg.after,
                    redactor=Redactor(runtime.config.secrets()), replica=replica)


@contextlib.asynccontextmanager
async def watchdog_running(runtime: Runtime, *, replica: str) -> AsyncIterator[None]:
    """While the block runs: check outages every ``check_interval`` and watch the event loop (no-op without a
    ``[watchdog]`` table)."""
    cfg = runtime.config.watchdog
    if cfg is None:
        yield
        return
    watchdog = build_watchdog(runtime, cfg, replica=replica)
    sender = SyncWebhookSender(cfg.webhook_url.get_secret_value(), ca_bundle=runtime.config.tls.ca_bundle)
    watcher = LoopWatcher(sender, stall_after=cfg.stall_after.total_seconds(), replica=replica,
                          service=WATCHDOG_SERVICE)
    stop = asyncio.Event()
    watcher.start()
    tasks = [asyncio.create_task(watcher.heartbeat(stop), name="watchdog-heartbeat"),
             asyncio.create_task(_check_periodically(watchdog, cfg.check_interval.total_seconds(), stop,
                                                     runtime.clock), name="watchdog-check")]
    log.info("watchdog_started", after_seconds=cfg.after.total_seconds(),
             stall_after_seconds=cfg.stall_after.total_seconds())
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.to_thread(watcher.stop)
        sender.close()


async def _check_periodically(watchdog: Watchdog, interval: float, stop: asyncio.Event,
                              clock: Callable[[], datetime]) -> None:
    while not stop.is_set():
        try:
            await watchdog.check(clock())
        except Exception:
            log.exception("watchdog_check_failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
