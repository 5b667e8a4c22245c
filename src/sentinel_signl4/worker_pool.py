"""The parent of ``run --workers N``: starts N worker processes, restarts one that dies, forwards SIGHUP, routes
webhook wakes to the worker that runs the connector, and copies the workers' health reports onto its own.

Each worker is ``python -m sentinel_signl4 worker --config FILE --index i --of N`` (``worker_process.py``): it runs
the connectors of its partition (``worker_protocol.partition_of``) under the same leases as any replica, and
registers its own instance file, so a replacement started after a crash takes its leases over at once instead of
waiting for them to expire. The parent runs no connector; it keeps the HTTP listeners (webhooks, probes, status
page, metrics), which read the health the workers report and, with ``metrics_dir``, the metric files the workers
write there (``worker_metrics``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from sentinel_signl4.engine.health import ConnectorHealth
from sentinel_signl4.worker_metrics import forget_worker, worker_environment
from sentinel_signl4.worker_protocol import apply_health, partition_of

__all__ = ["WorkerPool"]

log = structlog.get_logger("sentinel_signl4.workers")

#: A worker that ran at least this long before it died is restarted after ``restart_delay`` again.
_STABLE_AFTER = 60.0
_MAX_RESTART_DELAY = 30.0


class WorkerPool:
    def __init__(self, config_path: Path, count: int, health: Callable[[str], ConnectorHealth | None], *,
                 state_dir: Path | None = None, metrics_dir: Path | None = None, restart_delay: float = 1.0,
                 stop_timeout: float = 120.0) -> None:
        """``health(name)``: the parent's ``ConnectorHealth`` of connector ``name`` (None when it has none), where
        the workers' reports are copied. ``state_dir``: where the workers register their instance files when the
        config names no directory (PostgreSQL without ``state_dir``), so that a dead worker's replacement can still
        prove it dead. ``metrics_dir``: where the workers write their metrics (prometheus-client's multiprocess
        directory; it must outlive the pool for counters to go on across a restart of the pool). ``stop_timeout``:
        how long a worker may take to finish its cycles after SIGTERM before it is killed."""
        if count < 1:
            raise ValueError("a worker pool needs at least one worker")
        self.config_path = config_path
        self.count = count
        self.state_dir = state_dir
        self.metrics_dir = metrics_dir
        self._health = health
        self._restart_delay = restart_delay
        self._stop_timeout = stop_timeout
        self._procs: list[asyncio.subprocess.Process | None] = [None] * count
        self.restarts = [0] * count

    def worker_of(self, connector: str) -> int:
        return partition_of(connector, self.count)

    def pids(self) -> list[int | None]:
        """The running workers' PIDs (None while one is being restarted)."""
        return [p.pid if p is not None and p.returncode is None else None for p in self._procs]

    def wake(self, connector: str) -> None:
        """Run ``connector``'s next cycle now, in the worker that runs it (a SIGNL4 webhook arrived). A worker that is
        being restarted misses the wake; its first cycle reads the inbox anyway."""
        proc = self._procs[self.worker_of(connector)]
        if proc is None or proc.returncode is not None or proc.stdin is None or "\n" in connector:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            proc.stdin.write(connector.encode("utf-8") + b"\n")

    def reload(self) -> None:
        """Forward SIGHUP: each worker re-reads the config and applies it to its partition."""
        for proc in self._procs:
            if proc is not None and proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGHUP)

    async def run(self, stop: asyncio.Event) -> None:
        """Keep every worker running until ``stop``; then SIGTERM them all and wait for each to finish."""
        async with asyncio.TaskGroup() as group:
            for index in range(self.count):
                group.create_task(self._keep(index, stop), name=f"worker:{index}")

    async def _keep(self, index: int, stop: asyncio.Event) -> None:
        delay = self._restart_delay
        while not stop.is_set():
            extra = ["--state-dir", str(self.state_dir)] if self.state_dir is not None else []
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "sentinel_signl4", "worker", "--config", str(self.config_path),
                "--index", str(index), "--of", str(self.count), *extra,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                env=worker_environment(self.metrics_dir) if self.metrics_dir is not None else None)
            self._procs[index] = proc
            started = time.monotonic()
            log.info("worker_started", worker=index, pid=proc.pid)
            reader = asyncio.create_task(self._read(proc))
            await self._wait(proc, stop)
            await reader
            if self.metrics_dir is not None:
                try:  # off the event loop: it waits for a scrape under way, and reads and writes files
                    await asyncio.to_thread(forget_worker, self.metrics_dir, proc.pid)
                except OSError as exc:  # its files stay as they are, still counted: only tidying failed
                    log.error("worker_metrics_not_folded", worker=index, pid=proc.pid, error=str(exc))
            if stop.is_set():
                log.info("worker_stopped", worker=index, pid=proc.pid, code=proc.returncode)
                return
            if time.monotonic() - started >= _STABLE_AFTER:
                delay = self._restart_delay
            self.restarts[index] += 1
            log.error("worker_exited", worker=index, pid=proc.pid, code=proc.returncode, restart_in=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            delay = min(_MAX_RESTART_DELAY, delay * 2)

    async def _wait(self, proc: asyncio.subprocess.Process, stop: asyncio.Event) -> None:
        """Until ``proc`` exits; on ``stop`` first, SIGTERM it and give it ``stop_timeout`` to finish."""
        exited = asyncio.create_task(proc.wait())
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if exited.done():
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(exited), timeout=self._stop_timeout)
        except TimeoutError:
            log.error("worker_stop_timeout", pid=proc.pid, after=self._stop_timeout)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await exited

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        """Copy ``proc``'s health reports onto the parent's health until its stdout closes."""
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            apply_health(line.decode("utf-8", errors="replace"), self._health)
