"""``WebServer`` (uvicorn) and the runner: real sockets, graceful shutdown, and nothing printed with a token."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
import structlog

from sentinel_signl4.bootstrap import Runtime, build_runtime
from sentinel_signl4.config import parse_config
from sentinel_signl4.engine.report import PollReport
from sentinel_signl4.runner import serve_until_stopped
from sentinel_signl4.store.base import InboxEvent
from sentinel_signl4.web import WebServer, WebServerError, build_web_app
from sentinel_signl4.web.server import ConnectionLimits
from sentinel_signl4.web.webhook import WEBHOOK_PREFIX
from store_fixtures import store_url_sqlite
from web_world import ALPHA_TOKEN, alpha_path, config_text, event, inbox_rows


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def uvicorn_records() -> Iterator[list[logging.LogRecord]]:
    """Every record uvicorn logs, at every level, whatever earlier tests did to the uvicorn loggers (levels,
    propagation); their state is restored afterwards."""
    names = ("uvicorn", "uvicorn.error", "uvicorn.access")
    saved = {name: (logging.getLogger(name).level, logging.getLogger(name).propagate) for name in names}
    handler = _Records()
    logging.getLogger("uvicorn").addHandler(handler)
    logging.getLogger("uvicorn").setLevel(logging.DEBUG)
    for name in names[1:]:
        logging.getLogger(name).setLevel(logging.NOTSET)
        logging.getLogger(name).propagate = True
    yield handler.records
    logging.getLogger("uvicorn").removeHandler(handler)
    for name, (level, propagate) in saved.items():
        logging.getLogger(name).setLevel(level)
        logging.getLogger(name).propagate = propagate


async def test_server_listens_on_a_free_port_and_stops_when_the_block_ends(runtime: Runtime, db_path: Path) -> None:
    server = WebServer(build_web_app(runtime), host="127.0.0.1", port=0)
    async with server.running():
        base = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=base) as client:
            assert (await client.get("/healthz")).status_code == 200
            response = await client.post(alpha_path(), json=event())
            assert response.status_code == 202
            assert "server" not in response.headers
    assert len(inbox_rows(db_path)) == 1
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(base_url=base) as client:
            await client.get("/healthz")


async def test_uvicorn_logs_no_access_line_and_no_token(runtime: Runtime,
                                                        uvicorn_records: list[logging.LogRecord]) -> None:
    server = WebServer(build_web_app(runtime), host="127.0.0.1", port=0)
    async with server.running(), httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
        await client.post(alpha_path(), json=event())
        await client.post(alpha_path(), content=b"not json")
        await client.get(f"{WEBHOOK_PREFIX}/alpha/{ALPHA_TOKEN}x")
    messages = [record.getMessage() for record in uvicorn_records]
    assert any("Uvicorn running on" in message for message in messages)  # the capture does see uvicorn
    assert [r for r in uvicorn_records if r.name == "uvicorn.access"] == []
    assert not any(WEBHOOK_PREFIX in message or ALPHA_TOKEN in message for message in messages)


async def test_a_port_in_use_fails_the_start_with_a_clear_error(runtime: Runtime) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = WebServer(build_web_app(runtime), host="127.0.0.1", port=port)
        with pytest.raises(WebServerError, match=f"could not listen on 127.0.0.1:{port}"):
            async with server.running():
                pytest.fail("the block must not run")


async def test_shutdown_lets_a_webhook_in_progress_finish(runtime: Runtime, db_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    entered = asyncio.Event()
    real_add = runtime.store.add_inbox

    async def slow_add(item: InboxEvent) -> bool:
        entered.set()
        await asyncio.sleep(0.3)
        return await real_add(item)

    monkeypatch.setattr(runtime.store, "add_inbox", slow_add)
    server = WebServer(build_web_app(runtime), host="127.0.0.1", port=0)
    async with httpx.AsyncClient() as client:
        async with server.running():
            url = f"http://127.0.0.1:{server.port}{alpha_path()}"
            request = asyncio.create_task(client.post(url, json=event()))
            await entered.wait()
            # Leaving the block shuts the server down while the request is still being written.
        response = await request
    assert response.status_code == 202
    assert len(inbox_rows(db_path)) == 1


async def test_run_serves_http_alongside_the_supervisor_and_both_stop_together(tmp_path: Path) -> None:
    port = free_port()
    config = parse_config(config_text(store_url_sqlite(tmp_path), port=port), env={})
    runtime = await build_runtime(config)
    # No remote system here: each connector's cycle only reports success (the supervisor itself is real).
    for parts in runtime.connectors.values():
        connector = parts.runtime

        async def cycle(now: datetime, connector: object = connector) -> PollReport:
            health = connector.health  # type: ignore[attr-defined]
            health.ok(now)
            return PollReport(health.connector)

        connector.run_once = cycle  # type: ignore[method-assign]
    stop = asyncio.Event()
    running = asyncio.create_task(serve_until_stopped(runtime, stop))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(200):
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.ConnectError:
                    pass
                await asyncio.sleep(0.02)
            else:
                pytest.fail("never ready")
            assert (await client.post(alpha_path(), json=event())).status_code == 202
            stop.set()
            await asyncio.wait_for(running, timeout=10)
            with pytest.raises(httpx.ConnectError):
                await client.get("/healthz")
    finally:
        stop.set()
        await runtime.aclose()
    assert len(inbox_rows(tmp_path / "state.db")) == 1


async def test_server_leaves_process_wide_logging_alone(runtime: Runtime) -> None:
    access = logging.getLogger("uvicorn.access")
    before = (access.propagate, list(access.handlers), access.level, logging.getLogger("uvicorn.error").level)
    server = WebServer(build_web_app(runtime), host="127.0.0.1", port=0)
    async with server.running():
        pass
    assert (access.propagate, list(access.handlers), access.level,
            logging.getLogger("uvicorn.error").level) == before


# -- slow clients ---------------------------------------------------------------------------------------------------
SLOW_HEADERS = (b"GET /healthz HTTP/1.1\r\nHost: slow\r\n", b"X-Drip: 1\r\n")


def slow_body(declared: int = 4096) -> tuple[bytes, bytes]:
    head = (f"POST {alpha_path()} HTTP/1.1\r\nHost: slow\r\nContent-Type: application/json\r\n"
            f"Content-Length: {declared}\r\n\r\n").encode()
    return head + b'{"id": "slow", ', b" "


async def trickle(port: int, first: bytes, drip: bytes, opened: asyncio.Queue[None]) -> bytes:
    """A client that sends ``first`` and then ``drip`` every 0.2 s, never completing its request, until the server
    closes the connection; returns what the server answered before closing."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received = b""
    try:
        writer.write(first)
        await writer.drain()
        opened.put_nowait(None)
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(4096), timeout=0.2)
            except TimeoutError:
                writer.write(drip)
                await writer.drain()
                continue
            if not chunk:
                return received
            received += chunk
    except ConnectionError:
        return received
    finally:
        writer.close()


async def until_done(tasks: list[asyncio.Task[bytes]], count: int) -> None:
    """Wait until ``count`` of ``tasks`` have finished."""
    pending = set(tasks)
    while len(tasks) - len(pending) < count:
        _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)


def server_with(runtime: Runtime, *, header_timeout: float, body_timeout: float, max_connections: int) -> WebServer:
    server_cfg = runtime.config.server.model_copy(update={"body_timeout": timedelta(seconds=body_timeout)})
    app = build_web_app(replace(runtime, config=runtime.config.model_copy(update={"server": server_cfg})))
    return WebServer(app, host="127.0.0.1", port=0, limits=ConnectionLimits(
        header_timeout=header_timeout, keep_alive_timeout=1, max_connections=max_connections))


async def test_slow_clients_over_the_connection_limit_never_starve_health_checks_or_webhooks(
        runtime: Runtime, db_path: Path, uvicorn_records: list[logging.LogRecord]) -> None:
    # Timeouts far longer than the test: only the connection bound can make room for the real requests.
    server = server_with(runtime, header_timeout=120, body_timeout=120, max_connections=20)
    opened: asyncio.Queue[None] = asyncio.Queue()
    with structlog.testing.capture_logs() as logs:
        async with server.running():
            port = server.port
            slow = [asyncio.create_task(trickle(port, *SLOW_HEADERS, opened)) for _ in range(30)]
            slow += [asyncio.create_task(trickle(port, *slow_body(), opened)) for _ in range(30)]
            for _ in range(60):
                await asyncio.wait_for(opened.get(), timeout=30)
            try:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                    for _ in range(3):
                        assert (await client.get("/healthz")).status_code == 200
                    assert (await client.post(alpha_path(), json=event())).status_code == 202
                # At most 20 connections stay open: the others were closed to make room.
                await asyncio.wait_for(until_done(slow, 40), timeout=30)
            finally:
                for task in slow:
                    task.cancel()
                await asyncio.gather(*slow, return_exceptions=True)
    assert len(inbox_rows(db_path)) == 1
    assert server.cuts.total["connection_limit"] >= 40
    assert len([entry for entry in logs if entry["event"] == "http_slow_clients_cut"]) == 1  # not one per client
    assert [r for r in uvicorn_records if r.exc_info] == []  # no traceback


async def test_slow_clients_are_cut_after_the_header_and_body_timeouts(runtime: Runtime, db_path: Path) -> None:
    server = server_with(runtime, header_timeout=0.5, body_timeout=0.5, max_connections=100)
    opened: asyncio.Queue[None] = asyncio.Queue()
    async with server.running():
        headers = [asyncio.create_task(trickle(server.port, *SLOW_HEADERS, opened)) for _ in range(10)]
        bodies = [asyncio.create_task(trickle(server.port, *slow_body(), opened)) for _ in range(10)]
        answers = await asyncio.wait_for(asyncio.gather(*headers, *bodies), timeout=60)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            assert (await client.get("/healthz")).status_code == 200
    assert answers[:10] == [b""] * 10  # cut without an answer: the request never began
    assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in answers[10:]), answers[10:]
    assert server.cuts.total["header_timeout"] == 10
    assert inbox_rows(db_path) == []
