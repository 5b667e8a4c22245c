"""How the forward path treats an incident that a maintenance window or pause covers (``store/pauses.py``).

* ``skip``: the raise row is written DISCARDED, with the window as its reason: the incident is recorded, is never
  paged, and a later poll does not queue it again (its key exists).
* ``hold``: the raise row is written PENDING, due when the window ends, and counted as queued from then (its
  ``created_at`` is the window's end), so a held page does not make the connector "stuck" during the window.
  Clearing the window early makes held rows due at once (``StateStore.release_held``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sentinel_signl4.domain.enums import ActionState
from sentinel_signl4.store import OutboxAction
from sentinel_signl4.store.pauses import Pause, covering

__all__ = ["covering", "enqueue_time", "paused_action"]


def paused_action(action: OutboxAction, pause: Pause, now: datetime) -> OutboxAction:
    """``action`` (a raise row) as ``pause`` has it written."""
    if pause.mode == "skip":
        return replace(action, state=ActionState.DISCARDED, result={
            "discarded_reason": f"maintenance window {pause.id}: {pause.describe()}",
            "discarded_by": pause.created_by or "maintenance window", "paused": pause.id,
        })
    return replace(action, next_attempt_at=max(pause.ends_at, now),
                   payload={**action.payload, "held_by": pause.id})


def enqueue_time(action: OutboxAction, now: datetime) -> datetime:
    """The time a (possibly held) raise row is written with: a held row counts from when it becomes due."""
    if action.state is ActionState.PENDING and action.next_attempt_at is not None and action.next_attempt_at > now:
        return action.next_attempt_at
    return now
