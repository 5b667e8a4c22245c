"""Pure parts of the Graph client: the server-side ``$filter`` and the ``/users`` path of odd UPNs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sentinel_signl4.clients.graph import build_graph_filter, user_path
from sentinel_signl4.domain import IncidentFilter, IncidentStatus, Severity

NOW = datetime(2026, 11, 26, 10, 0, 30, 900_000, tzinfo=UTC)


def test_default_filter_new_incidents_of_the_last_day() -> None:
    assert build_graph_filter(IncidentFilter(), NOW) == (
        "createdDateTime ge 2026-11-25T10:00:30Z and status eq 'active'")


def test_statuses_and_severities_become_graph_values() -> None:
    flt = IncidentFilter(statuses=frozenset({IncidentStatus.ACTIVE, IncidentStatus.NEW}),
                         severities=frozenset({Severity.LOW, Severity.HIGH}), max_age=timedelta(hours=2))
    assert build_graph_filter(flt, NOW) == (
        "createdDateTime ge 2026-11-26T08:00:30Z and (status eq 'active' or status eq 'inProgress' or "
        "status eq 'awaitingAction') and (severity eq 'high' or severity eq 'low')")


def test_every_status_still_filters_incidents_so_merged_ones_stay_out_but_not_alerts() -> None:
    flt = IncidentFilter(statuses=frozenset(IncidentStatus))
    assert "status eq 'resolved')" in build_graph_filter(flt, NOW)
    assert "redirected" not in build_graph_filter(flt, NOW)
    assert build_graph_filter(flt, NOW, "alerts") == "createdDateTime ge 2026-11-25T10:00:30Z"
    alerts = IncidentFilter(statuses=frozenset({IncidentStatus.NEW, IncidentStatus.CLOSED}))
    assert build_graph_filter(alerts, NOW, "alerts").endswith("(status eq 'new' or status eq 'resolved')")


def test_an_empty_selection_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="status"):
        build_graph_filter(IncidentFilter(statuses=frozenset()), NOW)
    with pytest.raises(ValueError, match="severity"):
        build_graph_filter(IncidentFilter(severities=frozenset()), NOW)


@pytest.mark.parametrize(("reference", "path"), [
    ("87d349ed-44d7-43e1-9a83-5f2406dee5bd", "users/87d349ed-44d7-43e1-9a83-5f2406dee5bd"),
    ("AdeleV@contoso.com", "users/AdeleV@contoso.com"),
    ("$AdeleVance@contoso.com", "users('$AdeleVance@contoso.com')"),
    ("$o'neil@contoso.com", "users('$o''neil@contoso.com')"),
    ("lee_fabrikam.com#EXT#@contoso.onmicrosoft.com", "users/lee_fabrikam.com%23EXT%23@contoso.onmicrosoft.com"),
    ("a/../../security/incidents", "users/a%2F..%2F..%2Fsecurity%2Fincidents"),
])
def test_user_paths(reference: str, path: str) -> None:
    assert user_path(reference) == path
