"""Pure Graph write-back decisions: PATCH bodies that change only what must change, and comment markers."""

from __future__ import annotations

import pytest

from sentinel_signl4.domain import Classification, ClassificationReason
from sentinel_signl4.domain.graph_sync import (
    acknowledge_changes,
    close_changes,
    comment_marker,
    comment_text,
    has_comment,
)
from sentinel_signl4.domain.sync import COMMENT_LIMIT, ClassificationChoice

TP = ClassificationChoice(Classification.TRUE_POSITIVE, ClassificationReason.SUSPICIOUS_ACTIVITY)


@pytest.mark.parametrize(("current", "assignee", "alert", "expected"), [
    ({"status": "active"}, "a@x.com", False, {"status": "inProgress", "assignedTo": "a@x.com"}),
    ({"status": "active", "assignedTo": "A@X.com"}, "a@x.com", False, {"status": "inProgress"}),
    ({"status": "inProgress", "assignedTo": "b@x.com"}, "a@x.com", False, {"assignedTo": "a@x.com"}),
    ({"status": "awaitingAction"}, None, False, {}),
    ({"status": "resolved", "assignedTo": None}, "a@x.com", False, {}),
    ({"status": "new"}, "a@x.com", True, {"status": "inProgress", "assignedTo": "a@x.com"}),
    ({"status": "active"}, None, True, {}),  # "active" is no alert status
])
def test_acknowledge_changes(current: dict[str, str], assignee: str | None, alert: bool,
                             expected: dict[str, str]) -> None:
    assert acknowledge_changes(current, assignee=assignee, alert=alert) == expected


def test_close_sets_the_verdict_and_an_assignee_only_when_nobody_is_assigned() -> None:
    assert close_changes({"status": "inProgress", "assignedTo": ""}, choice=TP, assignee="a@x.com") == {
        "status": "resolved", "classification": "truePositive", "determination": "other", "assignedTo": "a@x.com"}
    assert close_changes({"status": "active", "assignedTo": "b@x.com"}, choice=TP, assignee="a@x.com") == {
        "status": "resolved", "classification": "truePositive", "determination": "other"}
    assert close_changes({"status": "resolved"}, choice=TP, assignee="a@x.com") == {}


def test_comment_markers_are_stable_distinct_and_survive_clipping() -> None:
    assert comment_marker("c-1") == comment_marker("c-1") != comment_marker("c-2")
    assert comment_marker("c-1").startswith("[s4:") and len(comment_marker("c-1")) == len("[s4:]") + 12
    text = comment_text("x" * (COMMENT_LIMIT + 10), "c-1")
    assert len(text) <= COMMENT_LIMIT and text.endswith(comment_marker("c-1"))
    assert has_comment([{"comment": "hello"}, {"comment": comment_text("hi", "c-1")}], "c-1")
    assert not has_comment([{"comment": comment_text("hi", "c-2")}, {"createdBy": "x"}, "junk"], "c-1")
