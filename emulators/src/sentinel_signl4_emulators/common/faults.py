"""Fault injection shared by every emulator: a rule list plus an ASGI middleware that applies it.

A rule matches requests by method and a regular expression on the path, fires with a probability ``rate`` for at
most ``count`` requests, and does one of:

* ``status``: answer ``status`` (429 with ``Retry-After``, 500, 503…) *without* touching the emulator's state;
* ``delay``: wait ``delay`` seconds, then pass the request on (``phase="before"``) or let the emulator handle the
  request first and then wait before answering (``phase="after"``: the side effect happened, the caller times out,
  the outcome is unknown to it);
* ``reset``: drop the connection. ``phase="before"`` drops it before the emulator sees the request;
  ``phase="after"`` lets the emulator apply the request and then drops the connection instead of answering.

The control plane (``POST /_control/faults``) and in-process tests use the same :class:`FaultRule` objects.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ConnectionDropped", "FaultInjector", "FaultMiddleware", "FaultRule"]

FaultKind = Literal["status", "delay", "reset"]
Phase = Literal["before", "after"]


class ConnectionDropped(Exception):
    """Raised inside the ASGI app to make the server drop the connection without a response."""


@dataclass(slots=True)
class FaultRule:
    path: str = ".*"
    method: str = "*"
    kind: FaultKind = "status"
    status: int = 503
    retry_after: float | None = None
    delay: float = 0.0
    phase: Phase = "before"
    rate: float = 1.0
    count: int | None = None
    body: dict[str, Any] | None = None
    fired: int = 0
    _regex: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Validated here so a bad rule from the control plane is a 400, not a surprise at request time.
        if self.kind not in ("status", "delay", "reset"):
            raise ValueError(f"kind must be 'status', 'delay' or 'reset', not {self.kind!r}")
        if self.phase not in ("before", "after"):
            raise ValueError(f"phase must be 'before' or 'after', not {self.phase!r}")
        if not isinstance(self.method, str) or not isinstance(self.path, str):
            raise ValueError("method and path must be strings")
        if not _is_int(self.status) or not 100 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP status code, not {self.status!r}")
        if not _is_number(self.rate) or not 0 <= self.rate <= 1:
            raise ValueError(f"rate must be a number in [0, 1], not {self.rate!r}")
        if not _is_number(self.delay) or self.delay < 0:
            raise ValueError(f"delay must be a number >= 0, not {self.delay!r}")
        if self.retry_after is not None and (not _is_number(self.retry_after) or self.retry_after < 0):
            raise ValueError(f"retry_after must be a number >= 0 or null, not {self.retry_after!r}")
        if self.count is not None and (not _is_int(self.count) or self.count < 0):
            raise ValueError(f"count must be an integer >= 0 or null, not {self.count!r}")
        if self.body is not None and not isinstance(self.body, dict):
            raise ValueError("body must be a JSON object or null")
        try:
            self._regex = re.compile(self.path)
        except re.error as exc:
            raise ValueError(f"path is not a valid regular expression: {exc}") from None

    def matches(self, method: str, path: str) -> bool:
        if self.count is not None and self.fired >= self.count:
            return False
        if self.method != "*" and self.method.upper() != method.upper():
            return False
        return self._regex.search(path) is not None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultRule:
        allowed = {"path", "method", "kind", "status", "retry_after", "delay", "phase", "rate", "count", "body"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path, "method": self.method, "kind": self.kind, "status": self.status,
            "retry_after": self.retry_after, "delay": self.delay, "phase": self.phase, "rate": self.rate,
            "count": self.count, "fired": self.fired,
        }


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class FaultInjector:
    """Thread-safe rule list (the demo server runs in another thread than the control calls)."""

    def __init__(self, seed: int | None = None) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._random = random.Random(seed)

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def pick(self, method: str, path: str) -> FaultRule | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path) and self._random.random() < rule.rate:
                    rule.fired += 1
                    return rule
        return None


class FaultMiddleware:
    """Applies the first matching rule of a :class:`FaultInjector`. Control-plane paths are never faulted."""

    def __init__(self, app: ASGIApp, injector: FaultInjector) -> None:
        self.app = app
        self.injector = injector

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_control"):
            await self.app(scope, receive, send)
            return
        rule = self.injector.pick(scope["method"], scope["path"])
        if rule is None:
            await self.app(scope, receive, send)
            return
        if rule.kind == "status":
            await _send_status(send, rule)
            return
        if rule.phase == "before":
            if rule.kind == "delay":
                await asyncio.sleep(rule.delay)
                await self.app(scope, receive, send)
                return
            raise ConnectionDropped(f"fault: reset before {scope['method']} {scope['path']}")
        # phase == "after": let the emulator apply the request, hold back its answer.
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        await self.app(scope, receive, hold)
        if rule.kind == "reset":
            raise ConnectionDropped(f"fault: reset after {scope['method']} {scope['path']}")
        await asyncio.sleep(rule.delay)
        for message in held:
            await send(message)


async def _send_status(send: Send, rule: FaultRule) -> None:
    body = rule.body if rule.body is not None else {
        "error": {"code": "TooManyRequests" if rule.status == 429 else "ServiceUnavailable",
                  "message": f"Injected fault: HTTP {rule.status}."}
    }
    raw = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    if rule.retry_after is not None:
        headers.append((b"retry-after", str(int(rule.retry_after) if rule.retry_after == int(rule.retry_after)
                                              else rule.retry_after).encode()))
    await send({"type": "http.response.start", "status": rule.status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})
