"""``run`` with reloads: the config is loaded again on SIGHUP, when it references Key Vault every
``[keyvault] refresh_interval``, and after a connector's credential or secret was refused (at most once a minute);
a valid config that differs from the running one (a rotated secret in Key Vault or in a secret file, an edited
file) replaces it. An invalid one is logged and the running config stays.

A replacement stops the running connectors as SIGTERM does (sends in progress finish; queued pages stay in the store's
outbox) and starts them again from the new config in the same process, so every new request uses the new secrets.
All connectors restart together; per-connector reloads are not implemented.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from sentinel_signl4.config import Config, ConfigError

__all__ = ["DEFAULT_REFRESH", "AuthWatch", "refused_credentials", "run_reloading"]

log = structlog.get_logger("sentinel_signl4.reload")

DEFAULT_REFRESH = 3600.0

# A connector error that says a credential or secret was refused: Entra (AADSTS…), SIGNL4's unknown team secret
# (code 3004) or a 401 (API key). The same texts the health model shows (engine/health.py).
_REFUSED = re.compile(r"\bAADSTS\d+|\b3004\b|\b401\b")


def refused_credentials(errors: list[str | None]) -> bool:
    """Whether any connector error says a credential or secret was refused."""
    return any(error is not None and _REFUSED.search(error) for error in errors)


class AuthWatch:
    """Triggers a re-read when ``errors()`` shows a refused credential: checked every ``every`` seconds, at most one
    re-read per ``gap`` seconds (a wrong secret that stays wrong must not hammer Key Vault)."""

    def __init__(self, errors: Callable[[], list[str | None]], *, every: float = 15.0, gap: float = 60.0) -> None:
        self.errors = errors
        self.every = every
        self.gap = gap
        self._last = float("-inf")

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._last < self.gap or not refused_credentials(self.errors()):
            return False
        self._last = now
        return True

Serve = Callable[[Config, asyncio.Event], Coroutine[Any, Any, None]]


def refresh_interval(config: Config, uses_keyvault: bool) -> float | None:
    """Seconds between scheduled re-reads: only a config with ``${keyvault:…}`` references has them."""
    if not uses_keyvault:
        return None
    return config.keyvault.refresh_interval.total_seconds() if config.keyvault else DEFAULT_REFRESH


async def run_reloading(load: Callable[[], Config], serve: Serve, stop: asyncio.Event, hup: asyncio.Event, *,
                        refresh: Callable[[Config], float | None], auth: AuthWatch | None = None) -> None:
    """Serve the config ``load`` returns until ``stop``; replace it when a re-read finds a different, valid one."""
    config = load()
    while not stop.is_set():
        inner = asyncio.Event()
        watcher = asyncio.create_task(_watch(load, config, stop, hup, refresh(config), auth))
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
                 every: float | None, auth: AuthWatch | None) -> Config | None:
    """The next different, valid config (None once ``stop`` is set)."""
    scheduled = None if every is None else time.monotonic() + every
    while True:
        waits = [w for w in (None if scheduled is None else max(0.0, scheduled - time.monotonic()),
                             None if auth is None else auth.every) if w is not None]
        stopping = asyncio.create_task(stop.wait())
        hupped = asyncio.create_task(hup.wait())
        done, pending = await asyncio.wait({stopping, hupped}, timeout=min(waits) if waits else None,
                                           return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        if stop.is_set():
            return None
        if hupped in done:
            reason = "sighup"
        elif scheduled is not None and time.monotonic() >= scheduled:
            reason = "schedule"
        elif auth is not None and auth.due():
            reason = "credential_refused"
        else:
            continue
        if every is not None:
            scheduled = time.monotonic() + every
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
