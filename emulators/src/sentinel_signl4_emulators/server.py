"""Serve the emulator app over HTTPS with uvicorn: in a background thread for tests, or in the foreground.

TLS uses the local CA of :mod:`sentinel_signl4_emulators.common.ca`, so real clients (azure-identity, MSAL, httpx,
aiohttp) talk to ``https://127.0.0.1:PORT`` exactly as they would to Azure, trusting ``ca.pem``.

Dropped connections: uvicorn answers an exception raised before ``http.response.start`` with a 500 (and closes
after a partial response otherwise) — a fault that must look like a network failure would instead look like a
server error. :class:`_DroppingH11Protocol` wraps the app per connection: when :class:`ConnectionDropped`
escapes, it marks the request cycle disconnected (so uvicorn sends nothing) and aborts the transport, so the
client sees the connection close without a response.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from sentinel_signl4_emulators.app import EmulatorState, build_app
from sentinel_signl4_emulators.common.ca import CertPaths, ensure_certificates
from sentinel_signl4_emulators.common.faults import ConnectionDropped

__all__ = ["EmulatorServer", "serve_forever"]


class _DroppingH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, able to drop a connection without answering."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        inner: ASGIApp = self.app

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            try:
                await inner(scope, receive, send)
            except ConnectionDropped:
                self._drop()

        self.app = app

    def shutdown(self) -> None:
        # On server stop uvicorn closes idle keep-alive connections gracefully, and over TLS that waits for the
        # client's close_notify, which a pooled idle client never sends: abort them instead, like a restart.
        idle = self.cycle is None or self.cycle.response_complete
        super().shutdown()
        if idle and self.transport is not None:
            self.transport.abort()

    def _drop(self) -> None:
        if self.cycle is not None:
            self.cycle.disconnected = True  # run_asgi then neither sends a 500 nor completes the response
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()


class _QuietDroppingH11Protocol(_DroppingH11Protocol):
    """Writes no access log lines, without touching the process-wide ``uvicorn.access`` logger."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.access_log = False


def _config(app: ASGIApp, certs: CertPaths, *, log_level: str | None) -> uvicorn.Config:
    """``log_level=None`` leaves logging configuration alone: uvicorn otherwise reconfigures the process-wide
    ``uvicorn.*`` loggers, which a background server in someone else's process (tests) must not do."""
    logging_options: dict[str, Any] = (
        {"log_config": None, "log_level": None, "access_log": True}  # access lines are off in the protocol
        if log_level is None
        else {"log_level": log_level, "access_log": False}
    )
    return uvicorn.Config(
        app,
        ssl_certfile=os.fspath(certs.cert),
        ssl_keyfile=os.fspath(certs.key),
        http=_QuietDroppingH11Protocol,
        lifespan="off",
        # A request held by a delay fault must not keep shutdown waiting.
        timeout_graceful_shutdown=1,
        **logging_options,
    )


def _bind(host: str, port: int) -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP (an accepted socket
    # inherits proto 0 from a socket created without it), and without TCP_NODELAY every response waits ~40 ms
    # for the client's delayed ACK (Nagle), which would dominate latency figures measured against the emulators.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


class EmulatorServer:
    """The emulators on ``https://host:port`` in a background thread.

    ``with EmulatorServer(state, cert_dir) as server:`` starts it (port 0 = an ephemeral port, see
    :attr:`port` / :attr:`base_url`) and stops it cleanly on exit. Trust :attr:`ca_path`. It writes no access
    log and leaves the process's logging configuration as it found it.
    """

    def __init__(
        self,
        state: EmulatorState,
        cert_dir: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = 10.0,
    ) -> None:
        self.state = state
        self.host = host
        self.certs = ensure_certificates(cert_dir)
        self._requested_port = port
        self._startup_timeout = startup_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._failure: BaseException | None = None

    @property
    def port(self) -> int:
        if self._socket is None:
            raise RuntimeError("the server is not running")
        port: int = self._socket.getsockname()[1]
        return port

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    @property
    def ca_path(self) -> Path:
        return self.certs.ca

    def start(self) -> EmulatorServer:
        if self._thread is not None:
            raise RuntimeError("already started")
        self._socket = _bind(self.host, self._requested_port)
        self._server = uvicorn.Server(_config(build_app(self.state), self.certs, log_level=None))
        self._thread = threading.Thread(target=self._run, name=f"emulator-server:{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the emulator server did not start") from self._failure
            time.sleep(0.005)
        return self

    def _run(self) -> None:
        assert self._server is not None and self._socket is not None
        try:
            asyncio.run(self._server.serve(sockets=[self._socket]))
        except BaseException as exc:  # noqa: BLE001 - reported to start() through _failure
            self._failure = exc

    def stop(self, timeout: float = 5.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(timeout)
        if self._socket is not None:
            self._socket.close()
        self._server, self._thread, self._socket = None, None, None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def serve_forever(
    state: EmulatorState,
    cert_dir: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = 8443,
    log_level: str = "info",
    announce: Callable[[str, CertPaths], None] | None = None,
) -> None:
    """Serve in the foreground until SIGINT/SIGTERM (the CLI ``emulate`` command).

    ``announce(base_url, certs)`` is called once the port is bound, before serving starts.
    """
    certs = ensure_certificates(cert_dir)
    sock = _bind(host, port)
    try:
        bound_host = f"[{host}]" if ":" in host else host
        if announce is not None:
            announce(f"https://{bound_host}:{sock.getsockname()[1]}", certs)
        uvicorn.Server(_config(build_app(state), certs, log_level=log_level)).run(sockets=[sock])
    finally:
        sock.close()
