"""Set and clear maintenance windows and pauses: the one implementation behind the CLI (``sentinel-signl4 pause``),
the console and ``[[pauses]]`` in the config. What a pause does is in ``store/pauses.py``."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sentinel_signl4.config import Config
from sentinel_signl4.config.durations import parse_duration
from sentinel_signl4.domain.enums import Severity
from sentinel_signl4.store import StateStore
from sentinel_signl4.store.pauses import ALL_CONNECTORS, Pause, PauseMode

__all__ = ["MAX_PAUSE", "PauseError", "apply_config_pauses", "clear_pause", "new_pause", "parse_until"]

MAX_PAUSE = timedelta(days=31)


class PauseError(ValueError):
    """A pause that cannot be set, with a message for the operator."""


def parse_until(now: datetime, *, until: str | None = None, duration: str | None = None) -> datetime:
    """The end of a pause: an ISO 8601 time with its zone (``until``) or a duration from now (``duration``:
    "90m", "2h", "1d", ISO "PT2H")."""
    if (until is None) == (duration is None):
        raise PauseError("give the end either as a time (until) or as a duration (for), not both")
    if duration is not None:
        try:
            end = now + parse_duration(duration.strip())
        except ValueError as exc:
            raise PauseError(f"duration {duration!r}: {exc}") from None
    else:
        try:
            end = datetime.fromisoformat((until or "").strip().replace("Z", "+00:00"))
        except ValueError:
            raise PauseError(f"time {until!r} is not ISO 8601 (e.g. 2026-12-03T18:00+01:00)") from None
        if end.tzinfo is None:
            raise PauseError(f"time {until!r} has no time zone: add one (e.g. +00:00 or Z)")
    if end <= now:
        raise PauseError("the end of the pause is not in the future")
    if end - now > MAX_PAUSE:
        raise PauseError("a pause may last at most 31 days (set a new one when it ends)")
    return end


def new_pause(config: Config, *, connector: str, severities: Sequence[str], ends_at: datetime, mode: str,
              reason: str, by: str, now: datetime, starts_at: datetime | None = None) -> Pause:
    """A checked pause (not stored yet)."""
    names = {c.name for c in config.connectors}
    if connector != ALL_CONNECTORS and connector not in names:
        raise PauseError(f"no connector named {connector!r}; known: {', '.join(sorted(names))} (or * for all)")
    known = {s.value.casefold(): s.value for s in Severity}
    chosen: list[str] = []
    for severity in severities:
        if severity.strip().casefold() not in known:
            raise PauseError(f"unknown severity {severity!r}; one of {', '.join(s.value for s in Severity)}")
        chosen.append(known[severity.strip().casefold()])
    if mode not in ("skip", "hold"):
        raise PauseError("mode must be skip (record and do not page) or hold (page when the window ends)")
    checked: PauseMode = "hold" if mode == "hold" else "skip"
    return Pause(id=f"p-{secrets.token_hex(6)}", connector=connector, severities=tuple(dict.fromkeys(chosen)),
                 starts_at=starts_at or now, ends_at=ends_at, mode=checked, reason=reason.strip()[:300],
                 created_by=by, created_at=now)


async def clear_pause(store: StateStore, config: Config, pause_id: str, *, now: datetime,
                      by: str) -> tuple[Pause | None, list[str]]:
    """End a pause now; for a hold, make the pages it held due now. Returns the pause (None: nothing to clear)
    and the keys released."""
    cleared = await store.clear_pause(pause_id, now, by=by)
    released: list[str] = []
    if cleared is not None and cleared.mode == "hold":
        names = ([c.name for c in config.connectors] if cleared.connector == ALL_CONNECTORS
                 else [cleared.connector])
        for name in names:
            released += await store.release_held(name, cleared.ends_at, now)
    return cleared, released


async def apply_config_pauses(store: StateStore, config: Config, now: datetime) -> list[Pause]:
    """Store the ``[[pauses]]`` of the config that are still to end and not stored yet (each has an id derived
    from its settings, so a restart does not add it twice, and one an operator cleared stays cleared)."""
    from sqlalchemy.exc import IntegrityError

    added: list[Pause] = []
    for entry in config.pauses:
        if entry.end <= now:
            continue
        digest = hashlib.sha256(repr((entry.connector, entry.severities, entry.start, entry.end, entry.mode))
                                .encode()).hexdigest()[:12]
        pause = new_pause(config, connector=entry.connector, severities=entry.severities, ends_at=entry.end,
                          mode=entry.mode, reason=entry.reason, by="config", now=now, starts_at=entry.start or now)
        pause = Pause(**{**{f: getattr(pause, f) for f in Pause.__dataclass_fields__}, "id": f"config-{digest}"})
        try:
            await store.add_pause(pause)
        except IntegrityError:
            continue
        added.append(pause)
    return added
