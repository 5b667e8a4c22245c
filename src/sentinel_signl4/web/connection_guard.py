"""Slow and idle clients cannot starve the server: per-connection header deadline, a bound on open connections,
and no connection kept for a request body nobody reads. Logged as counts, at most one line a minute.

uvicorn's own options cover part of it: ``timeout_keep_alive`` closes an idle kept-alive connection and
``limit_concurrency`` answers 503 once too many connections or requests are open. Neither cuts a client that
opened a connection and sends its request headers a byte at a time (uvicorn has no header timeout), so with only
those, a few hundred such clients hold every slot (and file descriptor) and health checks and webhooks get 503 or
nothing. Here:

* **header deadline**: a connection must deliver its request line and headers within ``header_timeout`` of
  opening (or of the end of the previous response on a kept-alive connection), however it trickles them;
* **connection bound**: when a new connection takes the count over ``max_connections``, the oldest connection
  still waiting for its headers (else the oldest still receiving a request body) is closed, so a client that sends
  a whole request at once always gets a slot; only when every connection is busy with a complete request does
  uvicorn's ``limit_concurrency`` answer 503;
* **unread bodies**: once a response is sent while the client is still sending its body (a 408 after
  ``body_timeout``, a 413, a 405 to a POST), the connection is closed instead of waiting for the rest.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import h11
import structlog
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["ConnectionLimits", "CutLog", "guarded_protocol"]

log = structlog.get_logger("sentinel_signl4.web.server")


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """``[server]`` settings for connections, in seconds."""

    header_timeout: float = 10.0
    keep_alive_timeout: float = 5.0
    max_connections: int = 100


class CutLog:
    """Counts the connections cut and logs them at most once per ``interval``: one line, never one per client."""

    def __init__(self, interval: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self.total: Counter[str] = Counter()
        self._pending: Counter[str] = Counter()
        self._logged_at: float | None = None

    def cut(self, reason: str) -> None:
        self.total[reason] += 1
        self._pending[reason] += 1
        now = self.clock()
        if self._logged_at is None or now - self._logged_at >= self.interval:
            log.warning("http_slow_clients_cut", **dict(self._pending), total=sum(self.total.values()),
                        note="connections closed for sending too slowly or holding a slot without a request")
            self._pending.clear()
            self._logged_at = now


def guarded_protocol(base: type[H11Protocol], limits: ConnectionLimits, cuts: CutLog) -> type[H11Protocol]:
    """A subclass of uvicorn's h11 protocol ``base`` enforcing ``limits`` (one class per server)."""

    class GuardedProtocol(base):  # type: ignore[valid-type, misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._header_timer: asyncio.TimerHandle | None = None
            self._waiting_since = 0.0
            self._answered = 0  # responses sent on this connection
            self._started = False  # bytes of the next request arrived since the deadline was armed

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            self._arm_header_deadline()
            self._make_room()

        def data_received(self, data: bytes) -> None:
            self._started = True
            super().data_received(data)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_header_deadline()
            super().connection_lost(exc)

        def on_response_complete(self) -> None:
            self._answered += 1
            # Answered before the body ended (408, 413, 405…): nobody reads the rest, so do not wait for it. Read
            # before uvicorn moves on to a pipelined request, whose body is another matter.
            unread_body = self.conn.their_state is h11.SEND_BODY
            super().on_response_complete()
            if self.transport.is_closing():
                return
            if unread_body:
                self._close()
                return
            self._arm_header_deadline()  # the next request on this connection gets its own deadline

        def awaiting_headers(self) -> bool:
            """Open, and no request of this connection has its headers complete (idle keep-alive included)."""
            return not self.transport.is_closing() and self.conn.their_state is h11.IDLE

        def _arm_header_deadline(self) -> None:
            self._disarm_header_deadline()
            self._waiting_since = self.loop.time()
            self._started = False
            self._header_timer = self.loop.call_later(limits.header_timeout, self._header_deadline_passed)

        def _disarm_header_deadline(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_deadline_passed(self) -> None:
            self._header_timer = None
            if self.awaiting_headers():
                # A kept-alive connection that merely sat idle after its answers is closed without a word (a
                # keep_alive_timeout longer than header_timeout does that); a silent or trickling client is counted.
                if self._started or not self._answered:
                    cuts.cut("header_timeout")
                self._close()

        def receiving_body(self) -> bool:
            """Open, its request's headers complete, the body still arriving and no answer sent yet."""
            return (not self.transport.is_closing() and self.conn.their_state is h11.SEND_BODY
                    and self.cycle is not None and not self.cycle.response_complete)

        def _make_room(self) -> None:
            open_ = [c for c in self.connections if not c.transport.is_closing()]
            if len(open_) <= limits.max_connections:
                return
            # Who holds a slot without a complete request: first the connections still waiting for headers, then
            # those still receiving a body (a SIGNL4 event arrives in one packet); the oldest of them goes.
            holders = [(0 if c.awaiting_headers() else 1, c._waiting_since, id(c), c) for c in open_
                       if c is not self and isinstance(c, GuardedProtocol)
                       and (c.awaiting_headers() or c.receiving_body())]
            if not holders:
                return  # every slot is busy with a request: uvicorn answers this one 503 (limit_concurrency)
            victim = min(holders, key=lambda h: h[:3])[3]
            cuts.cut("connection_limit")
            victim._close()

        def _close(self) -> None:
            self._disarm_header_deadline()
            self.transport.close()

    return GuardedProtocol
