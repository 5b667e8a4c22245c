"""The dead-man's switch: pages a separate SIGNL4 team about the connector itself.

Outages ("subjects") it pages for:

* ``connector:<name>``: the connector has been in ``error`` for longer than ``after``; resolved once it is ``ok``
  or ``degraded`` again. ``standby`` and ``starting`` say nothing about the outage (another replica runs the
  connector; the process just restarted), so they neither open nor resolve one.
* ``credential:<name>``: the connector's credential expires within ``page_before`` (7 days); resolved once a
  renewed one is configured.

One Signl per outage: its ExternalID (``s4s-watchdog:<subject>:<epoch of the first page>``) is kept in a small
state row (``cursors``, connector ``""``, name ``watchdog:<subject>``) written *before* the send, so a restart
neither pages the same outage again nor forgets to resolve it. The same row is read back by every replica. The
process also remembers open outages itself, so a store that is down (the commonest outage) is still paged once
and resolved: the row is written when the store is back.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from sentinel_signl4.domain import SignlRequest, SignlStatus
from sentinel_signl4.engine.health import ConnectorHealth, HealthState
from sentinel_signl4.redact import Redactor
from sentinel_signl4.store import StateStore

__all__ = ["PAGE_BEFORE_EXPIRY", "WATCHDOG_SERVICE", "Outage", "Watchdog", "state_row_name"]

log = structlog.get_logger("sentinel_signl4.watchdog")

PAGE_BEFORE_EXPIRY = timedelta(days=7)
WATCHDOG_SERVICE = "sentinel-signl4 watchdog"
_ROW_CONNECTOR = ""  # no connector can have an empty name: the watchdog's rows never clash with a connector's

Send = Callable[[SignlRequest], Awaitable[str]]


def state_row_name(subject: str) -> str:
    return f"watchdog:{subject}"


@dataclass(frozen=True, slots=True)
class Outage:
    subject: str
    title: str
    message: str


class Watchdog:
    """``check(now)`` compares the connectors' health with the open outages and pages or resolves."""

    def __init__(self, store: StateStore, send: Send, healths: Mapping[str, ConnectorHealth], *,
                 after: timedelta, redactor: Redactor, replica: str,
                 page_before_expiry: timedelta = PAGE_BEFORE_EXPIRY) -> None:
        self.store = store
        self.send = send
        self.healths = healths  # not copied: the caller's mapping may follow reloads
        self.after = after
        self.redactor = redactor
        self.replica = replica
        self.page_before_expiry = page_before_expiry
        # subject -> (ExternalID, paged) of an outage this process knows to be open, and rows still to write.
        self._open: dict[str, tuple[str, bool]] = {}
        self._unsaved: dict[str, str] = {}

    async def check(self, now: datetime) -> None:
        for name, health in self.healths.items():
            await self._follow(f"connector:{name}", self._connector_outage(name, health, now), now)
            await self._follow(f"credential:{name}", self._credential_outage(name, health, now), now)

    def _connector_outage(self, name: str, health: ConnectorHealth, now: datetime) -> Outage | bool | None:
        """An ``Outage`` to page, True when healthy (resolve), None when unknown (leave as it is)."""
        if health.state in (HealthState.OK, HealthState.DEGRADED):
            return True
        if health.state is not HealthState.ERROR or health.since is None:
            return None
        lasting = now - health.since
        if lasting < self.after:
            return None
        minutes = int(lasting.total_seconds() // 60)
        return Outage(f"connector:{name}",
                      title=f"sentinel-signl4: connector {name} in error for {minutes} min",
                      message=f"{health.reason or 'no reason recorded'}\nSince {health.since.isoformat()} "
                              f"(replica {self.replica}). Incidents of this connector may not page.")

    def _credential_outage(self, name: str, health: ConnectorHealth, now: datetime) -> Outage | bool | None:
        credential = health.credential
        if credential is None:
            return None if health.state is HealthState.STARTING else True
        left = credential.at - now
        if left > self.page_before_expiry:
            return True
        when = credential.at.date().isoformat()
        verb = "expired" if left <= timedelta(0) else f"expires in {max(0, left.days)} day(s)"
        return Outage(f"credential:{name}",
                      title=f"sentinel-signl4: {credential.what} of connector {name} {verb}",
                      message=f"The {credential.what} of connector {name} expires on {when}. Renew it in Entra ID "
                              "and update the connector's configuration.")

    async def _follow(self, subject: str, wanted: Outage | bool | None, now: datetime) -> None:
        await self._save_unsaved(subject)
        if wanted is None:
            return
        known = await self._known(subject)
        if isinstance(wanted, Outage):
            if known is None:
                await self._page(wanted, f"s4s-watchdog:{subject}:{int(now.timestamp())}")
            elif not known[1]:
                await self._page(wanted, known[0])  # recorded, but the send never confirmed: same ExternalID
        elif known is not None:
            await self._resolve(subject, known[0])

    async def _known(self, subject: str) -> tuple[str, bool] | None:
        """(ExternalID, paged) of the open outage of ``subject``: this process's memory, else the state row."""
        if subject in self._open:
            return self._open[subject]
        try:
            raw = await self.store.get_cursor(_ROW_CONNECTOR, state_row_name(subject))
        except Exception as exc:  # noqa: BLE001 - the store may be the outage itself: page without it
            log.warning("watchdog_state_unreadable", subject=subject, error=f"{type(exc).__name__}: {exc}")
            return None
        if not raw:
            return None
        row = json.loads(raw)
        known = (str(row["external_id"]), bool(row.get("paged")))
        self._open[subject] = known
        return known

    async def _page(self, outage: Outage, external_id: str) -> None:
        # The row first: a crash between row and send re-sends once after the restart (never a missed page).
        await self._record(outage.subject, external_id, paged=False)
        request = SignlRequest(external_id=external_id, title=self.redactor.redact(outage.title),
                               message=self.redactor.redact(outage.message), service=WATCHDOG_SERVICE)
        try:
            await self.send(request)
        except Exception as exc:  # noqa: BLE001 - retried on the next check
            log.error("watchdog_page_failed", subject=outage.subject, error=self.redactor.redact(str(exc)))
            return
        await self._record(outage.subject, external_id, paged=True)
        log.error("watchdog_paged", subject=outage.subject, external_id=external_id, title=request.title)

    async def _resolve(self, subject: str, external_id: str) -> None:
        try:
            await self.send(SignlRequest(external_id=external_id, status=SignlStatus.RESOLVED,
                                         service=WATCHDOG_SERVICE))
        except Exception as exc:  # noqa: BLE001 - retried on the next check
            log.warning("watchdog_resolve_failed", subject=subject, error=self.redactor.redact(str(exc)))
            return
        self._open.pop(subject, None)
        await self._write(subject, "")
        log.info("watchdog_resolved", subject=subject, external_id=external_id)

    async def _record(self, subject: str, external_id: str, *, paged: bool) -> None:
        self._open[subject] = (external_id, paged)
        await self._write(subject, json.dumps({"external_id": external_id, "paged": paged}))

    async def _write(self, subject: str, value: str) -> None:
        try:
            await self.store.set_cursor(_ROW_CONNECTOR, state_row_name(subject), value)
        except Exception as exc:  # noqa: BLE001 - kept in memory and written on a later check
            self._unsaved[subject] = value
            log.warning("watchdog_state_unsaved", subject=subject, error=f"{type(exc).__name__}: {exc}")
        else:
            self._unsaved.pop(subject, None)

    async def _save_unsaved(self, subject: str) -> None:
        if subject in self._unsaved:
            await self._write(subject, self._unsaved[subject])
