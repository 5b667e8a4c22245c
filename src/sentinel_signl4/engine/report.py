"""What one ``run_once`` did, for the demo, the logs and the tests."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sentinel_signl4.domain import ActionKind, Incident, SkipReason

__all__ = ["PollReport"]


@dataclass(slots=True)
class PollReport:
    connector: str
    seen: int = 0
    enqueued: list[Incident] = field(default_factory=list)
    skipped: list[tuple[Incident, SkipReason]] = field(default_factory=list)
    done: Counter[ActionKind] = field(default_factory=Counter)
    retried: Counter[ActionKind] = field(default_factory=Counter)
    dead: Counter[ActionKind] = field(default_factory=Counter)
    #: Rows put off (not attempted) because the source's write budget had no room for them yet.
    paced: Counter[ActionKind] = field(default_factory=Counter)
    reconciled: int = 0
    #: Pending SIGNL4 events the inbox step read (applied, finished, or left waiting for their link).
    inbox_events: int = 0
    reconciled_sends: int = 0  # in-doubt sends found in SIGNL4 by ExternalID instead of re-sent
    #: Defender merges followed: (merged incident, the survivor or None when unknown, what happened to the Signl).
    merged: list[tuple[Incident, Incident | None, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def outbox_may_have_changed(self) -> bool:
        """Whether this cycle may have written outbox rows: it read incidents or events, worked rows, or failed
        somewhere. False only for a cycle that found nothing to do."""
        worked = sum(self.done.values()) + sum(self.retried.values()) + sum(self.dead.values())
        return bool(self.seen or self.enqueued or worked or sum(self.paced.values()) or self.reconciled
                    or self.reconciled_sends or self.merged or self.errors or self.inbox_events)

    def skipped_by_reason(self) -> Counter[SkipReason]:
        return Counter(reason for _, reason in self.skipped)
