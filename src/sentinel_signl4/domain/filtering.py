"""Which incidents are forwarded. Pure: the clock is a parameter."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sentinel_signl4.domain.enums import IncidentStatus, Severity, SkipReason
from sentinel_signl4.domain.incident import Incident

__all__ = ["IncidentFilter", "skip_reason"]


@dataclass(frozen=True, slots=True)
class IncidentFilter:
    statuses: frozenset[IncidentStatus] = frozenset({IncidentStatus.NEW})
    severities: frozenset[Severity] = field(default_factory=lambda: frozenset(Severity))
    max_age: timedelta = timedelta(hours=24)

    def oldest(self, now: datetime) -> datetime:
        return now - self.max_age


def skip_reason(incident: Incident, flt: IncidentFilter, now: datetime) -> SkipReason | None:
    """Return why ``incident`` is not forwarded under ``flt`` at ``now``, or ``None`` if it matches.

    The server-side ``$filter`` already selects on the same terms; this check runs again on what comes back, so a
    server quirk never pages for an incident the user excluded, and so the demo can say why an incident was skipped.
    """
    if incident.merged:
        return SkipReason.MERGED
    if incident.status not in flt.statuses:
        return SkipReason.STATUS
    if incident.severity not in flt.severities:
        return SkipReason.SEVERITY
    if incident.created < flt.oldest(now):
        return SkipReason.AGE
    return None
