"""Per-connector health: one state decided from outcomes over time, not from the last cycle alone.

States (``HealthState``):

* ``starting``: no cycle finished yet.
* ``ok``: the last cycle completed without a failure and nothing is stuck.
* ``degraded``: a transient failure (a retry after 429/5xx, a step that failed and may recover): pages still go
  out, late. A transient failure that persists in every cycle for longer than ``stuck_after`` becomes ``error``.
* ``error``: an operator must act, or a page is not going out. Any of: a configuration error (401/403/404,
  SIGNL4 3004) from the first failure until the failing call succeeds; a store failure; a dead-lettered page; a
  page pending longer than ``stuck_after``.
* A credential that expires within ``EXPIRY_WARNING`` (30 days) makes an otherwise healthy connector
  ``degraded``; one that has expired is ``error``.
* ``standby``: another replica, whose lease the store could read, runs this connector.
* ``disabled``: ``enabled = false`` (decided by the status page, never by the engine).

``since`` is when the current state began; ``failing_since`` when the current run of non-``ok`` cycles began.
Transitions are logged once, not on every cycle.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

import structlog

from sentinel_signl4.domain.spans import span_text
from sentinel_signl4.engine.credential_expiry import CredentialExpiry

__all__ = [
    "DEFAULT_STUCK_AFTER",
    "EXPIRY_WARNING",
    "UP_STATES",
    "ConnectorHealth",
    "CredentialExpiry",
    "CycleOutcome",
    "HealthState",
    "store_error_message",
]

log = structlog.get_logger("sentinel_signl4.health")

DEFAULT_STUCK_AFTER = timedelta(minutes=5)
EXPIRY_WARNING = timedelta(days=30)

# userinfo of a URL (``scheme://user:password@host``): a driver's message may quote the DSN.
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


class HealthState(StrEnum):
    STARTING = "starting"
    OK = "ok"
    DEGRADED = "degraded"
    ERROR = "error"
    STANDBY = "standby"  # another live replica holds this connector's lease
    DISABLED = "disabled"


#: States in which the connector does its work (``s4s_connector_up`` = 1).
UP_STATES = frozenset({HealthState.OK, HealthState.DEGRADED})


def store_error_message(exc: BaseException) -> str:
    """``Type: message`` of a store failure, without the SQL text, bound parameters or a DSN's password."""
    orig = getattr(exc, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's exception
    inner = orig if isinstance(orig, BaseException) else exc
    text = str(inner).strip() or type(inner).__name__
    return _URL_PASSWORD.sub(r"\1***@", f"store: {type(inner).__name__}: {text}")


@dataclass(slots=True)
class CycleOutcome:
    """What one cycle found. ``config_errors`` and ``recovered`` are keyed by origin (a step label, or ``send``
    for SIGNL4 refusing a raise), so that only the call that failed can clear its own error."""

    config_errors: dict[str, str] = field(default_factory=dict)
    recovered: set[str] = field(default_factory=set)
    transient_error: str | None = None
    store_error: str | None = None
    failed_actions: int = 0
    retrying: int = 0
    dead_letters: int = 0
    oldest_pending_at: datetime | None = None
    #: Raise rows still open (pending or in flight); None when unknown (the store could not be read).
    open_raises: int | None = None


@dataclass(slots=True)
class ConnectorHealth:
    connector: str
    stuck_after: timedelta = DEFAULT_STUCK_AFTER
    state: HealthState = HealthState.STARTING
    reason: str | None = None
    since: datetime | None = None
    last_cycle_at: datetime | None = None
    last_success_at: datetime | None = None
    failing_since: datetime | None = None
    oldest_pending_at: datetime | None = None
    dead_letters: int = 0
    cycles: int = 0
    credential: CredentialExpiry | None = None
    #: Called after every update (metrics); never raises into the engine.
    on_update: Callable[[ConnectorHealth], None] | None = None
    _config_errors: dict[str, str] = field(default_factory=dict)
    _transient_since: datetime | None = None

    @property
    def error(self) -> str | None:
        """The reason, for code that predates ``reason``."""
        return self.reason

    def oldest_pending_age(self, now: datetime) -> float | None:
        """Seconds the oldest pending page has waited at ``now``; None when none is pending."""
        if self.oldest_pending_at is None:
            return None
        return max(0.0, (now - self.oldest_pending_at).total_seconds())

    # -- updates ------------------------------------------------------------------------------------------------
    def record(self, now: datetime, outcome: CycleOutcome) -> None:
        """Fold one finished cycle into the state."""
        self.last_cycle_at = now
        self.cycles += 1
        for origin in outcome.recovered:
            self._config_errors.pop(origin, None)
        self._config_errors.update(outcome.config_errors)
        if outcome.open_raises == 0:
            # No page is waiting for SIGNL4 any more (sent, or given up by an operator): nothing left to prove.
            self._config_errors.pop("send", None)
        if outcome.store_error is None:
            self.dead_letters = outcome.dead_letters
            self.oldest_pending_at = outcome.oldest_pending_at
        transient = outcome.transient_error or (
            f"{outcome.failed_actions} side effect(s) failed this cycle and will be retried"
            if outcome.failed_actions else None)
        clean = transient is None and outcome.store_error is None and not outcome.config_errors
        if clean:
            self._transient_since = None
        elif transient is not None and self._transient_since is None:
            self._transient_since = now
        state, reason = self._decide(now, outcome, transient)
        if clean and state is not HealthState.ERROR:
            # Successful: every step and side effect went through and nothing that needs an operator is left.
            self.last_success_at = now
        self._set(now, state, reason)

    def _decide(self, now: datetime, outcome: CycleOutcome, transient: str | None) -> tuple[HealthState, str | None]:
        if outcome.store_error is not None:
            return HealthState.ERROR, outcome.store_error
        if self._config_errors:
            return HealthState.ERROR, next(iter(self._config_errors.values()))
        if self.dead_letters:
            return HealthState.ERROR, (f"{self.dead_letters} page(s) dead-lettered: they will not be sent until an "
                                       "operator retries or discards them")
        age = self.oldest_pending_age(now)
        if age is not None and age > self.stuck_after.total_seconds():
            return HealthState.ERROR, (f"a page has been pending for {span_text(age)} "
                                       f"(more than {span_text(self.stuck_after.total_seconds(), parts=2)})")
        credential = self.credential
        if credential is not None and credential.at <= now:
            return HealthState.ERROR, f"{credential.what} expired on {credential.at.date().isoformat()}"
        if transient is not None:
            assert self._transient_since is not None
            lasting = (now - self._transient_since).total_seconds()
            if lasting > self.stuck_after.total_seconds():
                return HealthState.ERROR, f"failing for {span_text(lasting)}: {transient}"
            return HealthState.DEGRADED, transient
        if credential is not None and credential.at - now <= EXPIRY_WARNING:
            days = (credential.at - now).days
            return HealthState.DEGRADED, (f"{credential.what} expires on {credential.at.date().isoformat()} "
                                          f"(in {days} day{'s' if days != 1 else ''}): renew it")
        if outcome.retrying:
            return HealthState.DEGRADED, f"{outcome.retrying} side effect(s) waiting for a retry"
        return HealthState.OK, None

    def store_failed(self, now: datetime, message: str) -> None:
        """A store call outside a cycle failed (the lease claim): error with the store's message."""
        self._set(now, HealthState.ERROR, message)

    def standby(self, now: datetime, holder: str | None = None) -> None:
        """Another replica holds the lease (the store could read it)."""
        self._config_errors.clear()
        self._transient_since = None
        self._set(now, HealthState.STANDBY, f"lease held by {holder}" if holder else "lease held by another replica")

    def crashed(self, now: datetime, error: str) -> None:
        """The cycle itself failed unexpectedly (not one step): treated like a failing step."""
        self.record(now, CycleOutcome(transient_error=error, dead_letters=self.dead_letters,
                                      oldest_pending_at=self.oldest_pending_at))

    # Kept for callers that only know success or failure (tests of the web layer, tools).
    def ok(self, now: datetime) -> None:
        self.record(now, CycleOutcome(recovered={"cycle"}, open_raises=0))

    def failed(self, now: datetime, error: str) -> None:
        self.record(now, CycleOutcome(config_errors={"cycle": error}))

    def _set(self, now: datetime, state: HealthState, reason: str | None) -> None:
        previous, previous_reason = self.state, self.reason
        if state in (HealthState.OK, HealthState.STANDBY):
            self.failing_since = None
        elif self.failing_since is None:
            self.failing_since = now
        if state is not previous:
            self.since = now
        self.state, self.reason = state, reason
        if state is not previous or (state is HealthState.ERROR and reason != previous_reason):
            self._log(previous, previous_reason)
        if self.on_update is not None:
            try:
                self.on_update(self)
            except Exception:  # reporting must never break the engine
                log.exception("health_listener_failed", connector=self.connector)

    def _log(self, previous: HealthState, previous_reason: str | None) -> None:
        fields = {"connector": self.connector, "state": self.state.value, "previous": previous.value,
                  "reason": self.reason}
        if self.state is HealthState.ERROR:
            log.error("connector_unhealthy", **fields)
        elif self.state is HealthState.DEGRADED:
            log.warning("connector_degraded", **fields)
        elif self.state is HealthState.STANDBY:
            log.info("connector_standby", **fields)
        else:
            log.info("connector_recovered" if previous in (HealthState.ERROR, HealthState.DEGRADED)
                     else "connector_state", after=previous_reason, **fields)
