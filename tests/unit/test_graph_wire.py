"""Graph's wire module on the write side: PATCH bodies that change only what must change, and comment markers."""

from __future__ import annotations

from typing import Any

import pytest

from sentinel_signl4.domain import Classification, ClassificationReason
from sentinel_signl4.domain.incident_change import OwnerRef, acknowledge_change, close_change
from sentinel_signl4.domain.sync import COMMENT_LIMIT, ClassificationChoice
from sentinel_signl4.sources.graph_wire import (
    assignee,
    comment_marker,
    comment_text,
    has_comment,
    incident_from_graph,
    incident_from_graph_alert,
    patch_body,
)

TP = ClassificationChoice(Classification.TRUE_POSITIVE, ClassificationReason.SUSPICIOUS_ACTIVITY)


def read(current: dict[str, Any]) -> dict[str, Any]:
    """``current`` as a whole Graph item (what the adapter reads before it writes)."""
    return {"id": "7", "createdDateTime": "2026-01-01T00:00:00Z", **current}


def acknowledge_changes(current: dict[str, Any], *, assignee_: str | None, alert: bool = False) -> dict[str, Any]:
    item = read(current)
    incident = (incident_from_graph_alert if alert else incident_from_graph)(item, tenant_id="t")
    owner = assignee(OwnerRef(upn=assignee_) if assignee_ else None)
    return patch_body(acknowledge_change(incident, owner), item, alert=alert)


def close_changes(current: dict[str, Any], *, choice: ClassificationChoice, assignee_: str | None) -> dict[str, Any]:
    item = read(current)
    incident = incident_from_graph(item, tenant_id="t")
    owner = assignee(OwnerRef(upn=assignee_) if assignee_ else None)
    return patch_body(close_change(incident, choice, "closed in SIGNL4", owner), item)


@pytest.mark.parametrize(("current", "assignee", "alert", "expected"), [
    ({"status": "active"}, "a@x.com", False, {"status": "inProgress", "assignedTo": "a@x.com"}),
    ({"status": "active", "assignedTo": "A@X.com"}, "a@x.com", False, {"status": "inProgress"}),
    ({"status": "inProgress", "assignedTo": "b@x.com"}, "a@x.com", False, {"assignedTo": "a@x.com"}),
    ({"status": "awaitingAction"}, None, False, {}),
    ({"status": "resolved", "assignedTo": None}, "a@x.com", False, {}),
    ({"status": "new"}, "a@x.com", True, {"status": "inProgress", "assignedTo": "a@x.com"}),
    ({"status": "active"}, None, True, {}),  # "active" is no alert status
    ({"status": "inProgress", "assignedTo": "Adele Vance"}, "Adele Vance", False, {}),  # free text, compared as is
])
def test_acknowledge_changes(current: dict[str, str], assignee: str | None, alert: bool,
                             expected: dict[str, str]) -> None:
    assert acknowledge_changes(current, assignee_=assignee, alert=alert) == expected


def test_close_sets_the_verdict_and_an_assignee_only_when_nobody_is_assigned() -> None:
    assert close_changes({"status": "inProgress", "assignedTo": ""}, choice=TP, assignee_="a@x.com") == {
        "status": "resolved", "classification": "truePositive", "determination": "other", "assignedTo": "a@x.com"}
    assert close_changes({"status": "active", "assignedTo": "b@x.com"}, choice=TP, assignee_="a@x.com") == {
        "status": "resolved", "classification": "truePositive", "determination": "other"}
    assert close_changes({"status": "resolved"}, choice=TP, assignee_="a@x.com") == {}


def test_comment_markers_are_stable_distinct_and_survive_clipping() -> None:
    assert comment_marker("c-1") == comment_marker("c-1") != comment_marker("c-2")
    assert comment_marker("c-1").startswith("[s4:") and len(comment_marker("c-1")) == len("[s4:]") + 12
    text = comment_text("x" * (COMMENT_LIMIT + 10), "c-1")
    assert len(text) <= COMMENT_LIMIT and text.endswith(comment_marker("c-1"))
    assert has_comment([{"comment": "hello"}, {"comment": comment_text("hi", "c-1")}], "c-1")
    assert not has_comment([{"comment": comment_text("hi", "c-2")}, {"createdBy": "x"}, "junk"], "c-1")
