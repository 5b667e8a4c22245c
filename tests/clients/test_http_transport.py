"""The aiohttp-backed transport under httpx: the request exactly as httpx encoded it, the answer as httpx reads it,
and aiohttp's failures classified as httpx's (sent or not)."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from sentinel_signl4.clients.http import (
    AiohttpTransport,
    build_http_client,
    classify_transport_error,
    ssl_context,
    uses_proxy,
)
from sentinel_signl4.errors import OutcomeUnknownError, TransientError


class Recorder:
    """A one-connection-at-a-time HTTP/1.1 server on loopback that records the raw requests it reads."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.answer = b""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
            if not head:
                break
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length) if length else b""
            self.requests.append(head + body)
            if not self.answer:  # no answer configured: drop the connection after reading the request
                break
            writer.write(self.answer)
            await writer.drain()
        writer.close()


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[Recorder, str]]:
    recording = Recorder()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await recording.handle(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield recording, f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=AiohttpTransport(ssl_context()), follow_redirects=False)


async def test_the_url_body_and_headers_go_out_as_httpx_encoded_them(recorder: tuple[Recorder, str]) -> None:
    server, base = recorder
    body = gzip.compress(json.dumps({"value": ["ä"]}).encode())
    server.answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
                     b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: " + str(len(body)).encode() +
                     b"\r\n\r\n" + body)
    params = {"$filter": "properties/lastModifiedTimeUtc ge 2026-12-03T10:00:00Z and status eq 'New'",
              "$top": "200", "path": "a/b%2Fc"}
    async with client() as http:
        response = await http.put(f"{base}/subscriptions/x/incidents/inc%201", params=params,
                                  json={"properties": {"title": "ü"}}, headers={"If-Match": '"etag"'})
        again = await http.get(f"{base}/second")  # the same kept-alive connection
    assert response.status_code == 200 and response.json() == {"value": ["ä"]}
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert again.status_code == 200
    sent = server.requests[0].decode("utf-8")
    line = sent.split("\r\n", 1)[0]
    assert line == f"PUT {httpx.URL(f'{base}/subscriptions/x/incidents/inc%201', params=params).raw_path.decode()} " \
                   "HTTP/1.1"
    assert '\r\nIf-Match: "etag"\r\n' in sent
    assert sent.endswith(json.dumps({"properties": {"title": "ü"}}, ensure_ascii=False, separators=(",", ":")))
    assert len(server.requests) == 2


async def test_a_refused_connection_was_not_sent() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nobody listens there
    async with client() as http:
        with pytest.raises(httpx.ConnectError) as caught:
            await http.post(f"http://127.0.0.1:{port}/webhook/secret", json={})
    error = classify_transport_error(caught.value, True, service="signl4")
    assert isinstance(error, TransientError) and not isinstance(error, OutcomeUnknownError)
    assert "not sent" in str(error) and "secret" not in str(error)


async def test_a_connection_dropped_after_the_request_is_outcome_unknown(recorder: tuple[Recorder, str]) -> None:
    server, base = recorder  # no answer: the server reads the request, then closes
    async with client() as http:
        with pytest.raises(httpx.TransportError) as caught:
            await http.post(f"{base}/webhook/secret", json={"title": "page"})
    assert len(server.requests) == 1
    error = classify_transport_error(caught.value, True, service="signl4")
    assert isinstance(error, OutcomeUnknownError) and "outcome unknown" in str(error)


def test_a_proxy_in_the_environment_keeps_httpx_own_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert not uses_proxy()
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert uses_proxy()
    build_http_client()  # builds (httpx reads the proxy itself)
