"""``run`` with reloads: the config is loaded again on SIGHUP and, when it references Key Vault, every
``[keyvault] refresh_interval``; a valid config that differs from the running one (a rotated secret, an edited file)
replaces it. An invalid one is logged and the running config stays.

A replacement stops the running connectors as SIGTERM does (sends in progress finish; queued pages stay in the store's
outbox) and starts them again from the new config in the same process, so every new request uses the new secrets.
All connectors restart together; per-connector reloads are not implemented.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from sentinel_signl4.config import Config, ConfigError

__all__ = ["DEFAULT_REFRESH", "run_reloading"]

log = structlog.get_logger("sentinel_signl4.reload")

DEFAULT_REFRESH = 3600.0

Serve = Callable[[Config, asyncio.Event], Coroutine[Any, Any, None]]


def refresh_interval(config: Config, uses_keyvault: bool) -> float | None:
    """Seconds between scheduled re-reads: only a config with ``${keyvault:…}`` references has them."""
    if not uses_keyvault:
        return None
    return config.keyvault.refresh_interval.total_seconds() if config.keyvault else DEFAULT_REFRESH


async def run_reloading(load: Callable[[], Config], serve: Serve, stop: asyncio.Event, hup: asyncio.Event, *,
                        refresh: Callable[[Config], float | None]) -> None:
    """Serve the config ``load`` returns until ``stop``; replace it when a re-read finds a different, valid one."""
    config = load()
    while not stop.is_set():
        inner = asyncio.Event()
        watcher = asyncio.create_task(_watch(load, config, stop, hup, refresh(config)))
        server = asyncio.create_task(serve(config, inner))
        done, _ = await asyncio.wait({watcher, server}, return_when=asyncio.FIRST_COMPLETED)
        if server in done:  # the server ended on its own (an error): no reload hides that
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            server.result()
            return
        inner.set()
        await server
        replacement = watcher.result()
        if replacement is None:
            return
        config = replacement
        log.info("config_reloaded", connectors=[c.name for c in config.connectors])


async def _watch(load: Callable[[], Config], current: Config, stop: asyncio.Event, hup: asyncio.Event,
                 every: float | None) -> Config | None:
    """The next different, valid config (None once ``stop`` is set)."""
    while True:
        stopping = asyncio.create_task(stop.wait())
        hupped = asyncio.create_task(hup.wait())
        done, pending = await asyncio.wait({stopping, hupped}, timeout=every, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        if stop.is_set():
            return None
        reason = "sighup" if hupped in done else "schedule"
        hup.clear()
        try:
            candidate = await asyncio.to_thread(load)
        except ConfigError as exc:
            log.error("config_reload_refused", reason=reason, problems=[f"{k}: {r}" if k else r
                                                                       for k, r in exc.problems])
            continue
        if candidate == current:
            log.info("config_unchanged", reason=reason)
            continue
        log.info("config_changed", reason=reason)
        return candidate
