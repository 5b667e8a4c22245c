"""Per-connector status: OK or the precise error. Logged on transitions only, not on every cycle."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import structlog

__all__ = ["ConnectorHealth", "HealthState"]

log = structlog.get_logger("sentinel_signl4.health")


class HealthState(StrEnum):
    STARTING = "starting"
    OK = "ok"
    ERROR = "error"
    STANDBY = "standby"  # another replica holds this connector's lease
    DISABLED = "disabled"


@dataclass(slots=True)
class ConnectorHealth:
    connector: str
    state: HealthState = HealthState.STARTING
    error: str | None = None
    since: datetime | None = None
    last_cycle_at: datetime | None = None
    cycles: int = 0

    def ok(self, now: datetime) -> None:
        self.last_cycle_at = now
        self.cycles += 1
        if self.state is not HealthState.OK:
            if self.state is HealthState.ERROR:
                log.info("connector_recovered", connector=self.connector, after_error=self.error)
            self.state, self.error, self.since = HealthState.OK, None, now

    def failed(self, now: datetime, error: str) -> None:
        self.last_cycle_at = now
        self.cycles += 1
        if self.state is not HealthState.ERROR or self.error != error:
            log.error("connector_unhealthy", connector=self.connector, error=error)
            self.state, self.error, self.since = HealthState.ERROR, error, now

    def standby(self, now: datetime) -> None:
        if self.state is not HealthState.STANDBY:
            log.info("connector_standby", connector=self.connector, reason="lease held by another replica")
            self.state, self.error, self.since = HealthState.STANDBY, None, now
