"""The ``$filter`` expressions the Sentinel client sends (ARM OData over ``properties/…``). Pure."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sentinel_signl4.clients.odata import any_of, format_odata_datetime
from sentinel_signl4.domain.enums import IncidentStatus, Severity
from sentinel_signl4.domain.filtering import IncidentFilter

__all__ = ["build_incident_filter", "build_modified_filter", "build_number_filter"]

_SEVERITY_ORDER = (Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.INFORMATIONAL)
_STATUS_ORDER = (IncidentStatus.NEW, IncidentStatus.ACTIVE, IncidentStatus.CLOSED)


def _status_clause(statuses: Iterable[IncidentStatus]) -> str | None:
    chosen = set(statuses)
    if not chosen:
        raise ValueError("the incident filter selects no status")
    if chosen >= set(IncidentStatus):
        return None
    return any_of("properties/status", [s.value for s in _STATUS_ORDER if s in chosen])


def build_incident_filter(flt: IncidentFilter, now: datetime) -> str:
    """The ``$filter`` for the forward path: created within ``max_age``, in the chosen statuses and severities.

    A clause that would select every value (all three statuses, all four severities) is omitted: it filters
    nothing and makes the URL longer.
    """
    clauses = [f"properties/createdTimeUtc ge {format_odata_datetime(flt.oldest(now))}"]
    status = _status_clause(flt.statuses)
    if status:
        clauses.append(status)
    severities = set(flt.severities)
    if not severities:
        raise ValueError("the incident filter selects no severity")
    if not severities >= set(Severity):
        clauses.append(any_of("properties/severity", [s.value for s in _SEVERITY_ORDER if s in severities]))
    return " and ".join(clauses)


def build_modified_filter(since: datetime, statuses: Iterable[IncidentStatus] | None = None) -> str:
    """The ``$filter`` for lifecycle detection: modified since ``since``, optionally in ``statuses``."""
    clauses = [f"properties/lastModifiedTimeUtc ge {format_odata_datetime(since)}"]
    if statuses is not None:
        status = _status_clause(statuses)
        if status:
            clauses.append(status)
    return " and ".join(clauses)


def build_number_filter(number: int) -> str:
    """The ``$filter`` that selects the incident with ``incidentNumber`` ``number``."""
    return f"properties/incidentNumber eq {int(number)}"
