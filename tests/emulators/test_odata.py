"""The OData $filter/$orderby subset: parsing, precedence, evaluation, errors, and format/parse round trips."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentinel_signl4_emulators.common.odata import (
    And,
    Comparison,
    Expr,
    FieldType,
    Not,
    ODataError,
    Or,
    OrderBy,
    evaluate,
    format_filter,
    parse_filter,
    parse_orderby,
)
from sentinel_signl4_emulators.sentinel.model import INCIDENT_FIELDS

T = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def test_connector_filter_parses_with_and_binding_tighter_than_or() -> None:
    expr = parse_filter(
        "properties/createdTimeUtc ge 2026-11-26T10:00:00Z and properties/status eq 'New' "
        "and (properties/severity eq 'High' or properties/severity eq 'Medium')",
        INCIDENT_FIELDS,
    )
    assert expr == And(
        And(
            Comparison("properties/createdTimeUtc", "ge", T),
            Comparison("properties/status", "eq", "New"),
        ),
        Or(
            Comparison("properties/severity", "eq", "High"),
            Comparison("properties/severity", "eq", "Medium"),
        ),
    )


def test_or_has_lower_precedence_than_and_without_parentheses() -> None:
    expr = parse_filter(
        "properties/status eq 'New' or properties/status eq 'Active' and properties/severity eq 'High'",
        INCIDENT_FIELDS,
    )
    assert isinstance(expr, Or) and isinstance(expr.right, And)


def test_not_quoted_quotes_integers_and_fractional_offsets() -> None:
    expr = parse_filter(
        "not (properties/title eq 'It''s fine') and properties/incidentNumber gt 41 "
        "and properties/lastModifiedTimeUtc lt 2026-11-26T12:00:00.1234567+02:00",
        INCIDENT_FIELDS,
    )
    assert expr == And(
        And(Not(Comparison("properties/title", "eq", "It's fine")), Comparison("properties/incidentNumber", "gt", 41)),
        Comparison("properties/lastModifiedTimeUtc", "lt", datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=UTC)),
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("properties/status eq", "expected a literal"),
        ("properties/status eq 'New' and", "expected"),
        ("(properties/status eq 'New'", "expected ')'"),
        ("properties/status eq 'New')", "unexpected ')'"),
        ("properties/status equals 'New'", "expected eq"),
        ("properties/status eq 'unterminated", "Syntax error"),
        ("properties/classification eq 'Undetermined'", "not supported"),
        ("properties/owner/objectId eq 'x'", "not supported"),
        ("properties/status eq New", "not a valid string"),
        ("properties/createdTimeUtc ge '2026-11-26T10:00:00Z'", "not a valid datetime"),
        ("properties/incidentNumber eq '5'", "not a valid int"),
        ("properties/createdTimeUtc ge 2026-11-26", "Syntax error"),
        ("contains(properties/title, 'x')", "Syntax error"),
    ],
)
def test_invalid_or_unsupported_filters_are_rejected(text: str, fragment: str) -> None:
    with pytest.raises(ODataError, match=re.escape(fragment)):
        parse_filter(text, INCIDENT_FIELDS)


def test_evaluation_compares_by_type_and_null_only_satisfies_ne() -> None:
    fields = {"a": FieldType.STRING, "t": FieldType.DATETIME, "n": FieldType.INT}
    record = {"a": "New", "t": T, "n": 7, "missing": None}
    assert evaluate(parse_filter("a eq 'New' and n ge 7 and t le 2026-11-26T10:00:00Z", fields), record)
    assert not evaluate(parse_filter("a eq 'new'", fields), record)  # case-sensitive, see odata.evaluate
    assert not evaluate(parse_filter("n gt 7 or t lt 2026-11-26T09:59:59Z", fields), record)
    assert evaluate(parse_filter("not (n lt 7)", fields), record)
    absent = {"a": None, "t": T, "n": 1}
    assert evaluate(parse_filter("a ne 'x'", fields), absent)
    assert not evaluate(parse_filter("a eq 'x'", fields), absent)


def test_orderby_accepts_one_supported_property_with_direction() -> None:
    assert parse_orderby("properties/createdTimeUtc desc", INCIDENT_FIELDS) == OrderBy(
        "properties/createdTimeUtc", descending=True
    )
    assert parse_orderby("properties/incidentNumber", INCIDENT_FIELDS) == OrderBy("properties/incidentNumber")
    for bad in ("properties/createdTimeUtc sideways", "properties/owner asc", "", "a b c"):
        with pytest.raises(ODataError):
            parse_orderby(bad, INCIDENT_FIELDS)


# --- round trips -----------------------------------------------------------------------------------------------

_moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda d: d - timedelta(microseconds=d.microsecond % 10))
_comparisons = st.one_of(
    st.builds(Comparison, st.sampled_from(["properties/status", "properties/severity", "properties/title"]),
              st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le"]), st.text(max_size=20)),
    st.builds(Comparison, st.sampled_from(["properties/createdTimeUtc", "properties/lastModifiedTimeUtc"]),
              st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le"]), _moments),
    st.builds(Comparison, st.just("properties/incidentNumber"),
              st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le"]), st.integers(-(2**31), 2**31)),
)
_expressions: st.SearchStrategy[Expr] = st.recursive(
    _comparisons,
    lambda children: st.one_of(
        st.builds(And, children, children), st.builds(Or, children, children), st.builds(Not, children)
    ),
    max_leaves=8,
)


@given(_expressions)
def test_format_then_parse_returns_the_same_expression(expr: Expr) -> None:
    assert parse_filter(format_filter(expr), INCIDENT_FIELDS) == expr


@given(_expressions, st.data())
def test_evaluation_agrees_with_python_semantics(expr: Expr, data: st.DataObject) -> None:
    record = {
        "properties/status": data.draw(st.sampled_from(["New", "Active", "Closed"])),
        "properties/severity": data.draw(st.sampled_from(["High", "Low"])),
        "properties/title": data.draw(st.text(max_size=5)),
        "properties/createdTimeUtc": data.draw(_moments),
        "properties/lastModifiedTimeUtc": data.draw(_moments),
        "properties/incidentNumber": data.draw(st.integers(-5, 5)),
    }

    def reference(e: Expr) -> bool:
        if isinstance(e, And):
            return reference(e.left) and reference(e.right)
        if isinstance(e, Or):
            return reference(e.left) or reference(e.right)
        if isinstance(e, Not):
            return not reference(e.operand)
        ops = {"eq": "__eq__", "ne": "__ne__", "gt": "__gt__", "ge": "__ge__", "lt": "__lt__", "le": "__le__"}
        return bool(getattr(record[e.field], ops[e.op])(e.value))

    assert evaluate(parse_filter(format_filter(expr), INCIDENT_FIELDS), record) == reference(expr)
