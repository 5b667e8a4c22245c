"""One worker of ``run --workers N`` (``sentinel-signl4 worker``, started by the parent, never by hand): ``run``
without the HTTP listeners, for the connectors of its partition only.

It reads wakes from stdin (one connector name per line; end of input means the parent is gone, so it stops) and
writes its connectors' health to stdout whenever it changes (``worker_protocol``). It reloads on SIGHUP (the parent
forwards it after validating the new file) and on its schedule (Key Vault references); it does not watch the file
itself, so an invalid edit is reported once, by the parent. Config pauses are applied by the parent.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from sentinel_signl4.bootstrap import Runtime
from sentinel_signl4.config import Config, load_config
from sentinel_signl4.engine.supervisor import Supervisor
from sentinel_signl4.live_reload import LiveReload
from sentinel_signl4.reload import AuthWatch, refresh_interval, run_reloading
from sentinel_signl4.runner import run_forever
from sentinel_signl4.worker_protocol import health_line, health_snapshot, partition

__all__ = ["serve_partition"]

log = structlog.get_logger("sentinel_signl4.worker")

#: How often changed health is reported to the parent (seconds).
REPORT_EVERY = 0.5


class _Channel:
    """The worker's side of the pipes: wakes in, health out."""

    def __init__(self) -> None:
        self.supervisor: Supervisor | None = None
        self.runtime: Runtime | None = None
        self._sent: dict[str, dict[str, Any]] = {}

    async def read_wakes(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            name = line.decode("utf-8", errors="replace").strip()
            if name and self.supervisor is not None:
                self.supervisor.wake(name)
        log.info("worker_parent_gone")
        stop.set()

    async def report(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=REPORT_EVERY)
        self.flush()

    def flush(self) -> None:
        runtime = self.runtime
        if runtime is None:
            return
        lines = []
        for name, parts in list(runtime.connectors.items()):
            snapshot = health_snapshot(parts.runtime.health)
            if self._sent.get(name) != snapshot:
                self._sent[name] = snapshot
                lines.append(health_line(snapshot))
        if lines:
            with contextlib.suppress(BrokenPipeError, ValueError):
                sys.stdout.write("".join(lines))
                sys.stdout.flush()


async def serve_partition(config_path: Path, first: Config, index: int, count: int, stop: asyncio.Event,
                          hup: asyncio.Event, *, uses_keyvault: bool, state_dir: str | None = None) -> None:
    """Serve worker ``index`` of ``count``'s connectors of ``first`` (then of each reloaded config) until ``stop``;
    ``state_dir``: the instance directory the parent chose when the config has none."""
    structlog.contextvars.bind_contextvars(worker=index)
    channel = _Channel()
    live: list[LiveReload] = []

    def on_runtime(runtime: Runtime) -> None:
        channel.runtime = runtime

    def on_supervisor(supervisor: Supervisor) -> None:
        channel.supervisor = supervisor

    async def serve(cfg: Config, inner: asyncio.Event) -> None:
        await run_forever(cfg, inner, on_runtime=on_runtime, on_live=live.append, web=False, worker=True,
                          on_supervisor=on_supervisor)

    async def apply(cfg: Config) -> bool:
        if not live:
            return False
        await live[-1].apply(cfg)
        return True

    def errors() -> list[str | None]:
        runtime = channel.runtime
        return [p.runtime.health.error for p in runtime.connectors.values()] if runtime is not None else []

    loads: list[Callable[[], Config]] = [lambda: partition(first, index, count, state_dir=state_dir)]

    def load() -> Config:
        return loads.pop()() if loads else partition(load_config(config_path), index, count, state_dir=state_dir)

    async with asyncio.TaskGroup() as group:
        wakes = group.create_task(channel.read_wakes(stop), name="worker-wakes")
        reports = group.create_task(channel.report(stop), name="worker-health")
        try:
            await run_reloading(load, serve, stop, hup, refresh=lambda c: refresh_interval(c, uses_keyvault),
                                auth=AuthWatch(errors), apply=apply, file=None)
        finally:
            stop.set()
            wakes.cancel()
        await reports
