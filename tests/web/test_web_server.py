"""``WebServer`` (uvicorn) and the runner: real sockets, graceful shutdown, and nothing printed with a token."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from web_world import ALPHA_TOKEN, alpha_path, config_text, event, inbox_rows

from sentinel_signl4.bootstrap import Runtime, build_runtime
from sentinel_signl4.config import parse_config
from sentinel_signl4.engine.report import PollReport
from sentinel_signl4.runner import serve_until_stopped
from sentinel_signl4.store.base import InboxEvent
from sentinel_signl4.web import WebServer, WebServerError, build_web_app
from sentinel_signl4.web.webhook import WEBHOOK_PREFIX
from store_fixtures import store_url_sqlite


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
