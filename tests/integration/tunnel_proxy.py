"""An HTTPS proxy that tunnels every ``CONNECT host:443`` to the emulators, whatever the host: clients configured with
``HTTPS_PROXY`` then reach the emulators under a national cloud's real host names (``login.microsoftonline.us``
…), unchanged, and verify the emulators' certificate for that name against the test CA. It records the hosts it
was asked for."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

__all__ = ["TunnelProxy", "tunnel_proxy"]


class TunnelProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.hosts: list[str] = []  # each CONNECT's "host:port", in order
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            if method != "CONNECT":
                writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            self.hosts.append(target)
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.close()


@contextlib.asynccontextmanager
async def tunnel_proxy(target_port: int) -> AsyncIterator[TunnelProxy]:
    """A running :class:`TunnelProxy` on ``127.0.0.1`` (``proxy.port``) in the current event loop."""
    proxy = TunnelProxy(target_port)
    server = await asyncio.start_server(proxy._serve, "127.0.0.1", 0)
    proxy.port = server.sockets[0].getsockname()[1]
    try:
        yield proxy
    finally:
        server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), timeout=5)
