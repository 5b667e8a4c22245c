"""What the console pages show, read from the connectors' live health and the store's public methods.

Figures derived from the store (not kept anywhere as such):

* *Signls in the last 24 h*: RAISE_SIGNL outbox rows that became DONE in the last 24 hours. Done rows are pruned
  after ``[store] retention`` (at least one hour, 30 days by default), so the figure is exact unless the
  retention is shorter than a day; at most ``RECENT_DONE_READ`` rows are read per connector (then shown as "N+").
* *p95 page latency*: over those rows, the 95th percentile (nearest rank) of ``updated_at - created_at``, i.e.
  from the moment the page was queued to the moment SIGNL4 accepted it.
* *Recent Signls*: the most recent DONE raise rows, with the incident number, title, severity and link from the
  row's payload, the SIGNL4 event id from its result, and the acknowledgement from the reverse-sync rows that
  recorded SIGNL4's events for the same incident (who, when: time to acknowledge = acknowledgement - page).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sentinel_signl4.config import ConnectorConfig
from sentinel_signl4.domain.enums import ActionKind, ActionState
from sentinel_signl4.engine.health import HealthState
from sentinel_signl4.store import OutboxAction
from sentinel_signl4.web.context import WebContext

__all__ = [
    "RECENT_DONE_READ",
    "SORT_KEYS",
    "ConnectorDetail",
    "OverviewRow",
    "RecentSignl",
    "collect_detail",
    "collect_overview",
    "p95",
    "select_rows",
]

RECENT_DONE_READ = 1000
ROWS_SHOWN = 50
_CONCURRENT_READS = 8
_DAY = timedelta(hours=24)
_STATE_ORDER = {s: i for i, s in enumerate(("error", "degraded", "starting", "standby", "ok", "disabled"))}


@dataclass(frozen=True, slots=True)
class OverviewRow:
    """One connector in the overview."""

    name: str
    display_name: str
    state: str
    reason: str | None
    since: datetime | None
    last_success_at: datetime | None
    signls_24h: int | None
    signls_capped: bool
    p95_seconds: float | None
    oldest_pending_age: float | None
    dead_letters: int
    store_error: str | None = None
    failing_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class RecentSignl:
    key: str
    incident_number: int | None
    title: str
    severity: str
    incident_url: str | None
    event_id: str | None
    paged_at: datetime | None
    status: str
    acknowledged_by: str | None
    acknowledged_at: datetime | None

    @property
    def time_to_acknowledge(self) -> float | None:
        if self.acknowledged_at is None or self.paged_at is None:
            return None
        return max(0.0, (self.acknowledged_at - self.paged_at).total_seconds())


@dataclass(frozen=True, slots=True)
class ConnectorDetail:
    row: OverviewRow
    signls: list[RecentSignl] = field(default_factory=list)
    waiting: list[OutboxAction] = field(default_factory=list)
    dead: list[OutboxAction] = field(default_factory=list)
    reverse: list[OutboxAction] = field(default_factory=list)
    settings: list[tuple[str, str]] = field(default_factory=list)


def p95(values: Sequence[float]) -> float | None:
    """The 95th percentile by nearest rank (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _state(cfg: ConnectorConfig, ctx: WebContext) -> str:
    if not cfg.enabled:
        return HealthState.DISABLED.value
    health = ctx.health.get(cfg.name)
    return (health.state if health is not None else HealthState.STARTING).value


def _recent_raises(rows: Iterable[OutboxAction], now: datetime) -> list[OutboxAction]:
    return [r for r in rows if r.kind is ActionKind.RAISE_SIGNL and r.updated_at is not None
            and now - r.updated_at <= _DAY]


async def _overview_row(ctx: WebContext, cfg: ConnectorConfig, done: Sequence[OutboxAction] | None,
                        store_error: str | None) -> OverviewRow:
    now = ctx.clock()
    health = ctx.health.get(cfg.name)
    redact = ctx.redactor.redact
    recent = _recent_raises(done or [], now)
    latencies = [(r.updated_at - r.created_at).total_seconds() for r in recent
                 if r.updated_at is not None and r.created_at is not None]
    return OverviewRow(
        name=cfg.name, display_name=cfg.display_name, state=_state(cfg, ctx),
        reason=redact(health.error) if health is not None and health.error else None,
        since=health.since if health else None,
        last_success_at=health.last_success_at if health else None,
        signls_24h=None if done is None else len(recent),
        signls_capped=done is not None and len(done) >= RECENT_DONE_READ and len(recent) == len(done),
        p95_seconds=p95(latencies),
        oldest_pending_age=health.oldest_pending_age(now) if health else None,
        dead_letters=health.dead_letters if health else 0,
        store_error=store_error,
        failing_since=health.failing_since if health else None,
    )


async def _read_done(ctx: WebContext, name: str) -> tuple[list[OutboxAction] | None, str | None]:
    try:
        async with asyncio.timeout(5):
            return await ctx.store.list_actions(name, states=[ActionState.DONE], limit=RECENT_DONE_READ), None
    except Exception as exc:  # noqa: BLE001 - the page still shows the live health when the store is down
        text = "no answer within 5 s" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
        return None, ctx.redactor.redact(text)


async def collect_overview(ctx: WebContext) -> list[OverviewRow]:
    """Every configured connector's row, in configuration order."""
    gate = asyncio.Semaphore(_CONCURRENT_READS)

    async def one(cfg: ConnectorConfig) -> OverviewRow:
        async with gate:
            done, error = await _read_done(ctx, cfg.name)
        return await _overview_row(ctx, cfg, done, error)

    return list(await asyncio.gather(*(one(cfg) for cfg in ctx.config.connectors)))


SORT_KEYS: Mapping[str, Any] = {
    "name": lambda r: r.name,
    "state": lambda r: (_STATE_ORDER.get(r.state, 99), r.name),
    "since": lambda r: (r.since is None, r.since or datetime.min, r.name),
    "last_success": lambda r: (r.last_success_at is None, r.last_success_at or datetime.min, r.name),
    "signls": lambda r: (r.signls_24h or 0, r.name),
    "p95": lambda r: (r.p95_seconds is None, r.p95_seconds or 0.0, r.name),
    "pending": lambda r: (r.oldest_pending_age is None, r.oldest_pending_age or 0.0, r.name),
    "dead": lambda r: (r.dead_letters, r.name),
}


def select_rows(rows: Sequence[OverviewRow], *, sort: str, descending: bool, state: str,
                query: str) -> list[OverviewRow]:
    """Filter (by state, and by a substring of the name or display name) and sort; unknown values mean "none"."""
    needle = query.casefold().strip()
    chosen = [r for r in rows if (not state or r.state == state)
              and (not needle or needle in r.name.casefold() or needle in r.display_name.casefold())]
    key = SORT_KEYS.get(sort, SORT_KEYS["state"])
    if sort in ("since", "last_success", "p95", "pending"):
        # Missing values last whichever the direction: sort the known ones, then append the rest.
        known = sorted((r for r in chosen if key(r)[0] is False), key=key, reverse=descending)
        return known + sorted((r for r in chosen if key(r)[0] is True), key=lambda r: r.name)
    return sorted(chosen, key=key, reverse=descending)


def _acknowledgements(rows: Iterable[OutboxAction]) -> dict[str, tuple[str, datetime | None]]:
    """Per incident id, the first acknowledgement recorded by the reverse sync: (who, when)."""
    found: dict[str, tuple[str, datetime | None]] = {}
    for row in sorted(rows, key=lambda r: r.created_at or datetime.min):
        event = row.payload.get("event")
        if not isinstance(event, dict) or event.get("kind") != "acknowledged" or row.incident_id in found:
            continue
        user = event.get("user") if isinstance(event.get("user"), dict) else {}
        who = str((user or {}).get("name") or (user or {}).get("mail") or "someone")
        raised = event.get("raised_at")
        when = datetime.fromisoformat(raised) if isinstance(raised, str) else row.created_at
        found[row.incident_id] = (who, when)
    return found


def _signl(row: OutboxAction, links: Mapping[str, Any], acks: Mapping[str, tuple[str, datetime | None]],
           redact: Any) -> RecentSignl:
    request = row.payload.get("request") if isinstance(row.payload.get("request"), dict) else {}
    result = row.result or {}
    number = row.payload.get("incident_number")
    link = links.get(row.incident_id)
    ack = acks.get(row.incident_id)
    if link is not None and not link.open:
        status = "closed"
    else:
        status = "acknowledged" if ack is not None else "open" if link is not None else "raised"
    url = row.payload.get("incident_url")
    return RecentSignl(
        key=row.key, incident_number=number if isinstance(number, int) else None,
        title=redact(str((request or {}).get("title", ""))), severity=str(row.payload.get("severity", "")),
        incident_url=url if isinstance(url, str) and url.startswith("https://") else None,
        event_id=str(result.get("event_id")) if result.get("event_id") else None,
        paged_at=row.updated_at, status=status,
        acknowledged_by=redact(ack[0]) if ack else None, acknowledged_at=ack[1] if ack else None,
    )


def effective_settings(cfg: ConnectorConfig) -> list[tuple[str, str]]:
    """The connector's configuration, flattened to dotted keys, with every secret replaced by "(set)"."""
    out: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key in sorted(value):
                walk(f"{prefix}.{key}" if prefix else str(key), value[key])
        elif isinstance(value, list | tuple):
            out.append((prefix, ", ".join(str(v) for v in value)))
        else:
            out.append((prefix, "" if value is None else str(value)))

    # mode="json" turns every SecretStr into "**********"; nothing secret leaves pydantic.
    walk("", cfg.model_dump(mode="json"))
    return [(k, "(set, hidden)" if v == "**********" else v) for k, v in out]


async def collect_detail(ctx: WebContext, cfg: ConnectorConfig) -> ConnectorDetail:
    """The connector page's data."""
    redact = ctx.redactor.redact
    store = ctx.store
    done, error = await _read_done(ctx, cfg.name)
    row = await _overview_row(ctx, cfg, done, error)
    if done is None:
        return ConnectorDetail(row=row, settings=effective_settings(cfg))
    raises = [r for r in done if r.kind is ActionKind.RAISE_SIGNL][:ROWS_SHOWN]
    reverse_kinds = (ActionKind.ADD_COMMENT, ActionKind.UPDATE_INCIDENT, ActionKind.ANNOTATE_SIGNL,
                     ActionKind.RESOLVE_SIGNL)
    reverse = [r for r in await store.list_actions(cfg.name, limit=RECENT_DONE_READ) if r.kind in reverse_kinds]
    links = await store.links_for(cfg.name, [r.incident_id for r in raises])
    acks = _acknowledgements(reverse)
    waiting = await store.get_actions_by_state([ActionState.PENDING, ActionState.IN_FLIGHT], connector=cfg.name,
                                               limit=ROWS_SHOWN)
    dead = await store.get_actions_by_state([ActionState.DEAD], connector=cfg.name, limit=ROWS_SHOWN)
    return ConnectorDetail(
        row=row, signls=[_signl(r, links, acks, redact) for r in raises], waiting=waiting, dead=dead,
        reverse=reverse[:ROWS_SHOWN], settings=effective_settings(cfg),
    )
