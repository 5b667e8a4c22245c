"""Reverse-sync decisions: SIGNL4 events, classification keywords, comment ids and texts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sentinel_signl4.domain import Classification, ClassificationReason
from sentinel_signl4.domain.signl4_events import EventKind, parse_event
from sentinel_signl4.domain.sync import (
    COMMENT_LIMIT,
    ClassificationChoice,
    annotation_comment,
    clip_comment,
    comment_id_for,
    parse_keywords,
)

ACK = {
    "eventType": 201, "eventRaisedUtc": "2017-09-01T08:11:37.4815663Z",
    "subscription": {"id": "0acf8014-22f2-4503-88d7-f7d05b46744f"},
    "user": {"username": "Rene", "mailaddress": "rene@signl4.com", "id": "f0bd5063-9588-51cf-b3d9-94e5647dedc5"},
    "alert": {"statusCode": 2, "eventId": "2518783235949759942_fbc7b4a4", "externalEventId": "ext-1",
              "acknowledgedUserIds": ["f0bd5063"], "id": "2518981069381242800_2ab1b5e0"},
    "id": "dd209a2d-e037-41ee-b37d-f605cc0a39fb",
}


def test_documented_201_with_status_2_is_an_acknowledgement() -> None:
    event = parse_event(ACK)
    assert event.kind is EventKind.ACKNOWLEDGED
    assert event.raised_at == datetime(2017, 9, 1, 8, 11, 37, 481566, tzinfo=UTC)
    assert event.user is not None and event.user.mail == "rene@signl4.com"
    assert event.external_id == "ext-1"


def test_status_4_is_closed_even_though_the_docs_table_says_2() -> None:
    # signl4-api.md §2.2: the docs table is wrong; rocketchat.md and RudderStack use statusCode 4 for closed.
    assert parse_event({**ACK, "alert": {**ACK["alert"], "statusCode": 4}}).kind is EventKind.CLOSED


@pytest.mark.parametrize("payload", [{}, {"id": "x"}, {"eventType": 201}, {"id": "", "eventType": 201},
                                     {"id": "x", "eventType": "201"}, {"id": True, "eventType": 201}])
def test_events_without_id_or_integer_type_are_rejected(payload: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="event has no"):
        parse_event(payload)


def test_unknown_fields_and_nulls_are_tolerated() -> None:
    event = parse_event({"id": 5, "eventType": 203, "alert": None, "user": None, "annotation": {"message": None},
                         "extra": [1, 2]})
    assert event.kind is EventKind.ANNOTATED and event.user is None and event.external_id is None


@pytest.mark.parametrize(("text", "classification", "reason"), [
    ("#tp", Classification.TRUE_POSITIVE, ClassificationReason.SUSPICIOUS_ACTIVITY),
    ("looks fine #fp:logic", Classification.FALSE_POSITIVE, ClassificationReason.INCORRECT_ALERT_LOGIC),
    ("#FP:InaccurateData", Classification.FALSE_POSITIVE, ClassificationReason.INACCURATE_DATA),
    ("#bp:expected ok", Classification.BENIGN_POSITIVE, ClassificationReason.SUSPICIOUS_BUT_EXPECTED),
    ("#undetermined", Classification.UNDETERMINED, None),
    ("#tp first, then #fp:data", Classification.FALSE_POSITIVE, ClassificationReason.INACCURATE_DATA),
])
def test_classification_keywords(text: str, classification: Classification,
                                 reason: ClassificationReason | None) -> None:
    result = parse_keywords(text)
    assert result is not None and result.choice == ClassificationChoice(classification, reason)


@pytest.mark.parametrize("text", ["#fp", "#fp:banana", "#tp:logic", "#tpx"])
def test_invalid_keywords_explain_the_valid_ones(text: str) -> None:
    result = parse_keywords(text)
    assert result is not None and result.choice is None
    assert result.error is not None and "#fp:logic" in result.error and "#undetermined" in result.error


def test_text_without_keywords_is_just_a_comment() -> None:
    assert parse_keywords("on my way, ETA 10 min (issue #12)") is None


def test_comment_ids_are_derived_from_the_event_id() -> None:
    assert comment_id_for("c", "e1") == comment_id_for("c", "e1")
    assert comment_id_for("c", "e1") != comment_id_for("c", "e2")
    assert comment_id_for("c", "e1", "ack") != comment_id_for("c", "e1", "close")


def test_comments_stay_under_sentinels_limit() -> None:
    assert len(clip_comment("x" * 50_000)) <= COMMENT_LIMIT
    event = parse_event({**ACK, "eventType": 203, "annotation": {"message": "y" * 40_000, "id": "a1"}})
    assert len(annotation_comment(event)) <= COMMENT_LIMIT
    assert annotation_comment(parse_event({**ACK, "eventType": 203, "annotation": {"message": "on it"}})) == (
        "[SIGNL4] Rene: on it")
