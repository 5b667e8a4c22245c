"""Pacing of the outbox's writes to the incident source, by priority, within a tracked budget.

Microsoft Sentinel allows few writes per workspace (75 incident PUTs and 75 comment PUTs per 5 minutes). A burst of
1,000 incidents makes 1,000 tag PUTs; sent as fast as possible they would spend the budget for many windows and the
acknowledgements responders make meanwhile would wait behind them, or be throttled. So before the outbox starts a row
that writes to the source, :meth:`WritePacer.admit` takes what the row will spend from the budget, or says when it
will be there; a row that does not fit is not attempted, it is put off until then (no 429 is provoked).

Priority: reverse sync (acknowledge, close, comments) may spend the whole budget; tags leave ``reserve`` incident
writes of every window to it, so an acknowledgement finds a free write even while a tag backlog drains. Rows put off
are spread over the coming windows (the n-th waiting tag gets the window it can be served in), so the backlog is
re-read about once per row, not once per row per window.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sentinel_signl4.domain import ActionKind
from sentinel_signl4.domain.actions import UpdateIncident, UpdateOp, payload_of
from sentinel_signl4.store import OutboxAction

__all__ = ["PRIORITY", "Admission", "Window", "WritePacer", "priority_of"]

#: Order in which an outbox pass starts incidents' rows: pages first (they spend no source budget), then reverse
#: sync, then SIGNL4 resolves and annotations, then tags.
PRIORITY: dict[ActionKind, int] = {
    ActionKind.RAISE_SIGNL: 0,
    ActionKind.UPDATE_INCIDENT: 1,
    ActionKind.ADD_COMMENT: 1,
    ActionKind.RESOLVE_SIGNL: 2,
    ActionKind.ANNOTATE_SIGNL: 2,
    ActionKind.TAG_INCIDENT: 3,
}


def priority_of(kind: ActionKind) -> int:
    return PRIORITY.get(kind, len(PRIORITY))


class Window(Protocol):
    """A sliding-window budget (``clients.ratelimit.SlidingWindowLimiter`` is one)."""

    @property
    def limit(self) -> int: ...

    @property
    def window(self) -> float: ...

    def delay(self, headroom: int = 0) -> float: ...

    def take(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Admission:
    """``wait`` 0: the budget was taken, go. Otherwise: put the row off by ``wait`` seconds; ``budget`` says which."""

    wait: float = 0.0
    budget: str = ""


_GO = Admission()


class WritePacer:
    """Admits outbox rows against the incident-write and comment-write budgets of one workspace."""

    def __init__(self, incidents: Window, comments: Window, *, reserve: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if reserve < 0 or reserve >= incidents.limit:
            raise ValueError("reserve must be >= 0 and smaller than the incident-write limit")
        self.incidents = incidents
        self.comments = comments
        self.reserve = reserve
        self._clock = clock
        # Put-off times per (budget, headroom): tags queue among tags, reverse sync among reverse sync.
        self._promised: dict[tuple[str, int], deque[float]] = {}

    def __repr__(self) -> str:
        return f"WritePacer(incidents={self.incidents.limit}, comments={self.comments.limit}, reserve={self.reserve})"

    def admit(self, row: OutboxAction) -> Admission:
        """Take the writes ``row`` will make from the budget, or say how long to put it off."""
        needs = self._needs(row)
        if not needs:
            return _GO
        waits = [(self._window(name).delay(headroom), name, headroom) for name, headroom in needs]
        wait, name, headroom = max(waits)
        if wait <= 0:
            for needed, _headroom in needs:
                self._window(needed).take()
            return _GO
        return Admission(wait=self._spread(name, wait, headroom), budget=name)

    def _needs(self, row: OutboxAction) -> list[tuple[str, int]]:
        """(budget, headroom to leave) for each write ``row`` makes."""
        match row.kind:
            case ActionKind.TAG_INCIDENT:
                return [("incidents", self.reserve)]
            case ActionKind.ADD_COMMENT:
                return [("comments", 0)]
            case ActionKind.UPDATE_INCIDENT:
                try:
                    update = payload_of(row.kind, row.payload)
                except ValueError:
                    return []  # unreadable: the worker dead-letters it without a write
                closing = isinstance(update, UpdateIncident) and update.op is UpdateOp.CLOSE
                # A close also writes its classification comment.
                return [("incidents", 0), ("comments", 0)] if closing else [("incidents", 0)]
            case _:
                return []

    def _window(self, name: str) -> Window:
        return self.incidents if name == "incidents" else self.comments

    def _spread(self, name: str, wait: float, headroom: int) -> float:
        """``wait``, pushed back by one window for every full window's worth of rows already put off."""
        now = self._clock()
        promised = self._promised.setdefault((name, headroom), deque())
        while promised and promised[0] <= now:
            promised.popleft()
        window = self._window(name)
        per_window = max(1, window.limit - headroom)
        wait += (len(promised) // per_window) * window.window
        promised.append(now + wait)
        if len(promised) > 1 and promised[-2] > promised[-1]:
            # Keep the deque ordered (a smaller wait of a higher-priority row): pruning reads from the left.
            self._promised[(name, headroom)] = deque(sorted(promised))
        return wait
