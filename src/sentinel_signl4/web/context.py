"""What the HTTP endpoints need from the running process, gathered once when the app is built."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from starlette.responses import JSONResponse

from sentinel_signl4.config import Config
from sentinel_signl4.engine.forward import ForwardPath
from sentinel_signl4.engine.health import ConnectorHealth
from sentinel_signl4.metrics import Metrics
from sentinel_signl4.redact import Redactor
from sentinel_signl4.store import StateStore

__all__ = ["WebContext", "json_response"]

# Every answer of this server is about live state or carries nothing worth caching; nosniff keeps a browser from
# reinterpreting a JSON error that echoes nothing but is still attacker-triggered.
_COMMON_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


@dataclass(frozen=True, slots=True)
class WebContext:
    """Shared, read-mostly dependencies of the endpoints.

    ``health`` holds the connectors' live ``ConnectorHealth`` objects (the supervisor mutates them in place), so
    the endpoints always see the current state without any hand-over. ``redactor`` knows every secret value of the
    config and is applied to every free-text field an endpoint returns (errors, reasons).
    """

    config: Config
    store: StateStore
    metrics: Metrics
    health: Mapping[str, ConnectorHealth]
    clock: Callable[[], datetime]
    redactor: Redactor
    #: Told the connector's name when a new webhook event is stored (the supervisor runs its cycle at once).
    on_event: Callable[[str], None] | None = None
    #: Each connector's forward path, for the console's read-only preview (``engine/preview.py``); empty: none.
    forwards: Mapping[str, ForwardPath] = field(default_factory=dict)


def json_response(status: int, body: object, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """A JSON answer with the headers every response of this server carries."""
    return JSONResponse(body, status_code=status, headers={**_COMMON_HEADERS, **(headers or {})})
