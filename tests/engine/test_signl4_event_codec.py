"""``Signl4Event`` owns its stored form: what the poller puts in the inbox and the reverse path puts in outbox
payloads reads back as the same event, and rows written by earlier versions (no ``v``; polled events stored as a
webhook envelope) still load."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sentinel_signl4.domain.signl4_events import EventKind, Signl4Event, Signl4User

EVENT = Signl4Event(event_id="poll:a1:ack", kind=EventKind.ACKNOWLEDGED, event_type=201,
                    raised_at=datetime(2026, 11, 26, 10, 5, tzinfo=UTC), external_id="sentinel-signl4:contoso:x",
                    alert_id="a1", user=Signl4User(id="u1", name="Adele", mail="adele@contoso.test"),
                    annotation=None, annotation_id=None)


def test_a_record_reads_back_as_the_same_event_and_carries_its_version() -> None:
    record = EVENT.to_record()
    assert record["v"] == 1
    assert Signl4Event.from_record(record) == EVENT
    assert Signl4Event.from_inbox(record) == EVENT


def test_a_record_written_before_versions_reads_as_v1() -> None:
    old = {"id": "n1", "kind": "annotated", "type": 203, "raised_at": "2026-11-26T10:05:00+00:00",
           "external_id": "sentinel-signl4:contoso:x", "alert_id": "a1", "user": None,
           "annotation": "fp please", "annotation_id": "n1"}
    event = Signl4Event.from_record(old)
    assert (event.kind, event.annotation, event.annotation_id, event.user) == (EventKind.ANNOTATED, "fp please",
                                                                               "n1", None)
    assert event.intent_id == "annotation:n1"


def test_a_polled_event_stored_as_a_webhook_envelope_by_an_earlier_version_still_loads() -> None:
    envelope = {"id": "poll:a1:ack", "eventType": 201, "eventRaisedUtc": "2026-11-26T10:05:00+00:00",
                "alert": {"statusCode": 2, "eventId": "e1", "externalEventId": "sentinel-signl4:contoso:x",
                          "id": "a1"},
                "user": {"id": "u1", "username": "Adele", "mailaddress": "adele@contoso.test"}, "source": "poll"}
    assert Signl4Event.from_inbox(envelope) == EVENT


@pytest.mark.parametrize("bad", [{"v": 2, "id": "x", "kind": "closed"}, {"v": 1, "kind": "closed"},
                                 {"v": 1, "id": "x", "kind": "reopened"}])
def test_a_record_this_version_cannot_read_is_refused_with_a_reason(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        Signl4Event.from_inbox(bad)
