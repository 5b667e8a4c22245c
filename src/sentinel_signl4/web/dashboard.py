"""The status page: ``GET /`` and ``GET /status`` (HTML), ``GET /status.json`` (the same data).

Per connector: its state (OK / DEGRADED / ERROR with the reason / STANDBY / STARTING / DISABLED) and since when,
the last cycle and the last successful one, since when it has been failing, the age of the oldest pending page,
the dead-lettered pages, outbox rows by state, the most recent dead-lettered actions with their reason, and the
number of open links.

No JavaScript, no external resources. Every value is escaped by Jinja2's autoescaping, and a strict
Content-Security-Policy forbids scripts outright, so text that came from a remote system (an error message, an
incident id) can never run in the reader's browser. Every free-text field is passed through the config's
``Redactor`` before it is rendered: a secret that slipped into an error upstream still never reaches the page.

The page is served on the console's listener only (loopback by default), behind its sign-in (``console_app.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from sentinel_signl4.config import ConnectorConfig
from sentinel_signl4.domain.enums import ActionState
from sentinel_signl4.domain.spans import ago_text, span_text
from sentinel_signl4.engine.health import ConnectorHealth, HealthState
from sentinel_signl4.web.context import WebContext, json_response

__all__ = [
    "DEAD_ACTIONS_SHOWN",
    "OPEN_LINKS_COUNTED",
    "ConnectorStatus",
    "Dashboard",
    "DeadAction",
    "StatusSnapshot",
    "collect_status",
    "render_status_html",
]

DEAD_ACTIONS_SHOWN = 10
# The store can list open links but not count them; beyond this the page says "1000+" instead of loading more.
OPEN_LINKS_COUNTED = 1000
_STORE_TIMEOUT = 5.0
_REFRESH_SECONDS = 30

_SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
                                "form-action 'none'; frame-ancestors 'none'"),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


@dataclass(frozen=True, slots=True)
class DeadAction:
    """An outbox row that gave up, with the reason it gave up."""

    key: str
    kind: str
    incident_id: str
    attempts: int
    reason: str
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class ConnectorStatus:
    """What the page shows for one connector. ``store_error`` is set (and the counts are None) when the store
    could not be read for it."""

    name: str
    display_name: str
    enabled: bool
    sync_mode: str
    state: str
    error: str | None
    since: datetime | None
    last_cycle_at: datetime | None
    cycles: int
    outbox: dict[str, int] | None
    last_success_at: datetime | None = None
    failing_since: datetime | None = None
    oldest_pending_age: float | None = None
    dead_letters: int = 0
    dead_actions: list[DeadAction] = field(default_factory=list)
    open_links: int | None = None
    open_links_capped: bool = False
    store_error: str | None = None


@dataclass(frozen=True, slots=True)
class StatusSnapshot:
    """The whole page's data at ``generated_at``."""

    generated_at: datetime
    connectors: list[ConnectorStatus]

    def to_json(self) -> dict[str, Any]:
        """The ``/status.json`` document (timestamps as ISO 8601 UTC)."""
        return {
            "generated_at": _iso(self.generated_at),
            "connectors": [
                {
                    "name": c.name, "display_name": c.display_name, "enabled": c.enabled,
                    "sync_mode": c.sync_mode, "state": c.state, "reason": c.error, "error": c.error,
                    "since": _iso(c.since), "last_cycle_at": _iso(c.last_cycle_at),
                    "last_success_at": _iso(c.last_success_at), "failing_since": _iso(c.failing_since),
                    "oldest_pending_age_seconds": (None if c.oldest_pending_age is None
                                                   else round(c.oldest_pending_age, 1)),
                    "dead_letters": c.dead_letters, "cycles": c.cycles, "outbox": c.outbox,
                    "dead_actions": [
                        {"key": d.key, "kind": d.kind, "incident_id": d.incident_id, "attempts": d.attempts,
                         "reason": d.reason, "updated_at": _iso(d.updated_at)}
                        for d in c.dead_actions
                    ],
                    "open_links": c.open_links, "open_links_capped": c.open_links_capped,
                    "store_error": c.store_error,
                }
                for c in self.connectors
            ],
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds")


def _state(cfg: ConnectorConfig, health: ConnectorHealth | None) -> HealthState:
    if not cfg.enabled:
        return HealthState.DISABLED
    return health.state if health is not None else HealthState.STARTING


async def collect_status(ctx: WebContext) -> StatusSnapshot:
    """Read every connector's health and store figures. A store failure is reported per connector, not raised."""
    redact = ctx.redactor.redact
    connectors = await asyncio.gather(*(_connector_status(ctx, cfg, redact) for cfg in ctx.config.connectors))
    return StatusSnapshot(generated_at=ctx.clock(), connectors=list(connectors))


async def _connector_status(ctx: WebContext, cfg: ConnectorConfig,
                            redact: Callable[[str], str]) -> ConnectorStatus:
    health = ctx.health.get(cfg.name)
    base: dict[str, Any] = {
        "name": cfg.name,
        "display_name": cfg.display_name,
        "enabled": cfg.enabled,
        "sync_mode": cfg.sync_mode,
        "state": _state(cfg, health).value,
        "error": redact(health.error) if health is not None and health.error else None,
        "since": health.since if health is not None else None,
        "last_cycle_at": health.last_cycle_at if health is not None else None,
        "cycles": health.cycles if health is not None else 0,
        "last_success_at": health.last_success_at if health is not None else None,
        "failing_since": health.failing_since if health is not None else None,
        "oldest_pending_age": health.oldest_pending_age(ctx.clock()) if health is not None else None,
        "dead_letters": health.dead_letters if health is not None else 0,
    }
    store = ctx.store
    try:
        async with asyncio.timeout(_STORE_TIMEOUT):
            counts = await store.count_actions(cfg.name)
            dead = await store.list_actions(cfg.name, states=[ActionState.DEAD], limit=DEAD_ACTIONS_SHOWN)
            links = await store.open_links(cfg.name, limit=OPEN_LINKS_COUNTED + 1)
    except Exception as exc:  # noqa: BLE001 - the page must still show health when the store is down
        error = (f"no answer within {_STORE_TIMEOUT:g} s" if isinstance(exc, TimeoutError)
                 else f"{type(exc).__name__}: {exc}")
        return ConnectorStatus(**base, outbox=None, store_error=redact(error))
    return ConnectorStatus(
        **base,
        outbox={state.value: counts.get(state, 0) for state in ActionState},
        dead_actions=[
            DeadAction(key=redact(a.key), kind=a.kind.value, incident_id=redact(a.incident_id),
                       attempts=a.attempts, reason=redact(a.last_error or "(no reason recorded)"),
                       updated_at=a.updated_at)
            for a in dead
        ],
        open_links=min(len(links), OPEN_LINKS_COUNTED),
        open_links_capped=len(links) > OPEN_LINKS_COUNTED,
    )


_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{{ refresh }}">
<title>sentinel-signl4 status</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; }
h1 { font-size: 1.3rem; } h2 { font-size: 1.1rem; margin-bottom: .3rem; }
section { border: 1px solid #ccc; border-radius: 6px; padding: .8rem 1rem; margin-bottom: 1rem; }
.state { font-weight: bold; padding: .1rem .5rem; border-radius: 4px; }
.ok { background: #d4f4dd; } .error { background: #f9d0d0; }
.degraded, .standby, .starting { background: #fff1c2; }
.disabled { background: #e4e4e4; }
table { border-collapse: collapse; margin-top: .4rem; } td, th { border: 1px solid #ddd; padding: .2rem .5rem; }
th { text-align: left; background: #f5f5f5; } pre { white-space: pre-wrap; margin: 0; }
.muted { color: #666; }
</style>
</head>
<body>
<h1>sentinel-signl4</h1>
<p class="muted">Generated {{ snap.generated_at.isoformat(timespec="seconds") }}; refreshes every {{ refresh }} s.
  Machine-readable: <a href="status.json">status.json</a>, <a href="metrics">metrics</a>.</p>
{% for c in snap.connectors %}
<section id="connector-{{ c.name }}">
<h2>{{ c.name }}{% if c.display_name %} <span class="muted">({{ c.display_name }})</span>{% endif %}
  <span class="state {{ c.state }}">{{ c.state | upper }}</span>
  {% if c.since %}<span class="muted">since {{ c.since.isoformat(timespec="seconds") }}</span>{% endif %}</h2>
{% if c.error %}<p><strong>Reason:</strong></p><pre class="error-text">{{ c.error }}</pre>{% endif %}
<p>Last cycle: {{ ago(c.last_cycle_at) }}{% if c.last_cycle_at %}
  ({{ c.last_cycle_at.isoformat(timespec="seconds") }}){% endif %}; cycles: {{ c.cycles }};
  reverse sync: {{ c.sync_mode }}.</p>
<p>Last successful cycle: {{ ago(c.last_success_at) }}{% if c.failing_since %};
  failing since {{ c.failing_since.isoformat(timespec="seconds") }} ({{ ago(c.failing_since) }}){% endif %}.
  Oldest pending page: {% if c.oldest_pending_age is none %}none{% else %}waiting {{ age(c.oldest_pending_age) }}
  {%- endif %}; dead-lettered pages: {{ c.dead_letters }}.</p>
{% if c.store_error %}
<p><strong>State store unreadable:</strong> {{ c.store_error }}</p>
{% else %}
<table>
<tr><th>Outbox</th>{% for state, n in c.outbox.items() %}<th>{{ state }}</th>{% endfor %}<th>Open links</th></tr>
<tr><td></td>{% for state, n in c.outbox.items() %}<td>{{ n }}</td>{% endfor %}
  <td>{{ c.open_links }}{% if c.open_links_capped %}+{% endif %}</td></tr>
</table>
{% if c.dead_actions %}
<p><strong>Recent dead-lettered actions</strong> (gave up; most recent first):</p>
<table>
<tr><th>When</th><th>Kind</th><th>Incident</th><th>Attempts</th><th>Reason</th></tr>
{% for d in c.dead_actions %}
<tr><td>{{ d.updated_at.isoformat(timespec="seconds") if d.updated_at else "" }}</td><td>{{ d.kind }}</td>
  <td>{{ d.incident_id }}</td><td>{{ d.attempts }}</td><td><pre>{{ d.reason }}</pre></td></tr>
{% endfor %}
</table>
{% else %}
<p class="muted">No dead-lettered actions.</p>
{% endif %}
{% endif %}
</section>
{% endfor %}
</body>
</html>
"""

# autoescape=True: every {{ }} is HTML-escaped; StrictUndefined: a typo in the template fails the tests.
_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
_PAGE = _ENV.from_string(_TEMPLATE)


def render_status_html(snapshot: StatusSnapshot) -> str:
    """The status page for ``snapshot``; every value is escaped."""
    now = snapshot.generated_at
    return _PAGE.render(snap=snapshot, refresh=_REFRESH_SECONDS, ago=lambda then: ago_text(then, now),
                        age=span_text)


class Dashboard:
    """The status page endpoints."""

    def __init__(self, ctx: WebContext) -> None:
        self._ctx = ctx

    async def page(self, _request: Request) -> Response:
        snapshot = await collect_status(self._ctx)
        return HTMLResponse(render_status_html(snapshot), headers=_SECURITY_HEADERS)

    async def json(self, _request: Request) -> Response:
        snapshot = await collect_status(self._ctx)
        return json_response(200, snapshot.to_json())
