"""A SIGNL4 annotation (203) without text — message missing, null, empty or only whitespace — never writes an
empty "[SIGNL4] name: " comment on the incident: the event is finished with its reason. Through the receiver and
through the REST poll."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog

from integration_harness import Harness
from sync_support import TOKEN, start

BLANK_ANNOTATIONS: dict[str, dict[str, Any] | None] = {
    "no annotation object": None,
    "message missing": {"id": "note-1"},
    "message null": {"id": "note-1", "message": None},
    "message empty": {"id": "note-1", "message": ""},
    "message whitespace": {"id": "note-1", "message": " \t\n "},
}


def skipped(logs: list[dict[str, Any]]) -> list[str]:
    """Events finished without action because their annotation has no text."""
    return [entry["event_id"] for entry in logs
            if entry["event"] == "signl4_event_skipped" and "without a message" in entry["reason"]]


def signl4_comments(comments: list[str]) -> list[str]:
    return [m for m in comments if m.startswith("[SIGNL4]")]


@pytest.mark.parametrize("annotation", list(BLANK_ANNOTATIONS.values()), ids=list(BLANK_ANNOTATIONS))
async def test_webhook_annotation_without_text_writes_no_comment_and_is_finished_with_a_reason(
        harness: Harness, annotation: dict[str, Any] | None) -> None:
    s = await start(harness, api_key=False)
    body: dict[str, Any] = {"id": "blank-203", "eventType": 203, "eventRaisedUtc": datetime.now(UTC).isoformat(),
                            "alert": {"statusCode": 1, "externalEventId": s.ext, "id": s.alert_id},
                            "user": {"id": "u1", "username": "Adele", "mailaddress": "adele@contoso.test"}}
    if annotation is not None:
        body["annotation"] = annotation
    assert (await s.web.post(f"/webhooks/signl4/contoso/{TOKEN}", json=body)).status_code == 202
    harness.state.signl4.annotate(s.alert_id, harness.world.users[0].mail, "real note after the blank one")
    await s.deliver()
    with structlog.testing.capture_logs() as logs:
        await s.cycle()
    assert skipped(logs) == ["blank-203"]
    assert signl4_comments(s.comments()) == [f"[SIGNL4] {harness.world.users[0].display_name}: real note after "
                                             "the blank one"]
    assert await s.runtime.store.pending_inbox("contoso", 10) == []
    assert s.connector.health.error is None


async def test_polled_annotation_without_text_writes_no_comment(harness: Harness) -> None:
    s = await start(harness, webhook=False, sync={"mode": "poll", "poll_signl4_interval": "1s"})
    blank = harness.state.signl4.annotate(s.alert_id, harness.world.users[1].mail, "soon blank")
    blank.text = "   "  # SIGNL4 stores a note without text (e.g. a picture annotation)
    harness.state.signl4.annotate(s.alert_id, harness.world.users[1].mail, "a real one")
    with structlog.testing.capture_logs() as logs:
        await s.cycle(minutes=1)
    assert skipped(logs) == [f"poll:annotation:{blank.id}"]
    assert signl4_comments(s.comments()) == [f"[SIGNL4] {harness.world.users[1].display_name}: a real one"]
    finished = await s.runtime.store.pending_inbox("contoso", 10)
    assert finished == [], f"events left pending: {[e.event_id for e in finished]}"
    await s.connector.run_once(datetime.now(UTC) + timedelta(minutes=2))
    assert len(signl4_comments(s.comments())) == 1
