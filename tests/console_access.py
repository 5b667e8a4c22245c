"""A console app for a ``Runtime`` with one reader account, and a client that reads through it with Basic auth:
for tests that look at the status page, ``status.json`` or ``/metrics`` of a runtime whose config has no
``[console]`` users."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import httpx
from starlette.applications import Starlette

from sentinel_signl4.bootstrap import Runtime
from sentinel_signl4.config import ConsoleConfig, ConsoleUser
from sentinel_signl4.web import build_console_app, web_context
from sentinel_signl4.web.console_auth import ConsoleAuth, hash_password

READER, READER_PASSWORD = "reader", "reader-password-for-tests"
_HASH = hash_password(READER_PASSWORD, salt=b"console-access")


def console_for(runtime: Runtime, *, clock: Callable[[], datetime] | None = None) -> Starlette:
    ctx = web_context(runtime, clock=clock)
    users = ConsoleConfig(users=(ConsoleUser.model_validate({"name": READER, "password_hash": _HASH}),))
    return build_console_app(ctx, ConsoleAuth(users, ctx.clock))


def console_client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console.test",
                             auth=(READER, READER_PASSWORD))
