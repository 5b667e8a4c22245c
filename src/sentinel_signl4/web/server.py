"""Serve the web app with uvicorn inside our own event loop, stopped by the same event as the supervisor.

uvicorn is configured so that it cannot leak a webhook token: its connections write no access log (which would print
every path), ``log_config=None`` leaves logging to ``logs.configure_logging`` (whose handler redacts), and there is
no ``Server`` header. Nothing process-wide is reconfigured, so tests can run several servers in one process.

uvicorn does not install signal handlers here either: the CLI owns SIGTERM/SIGINT and turns them into the
stop event, so the supervisor and the server shut down together and in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
from collections.abc import AsyncIterator, Generator
from typing import Any

import structlog
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from sentinel_signl4.config import ServerConfig
from sentinel_signl4.web.connection_guard import ConnectionLimits, CutLog, guarded_protocol

__all__ = ["ConnectionLimits", "WebServer", "WebServerError", "connection_limits"]

log = structlog.get_logger("sentinel_signl4.web.server")

# How long shutdown waits for requests in progress (a webhook being written to the inbox) before cancelling them.
GRACEFUL_TIMEOUT_SECONDS = 10


class WebServerError(RuntimeError):
    """The server could not start (typically: the address is in use or not available)."""


class _NoAccessLogProtocol(H11Protocol):
    # Access lines print request paths, and webhook paths carry the token. Turning them off here, per connection,
    # rather than with Config(access_log=False) leaves the process-wide "uvicorn.access" logger alone (that option
    # strips its handlers and propagation, which breaks log capture of other servers in the same process).
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.access_log = False


class _SignalFreeServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.listening.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # uvicorn would replace the process's SIGTERM/SIGINT handlers with its own and re-raise the signal after it
        # stopped; the CLI's handlers already set the stop event that ends both the supervisor and this server.
        yield


def connection_limits(server: ServerConfig) -> ConnectionLimits:
    """The ``[server]`` connection settings (see ``web/connection_guard.py``)."""
    return ConnectionLimits(header_timeout=server.header_timeout.total_seconds(),
                            keep_alive_timeout=server.keep_alive_timeout.total_seconds(),
                            max_connections=server.max_connections)


class WebServer:
    """One uvicorn server for ``app`` on ``host``:``port`` (``port=0`` picks a free port; see ``port``).

    ``limits`` bound slow and idle clients (``web/connection_guard.py``); ``cuts`` counts the connections cut."""

    def __init__(self, app: ASGIApp, *, host: str, port: int,
                 graceful_timeout: int = GRACEFUL_TIMEOUT_SECONDS, limits: ConnectionLimits | None = None) -> None:
        self.host = host
        self._requested_port = port
        self.limits = limits or ConnectionLimits()
        self.cuts = CutLog()
        self._server = _SignalFreeServer(uvicorn.Config(
            app, host=host, port=port,
            # Never an access line (see _NoAccessLogProtocol); header deadline and connection bound (see the module).
            http=guarded_protocol(_NoAccessLogProtocol, self.limits, self.cuts),
            timeout_keep_alive=max(1, math.ceil(self.limits.keep_alive_timeout)),
            # One over the bound: a connection within it is never refused; past it (every connection busy with a
            # request, none left to close) a new request gets 503 at once instead of waiting.
            limit_concurrency=self.limits.max_connections + 1,
            access_log=True,  # False would rewire the global "uvicorn.access" logger; the protocol already is quiet
            log_config=None,  # logging stays as logs.configure_logging set it (redacting handler)
            lifespan="off",
            server_header=False,
            timeout_graceful_shutdown=graceful_timeout,
        ))

    @property
    def started(self) -> bool:
        """Whether the server is listening."""
        return self._server.started

    @property
    def port(self) -> int:
        """The port actually bound (differs from the requested one when that was 0)."""
        if not self._server.started:
            raise RuntimeError("the web server is not listening yet")
        port: int = self._server.servers[0].sockets[0].getsockname()[1]
        return port

    async def _serve(self) -> None:
        try:
            await self._server.serve()
        except SystemExit:
            # uvicorn calls sys.exit() when it cannot bind; it logged the OSError already (no secret in it).
            raise WebServerError(f"the HTTP server could not listen on {self.host}:{self._requested_port}") from None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[WebServer]:
        """Listen for the duration of the block; raise ``WebServerError`` at entry if the server cannot start.

        On exit the server stops accepting connections and waits (up to the graceful timeout) for requests in
        progress to finish.
        """
        task = asyncio.create_task(self._serve(), name="web-server")
        try:
            listening = asyncio.create_task(self._server.listening.wait())
            try:
                await asyncio.wait({task, listening}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                listening.cancel()
            if not self._server.started:
                await task  # raises the WebServerError
                raise WebServerError("the HTTP server stopped while starting")
            log.info("http_server_listening", host=self.host, port=self.port)
            yield self
        finally:
            # Also on cancellation or a failing block: never leave a listening socket behind.
            self._server.should_exit = True
            await task
        log.info("http_server_stopped")

    async def serve(self, stop: asyncio.Event) -> None:
        """Listen until ``stop`` is set, then shut down gracefully."""
        async with self.running():
            await stop.wait()
