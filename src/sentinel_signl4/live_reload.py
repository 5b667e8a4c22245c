"""Apply a new config to a running process connector by connector (SIGHUP, an edited file, a rotated secret).

``plan_reload`` compares the running config with the new one: connectors added, removed, changed (their section or
a process-wide setting they are built from) and unchanged. ``LiveReload.apply`` then stops the removed ones, stops
and rebuilds the changed ones, starts the new ones, and leaves the unchanged ones alone (same task, lease and
clients). A stopped connector finishes the cycle in progress first and releases its lease; what it had queued stays
in the store's outbox and goes out from its successor. Settings bound when the process started (store, listeners,
TLS of the shared HTTP client, the console and the watchdog) are reported as needing a restart and keep their
running values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from sentinel_signl4.bootstrap import ConnectorParts, Runtime
from sentinel_signl4.config import Config, ConnectorConfig
from sentinel_signl4.engine.supervisor import Supervisor
from sentinel_signl4.logs import configure_logging
from sentinel_signl4.pause_ops import apply_config_pauses

__all__ = ["LiveReload", "ReloadPlan", "SwappableApp", "plan_reload"]

log = structlog.get_logger("sentinel_signl4.reload")

# (section, field): bound when the process started; a change needs a restart.
_FIXED = (("store", "url"), ("store", "state_dir"), ("server", "host"), ("server", "port"))
# Whole sections built once at start: the console's app (its users and sessions live in it), the watchdog.
_FIXED_SECTIONS = ("console", "watchdog", "tls")


@dataclass(frozen=True)
class ReloadPlan:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    #: Settings that differ but apply only after a restart, as ``section.field``.
    needs_restart: tuple[str, ...] = ()


def _inputs(config: Config, cfg: ConnectorConfig) -> tuple[Any, ...]:
    """What a connector is built from: its section and the process-wide settings ``build_connector`` reads (``[tls]``
    too, but that one needs a restart: the shared HTTP client is built with it)."""
    return (cfg, config.store.retention, config.stuck_after(cfg))


def plan_reload(old: Config, new: Config) -> ReloadPlan:
    before = {c.name: c for c in old.connectors}
    after = {c.name: c for c in new.connectors}
    changed = tuple(n for n in after if n in before and _inputs(old, before[n]) != _inputs(new, after[n]))
    fixed = [f"{section}.{name}" for section, name in _FIXED
             if getattr(getattr(old, section), name) != getattr(getattr(new, section), name)]
    fixed += [section for section in _FIXED_SECTIONS if getattr(old, section) != getattr(new, section)]
    if old.server.model_dump(exclude={"host", "port", "max_body_bytes", "body_timeout"}) != \
            new.server.model_dump(exclude={"host", "port", "max_body_bytes", "body_timeout"}):
        fixed.append("server (connection limits)")
    return ReloadPlan(added=tuple(n for n in after if n not in before),
                      removed=tuple(n for n in before if n not in after),
                      changed=changed,
                      unchanged=tuple(n for n in after if n in before and n not in changed),
                      needs_restart=tuple(fixed))


def effective(running: Config, new: Config) -> Config:
    """``new`` with the settings that cannot change live kept at their running values."""
    store = new.store.model_copy(update={"url": running.store.url, "state_dir": running.store.state_dir})
    server = running.server.model_copy(update={"max_body_bytes": new.server.max_body_bytes,
                                               "body_timeout": new.server.body_timeout})
    return new.model_copy(update={"store": store, "server": server, "console": running.console,
                                  "watchdog": running.watchdog, "tls": running.tls})


class SwappableApp:
    """An ASGI app whose target is rebuilt after a reload; requests under way finish on the app they started on."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self.app = build()

    def rebuild(self) -> None:
        self.app = self._build()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@dataclass
class LiveReload:
    """Applies new configs to ``runtime`` and ``supervisor`` (both running); ``on_applied`` runs after each one
    (the HTTP apps are rebuilt there, so webhooks reach new connectors)."""

    runtime: Runtime
    supervisor: Supervisor
    on_applied: Callable[[], None] = lambda: None
    secrets: set[str] = field(default_factory=set)

    async def apply(self, new: Config) -> ReloadPlan:
        running = self.runtime.config
        plan = plan_reload(running, new)
        config = effective(running, new)
        # Old secrets stay redacted too: requests begun with them may still log.
        self.secrets |= running.secrets() | config.secrets()
        configure_logging(level=config.logging.level, fmt=config.logging.format, secrets=self.secrets)
        if plan.needs_restart:
            log.warning("config_needs_restart", settings=list(plan.needs_restart))
        fresh = {c.name: c for c in config.connectors}
        failed: list[str] = []
        for name in plan.removed:
            await self._stop(name)
        for name in plan.changed + plan.added:
            if not await self._start(fresh[name], config):
                failed.append(name)
        self.runtime.config = config
        for pause in await apply_config_pauses(self.runtime.store, config, self.runtime.clock()):
            log.info("pause_from_config", pause=pause.id, what=pause.describe())
        self.on_applied()
        log.info("config_reloaded", added=list(plan.added), removed=list(plan.removed), changed=list(plan.changed),
                 unchanged=list(plan.unchanged), failed=failed)
        return plan

    async def _stop(self, name: str) -> None:
        old = self.runtime.connectors.get(name)
        await self.supervisor.stop_connector(name)
        if old is not None:
            await self.runtime.drop_connector(old)
        log.info("connector_stopped", connector=name, reason="reload")

    async def _start(self, cfg: ConnectorConfig, config: Config) -> bool:
        """Build ``cfg`` first (a failure leaves the running one in place), then swap it in."""
        try:
            parts: ConnectorParts = self.runtime.build_alone(cfg, config)
        except Exception as exc:  # noqa: BLE001 - reported; the connector of that name keeps its running version
            log.error("connector_rebuild_failed", connector=cfg.name, error=f"{type(exc).__name__}: {exc}")
            return False
        old = self.runtime.connectors.get(cfg.name)
        if old is not None:
            await self.supervisor.stop_connector(cfg.name)
            await self.runtime.drop_connector(old)
        self.runtime.connectors[cfg.name] = parts
        if cfg.enabled:
            self.supervisor.add_connector(self.runtime.scheduled(cfg.name))
            log.info("connector_started", connector=cfg.name, reason="reload")
        else:
            log.info("connector_disabled", connector=cfg.name)
        return True

