"""What the outbox's operator commands share, whether run from the CLI (``outbox retry``) or the console: why a row
was refused, the outcome word of the audit event, and the audit logger itself (event ``operator_action``)."""

from __future__ import annotations

import getpass
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from sentinel_signl4.domain.enums import ActionState
from sentinel_signl4.logs import standalone_logger
from sentinel_signl4.redact import Redactor
from sentinel_signl4.store import StateStore

__all__ = ["audit", "os_user", "outcome", "why_not"]


async def why_not(store: StateStore, key: str, connector: str | None, verb: str) -> str:
    """Why ``key`` was not changed, read after the attempt (the row may have moved on meanwhile)."""
    row = await store.get_action(key)
    if row is None:
        return "no such outbox row"
    if connector is not None and row.connector != connector:
        return f"it belongs to connector {row.connector!r}, not {connector!r}"
    reasons = {
        ActionState.DONE: "it is done: the side effect happened, and repeating it could page twice",
        ActionState.PENDING: "it is pending, not dead: it is already queued",
        ActionState.IN_FLIGHT: "it is in flight: an attempt is under way; look again after the cycle",
        ActionState.DEAD: "it is dead, but no longer matched (changed meanwhile)",
        ActionState.DISCARDED: "it was discarded by an operator",
    }
    return f"cannot be {verb}: {reasons[row.state]}"


def outcome(changed: Sequence[str], refused: Mapping[str, str]) -> str:
    """The audit event's ``outcome``: ok, partial, refused or nothing_to_do."""
    if refused:
        return "partial" if changed else "refused"
    return "ok" if changed else "nothing_to_do"


def os_user() -> str:
    """The operating-system user running a command: the actor of its audit events."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (containers)
        return "unknown"


def audit(*, redactor: Redactor, fmt: str, actor: str, action: str, stream: TextIO | None = None,
          **details: Any) -> None:
    """Write one ``operator_action`` event (who, what, when: the timestamp is added by the logger), whatever the
    configured log level, through the redactor."""
    log = standalone_logger("sentinel_signl4.operator", redactor=redactor, fmt=fmt, stream=stream)
    log.info("operator_action", actor=actor, action=action, **details)
