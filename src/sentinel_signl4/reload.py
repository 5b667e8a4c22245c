"""``run`` with reloads: the config is loaded again on SIGHUP, when the config file's content changes (checked every
few seconds), when it references Key Vault every ``[keyvault] refresh_interval``, and after a connector's credential
or secret was refused (at most once a minute); a valid config that differs from the running one (a rotated secret in
Key Vault or in a secret file, an edited file) replaces it. An invalid one is logged and the running config stays.

With ``apply`` (what ``run`` uses: ``live_reload.LiveReload``), the new config is applied connector by connector
while the others keep running. Without it, a replacement stops the running connectors as SIGTERM does (sends in
progress finish; queued pages stay in the store's outbox) and starts them again from the new config.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import structlog

from sentinel_signl4.config import Config, ConfigError

__all__ = ["DEFAULT_REFRESH", "AuthWatch", "FileWatch", "refused_credentials", "run_reloading"]

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

class FileWatch:
    """Says when the config file's content changed: its size and mtime are looked at every ``every`` seconds, its
    SHA-256 only when they moved (an editor's save that writes the same bytes is no change). A missing file (between
    an editor's delete and rename) is no change either."""

    def __init__(self, path: Path, *, every: float = 2.0) -> None:
        self.path = path
        self.every = every
        self._stat: tuple[int, int] | None = None
        self._digest: str | None = None
        self.mark()

    def _read(self) -> tuple[tuple[int, int], str] | None:
        try:
            st = self.path.stat()
            return (st.st_mtime_ns, st.st_size), hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            return None

    def mark(self) -> None:
        """Take the file as it is now as seen (after it was loaded)."""
        seen = self._read()
        if seen is not None:
            self._stat, self._digest = seen

    def changed(self) -> bool:
        try:
            st = self.path.stat()
        except OSError:
            return False
        if (st.st_mtime_ns, st.st_size) == self._stat:
            return False
        seen = self._read()
        if seen is None:
            return False
        self._stat = seen[0]
        if seen[1] == self._digest:
            return False
        self._digest = seen[1]
        return True


Serve = Callable[[Config, asyncio.Event], Coroutine[Any, Any, None]]
#: Applies a new config to the running server; False when it cannot (not serving yet): then it is restarted.
Apply = Callable[[Config], Awaitable[bool]]


def refresh_interval(config: Config, uses_keyvault: bool) -> float | None:
    """Seconds between scheduled re-reads: only a config with ``${keyvault:…}`` references has them."""
    if not uses_keyvault:
        return None
    return config.keyvault.refresh_interval.total_seconds() if config.keyvault else DEFAULT_REFRESH


async def run_reloading(load: Callable[[], Config], serve: Serve, stop: asyncio.Event, hup: asyncio.Event, *,
                        refresh: Callable[[Config], float | None], auth: AuthWatch | None = None,
                        apply: Apply | None = None, file: FileWatch | None = None) -> None:
    """Serve the config ``load`` returns until ``stop``; apply (or restart with) a different, valid one that a
    re-read finds."""
    config = load()
    while not stop.is_set():
        inner = asyncio.Event()
        server = asyncio.create_task(serve(config, inner))
        replacement: Config | None = None
        while True:
            watcher = asyncio.create_task(_watch(load, config, stop, hup, refresh(config), auth, file))
            done, _ = await asyncio.wait({watcher, server}, return_when=asyncio.FIRST_COMPLETED)
            if server in done:  # the server ended on its own (an error): no reload hides that
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
                server.result()
                return
            replacement = watcher.result()
            if replacement is None or apply is None or not await _applied(apply, replacement):
                break
            config = replacement
        inner.set()
        await server
        if replacement is None:
            return
        config = replacement
        log.info("config_reloaded", connectors=[c.name for c in config.connectors], restarted=True)


async def _applied(apply: Apply, config: Config) -> bool:
    try:
        return await apply(config)
    except Exception as exc:  # the process keeps serving; what was applied stays applied
        log.exception("config_reload_failed", error=f"{type(exc).__name__}: {exc}")
        return True


async def _watch(load: Callable[[], Config], current: Config, stop: asyncio.Event, hup: asyncio.Event,
                 every: float | None, auth: AuthWatch | None, file: FileWatch | None) -> Config | None:
    """The next different, valid config (None once ``stop`` is set)."""
    scheduled = None if every is None else time.monotonic() + every
    while True:
        waits = [w for w in (None if scheduled is None else max(0.0, scheduled - time.monotonic()),
                             None if auth is None else auth.every, None if file is None else file.every)
                 if w is not None]
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
        elif file is not None and file.changed():
            reason = "file_changed"
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
            if file is not None:
                file.mark()
            log.error("config_reload_refused", reason=reason, problems=[f"{k}: {r}" if k else r
                                                                       for k, r in exc.problems])
            continue
        if file is not None:
            file.mark()
        if candidate == current:
            log.info("config_unchanged", reason=reason)
            continue
        log.info("config_changed", reason=reason)
        return candidate
