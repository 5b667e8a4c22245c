"""The Sentinel client's OData: ``$filter`` expressions and the datetimes both clients send and read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from sentinel_signl4.clients.odata import any_of, format_odata_datetime, parse_odata_datetime
from sentinel_signl4.clients.sentinel_filters import build_incident_filter, build_modified_filter, build_number_filter
from sentinel_signl4.domain import IncidentFilter, IncidentStatus, Severity

NOW = datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=UTC)


# -- filters -------------------------------------------------------------------------------------------------


def test_default_filter_is_new_in_the_last_24_hours_without_a_severity_clause() -> None:
    assert build_incident_filter(IncidentFilter(), NOW) == (
        "properties/createdTimeUtc ge 2026-11-25T10:00:00Z and properties/status eq 'New'"
    )


def test_selected_severities_and_statuses_are_or_groups_in_a_stable_order() -> None:
    flt = IncidentFilter(statuses=frozenset({IncidentStatus.ACTIVE, IncidentStatus.NEW}),
                         severities=frozenset({Severity.MEDIUM, Severity.HIGH}), max_age=timedelta(hours=2))
    assert build_incident_filter(flt, NOW) == (
        "properties/createdTimeUtc ge 2026-11-26T08:00:00Z"
        " and (properties/status eq 'New' or properties/status eq 'Active')"
        " and (properties/severity eq 'High' or properties/severity eq 'Medium')"
    )


def test_all_statuses_selected_omits_the_status_clause() -> None:
    flt = IncidentFilter(statuses=frozenset(IncidentStatus), severities=frozenset({Severity.LOW}))
    assert build_incident_filter(flt, NOW) == (
        "properties/createdTimeUtc ge 2026-11-25T10:00:00Z and properties/severity eq 'Low'"
    )


def test_times_are_utc_whole_seconds_rounded_down_so_the_window_only_widens() -> None:
    paris = timezone(timedelta(hours=1))
    assert format_odata_datetime(datetime(2026, 1, 1, 1, 0, 0, 999999, tzinfo=paris)) == "2026-01-01T00:00:00Z"


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_incident_filter(IncidentFilter(), datetime(2026, 1, 1))


@pytest.mark.parametrize("flt", [IncidentFilter(statuses=frozenset()), IncidentFilter(severities=frozenset())])
def test_a_filter_that_selects_nothing_is_an_error_not_an_empty_poll(flt: IncidentFilter) -> None:
    with pytest.raises(ValueError, match="selects no"):
        build_incident_filter(flt, NOW)


def test_modified_filter_with_and_without_statuses() -> None:
    assert build_modified_filter(NOW) == "properties/lastModifiedTimeUtc ge 2026-11-26T10:00:00Z"
    assert build_modified_filter(NOW, [IncidentStatus.CLOSED]) == (
        "properties/lastModifiedTimeUtc ge 2026-11-26T10:00:00Z and properties/status eq 'Closed'"
    )


def test_number_filter() -> None:
    assert build_number_filter(42) == "properties/incidentNumber eq 42"


def test_any_of_is_one_term_or_a_parenthesised_group() -> None:
    assert any_of("status", ["New"]) == "status eq 'New'"
    assert any_of("status", ["New", "Active"]) == "(status eq 'New' or status eq 'Active')"


@pytest.mark.parametrize(("text", "expected"), [
    ("2020-07-20T18:21:53.6158361Z", datetime(2020, 7, 20, 18, 21, 53, 615836, tzinfo=UTC)),
    ("2026-01-01T01:00:00+01:00", datetime(2026, 1, 1, 0, 0, tzinfo=UTC)),
    ("2026-01-01T00:00:00", datetime(2026, 1, 1, 0, 0, tzinfo=UTC)),
    ("yesterday", None), ("", None), (None, None), (17, None),
])
def test_parsed_datetimes_are_aware_utc_or_none(text: object, expected: datetime | None) -> None:
    assert parse_odata_datetime(text) == expected
