"""Maintenance windows and pauses, as the store keeps them (table ``pauses``, migration 0003).

A pause covers one connector (or ``*``: every connector) and some severities (none named: every severity) from
``starts_at`` until ``ends_at``, unless an operator cleared it earlier. Incidents that the forward path would page
while a pause covers them are, by its ``mode``:

* ``skip``: recorded and not paged: the raise row is written as DISCARDED with the window as its reason (so no
  later poll pages it either), and a ``incident_paused`` log line is the audit trail;
* ``hold``: queued as usual but due only when the window ends, so they are paged then (clearing the window early
  makes them due at once).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

__all__ = ["ALL_CONNECTORS", "Pause", "PauseMode", "covering"]

ALL_CONNECTORS = "*"
PauseMode = Literal["skip", "hold"]


@dataclass(frozen=True, slots=True)
class Pause:
    id: str
    connector: str
    severities: tuple[str, ...]
    starts_at: datetime
    ends_at: datetime
    mode: PauseMode
    reason: str = ""
    created_by: str = ""
    created_at: datetime | None = None
    cleared_at: datetime | None = None
    cleared_by: str | None = None

    def active(self, now: datetime) -> bool:
        """Whether the pause is in force at ``now``."""
        return self.cleared_at is None and self.starts_at <= now < self.ends_at

    def covers(self, connector: str, severity: str) -> bool:
        """Whether an incident of ``severity`` on ``connector`` falls under the pause (its time aside)."""
        if self.connector not in (connector, ALL_CONNECTORS):
            return False
        return not self.severities or severity.casefold() in {s.casefold() for s in self.severities}

    def describe(self) -> str:
        what = "all severities" if not self.severities else ", ".join(self.severities)
        return (f"{self.mode} {what} of {'every connector' if self.connector == ALL_CONNECTORS else self.connector} "
                f"until {self.ends_at.isoformat(timespec='minutes')}" + (f" ({self.reason})" if self.reason else ""))


def covering(pauses: Iterable[Pause], connector: str, severity: str, now: datetime) -> Pause | None:
    """The pause that applies to an incident now: a skip wins over a hold (nothing is paged), then the latest end."""
    found = [p for p in pauses if p.active(now) and p.covers(connector, severity)]
    if not found:
        return None
    return max(found, key=lambda p: (p.mode == "skip", p.ends_at))
