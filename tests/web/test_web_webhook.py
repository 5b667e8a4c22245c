"""The SIGNL4 webhook receiver: every answer in the table of web/webhook.py, and that only 202 "accepted" writes."""

from __future__ import annotations

import hmac
import io
import json
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from sentinel_signl4.web import webhook as webhook_module
from sentinel_signl4.web.webhook import WEBHOOK_PREFIX, webhook_path
from web_world import (
    ALPHA_TOKEN,
    BRAVO_TOKEN,
    DISABLED_TOKEN,
    NOW,
    OFF_TOKEN,
    POLL_TOKEN,
    SECRETS,
    Harness,
    alpha_path,
    event,
    inbox_rows,
)

MiB = 1024 * 1024


def metric(harness: Harness, connector: str, outcome: str) -> float:
    value = harness.metrics.registry.get_sample_value(
        "s4s_webhook_events_total", {"connector": connector, "outcome": outcome})
    return value or 0.0


# -- accepted and duplicates --------------------------------------------------------------------------------------
async def test_valid_event_is_written_to_the_inbox_and_answered_202(client: httpx.AsyncClient, db_path: Path,
                                                                     harness: Harness) -> None:
    body = event()
    response = await client.post(alpha_path(), json=body)
    assert response.status_code == 202
    assert response.json() == {"status": "accepted"}
    rows = inbox_rows(db_path)
    assert [(r.connector, r.event_id, r.state) for r in rows] == [("alpha", body["id"], "pending")]
    assert rows[0].payload == body
    stored = await harness.store.pending_inbox("alpha", 10)
    assert stored[0].received_at == NOW
    assert metric(harness, "alpha", "accepted") == 1


async def test_repeat_of_the_same_id_is_answered_200_duplicate_and_changes_nothing(
        client: httpx.AsyncClient, db_path: Path, harness: Harness) -> None:
    first = event(event_id="same-id", alert={"statusCode": 2})
    assert (await client.post(alpha_path(), json=first)).status_code == 202
    before = inbox_rows(db_path)
    # At-least-once delivery: the repeat may even differ; the first one stands.
    repeat = await client.post(alpha_path(), json=event(event_id="same-id", alert={"statusCode": 4}))
    assert repeat.status_code == 200
    assert repeat.json() == {"status": "duplicate"}
    assert inbox_rows(db_path) == before
    assert metric(harness, "alpha", "duplicate") == 1


async def test_the_same_id_for_another_connector_is_a_different_event(client: httpx.AsyncClient,
                                                                       db_path: Path) -> None:
    assert (await client.post(alpha_path(), json=event(event_id="same-event-id"))).status_code == 202
    both = await client.post(webhook_path("bravo", BRAVO_TOKEN), json=event(event_id="same-event-id"))
    assert both.status_code == 202
    assert [(r.connector, r.event_id) for r in inbox_rows(db_path)] == [("alpha", "same-event-id"),
                                                                        ("bravo", "same-event-id")]


async def test_integer_id_is_stored_as_its_decimal_string(client: httpx.AsyncClient, db_path: Path) -> None:
    assert (await client.post(alpha_path(), json=event(event_id=12345))).status_code == 202
    assert [r.event_id for r in inbox_rows(db_path)] == ["12345"]


async def test_unknown_event_type_is_stored_for_the_processor_to_decide(client: httpx.AsyncClient,
                                                                        db_path: Path) -> None:
    assert (await client.post(alpha_path(), json=event(event_type=999))).status_code == 202
    assert len(inbox_rows(db_path)) == 1


@pytest.mark.parametrize("event_type", [1, 300, 301, 302, 303])
async def test_test_ping_and_duty_events_are_acknowledged_but_not_stored(
        client: httpx.AsyncClient, db_path: Path, harness: Harness, event_type: int) -> None:
    response = await client.post(alpha_path(), json={"eventType": event_type, "id": f"duty-{event_type}",
                                                     "team": {"id": "t"}})
    assert response.status_code == 202
    assert response.json() == {"status": "ignored"}
    assert inbox_rows(db_path) == []
    assert metric(harness, "alpha", "ignored") == 1


async def test_content_type_is_not_required(client: httpx.AsyncClient, db_path: Path) -> None:
    response = await client.post(alpha_path(), content=json.dumps(event()).encode(),
                                 headers={"Content-Type": "text/plain"})
    assert response.status_code == 202
    assert len(inbox_rows(db_path)) == 1


# -- not found: one answer for every authentication failure ----------------------------------------------------------
NOT_FOUND_PATHS = {
    "unknown connector, alpha's token": webhook_path("nosuch", ALPHA_TOKEN),
    "wrong token": webhook_path("alpha", "wrong-token"),
    "token prefix": webhook_path("alpha", ALPHA_TOKEN[:-1]),
    "token with a suffix": webhook_path("alpha", ALPHA_TOKEN + "x"),
    "another connector's token": webhook_path("alpha", BRAVO_TOKEN),
    "upper-case connector": webhook_path("ALPHA", ALPHA_TOKEN),
    "missing token": f"{WEBHOOK_PREFIX}/alpha",
    "empty token": f"{WEBHOOK_PREFIX}/alpha/",
    "token with a trailing slash": webhook_path("alpha", ALPHA_TOKEN) + "/",
    "nothing after the prefix": f"{WEBHOOK_PREFIX}/",
    "bare prefix": WEBHOOK_PREFIX,
    "sync.mode poll": webhook_path("charlie", POLL_TOKEN),
    "sync.mode off": webhook_path("foxtrot", OFF_TOKEN),
    "connector disabled": webhook_path("echo", DISABLED_TOKEN),
    "no webhook_token configured, empty token": f"{WEBHOOK_PREFIX}/delta/",
    "no webhook_token configured, some token": webhook_path("delta", "anything"),
    "token in the query instead": f"{WEBHOOK_PREFIX}/alpha?token={ALPHA_TOKEN}",
}


@pytest.mark.parametrize("path", NOT_FOUND_PATHS.values(), ids=NOT_FOUND_PATHS.keys())
async def test_every_authentication_failure_gets_the_same_404_and_writes_nothing(
        client: httpx.AsyncClient, db_path: Path, path: str) -> None:
    reference = await client.post(webhook_path("nosuch", "nosuch"), json=event())
    response = await client.post(path, json=event())
    assert response.status_code == 404
    # Byte for byte the same answer as for a connector that does not exist: names cannot be probed.
    assert response.content == reference.content == b'{"error":"not found"}'
    assert response.headers == reference.headers
    assert inbox_rows(db_path) == []


async def test_not_found_is_counted_without_taking_label_values_from_the_url(client: httpx.AsyncClient,
                                                                              harness: Harness) -> None:
    await client.post(webhook_path("attacker-chosen-name", "x"), json=event())
    await client.post(webhook_path("alpha", "wrong"), json=event())
    assert metric(harness, "-", "not_found") == 1
    assert metric(harness, "alpha", "not_found") == 1
    exposition = harness.metrics.exposition().decode()
    assert "attacker-chosen-name" not in exposition
    assert not any(secret in exposition for secret in SECRETS)


async def test_tokens_are_compared_in_constant_time_even_for_unknown_connectors(
        client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every request makes exactly one ``hmac.compare_digest`` call on equal-length digests, whether the connector
    exists, takes no webhooks, or the token is right, wrong, empty or of another length."""
    calls: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(webhook_module.hmac, "compare_digest", spy)
    paths = [alpha_path(), webhook_path("alpha", "short"), webhook_path("alpha", "x" * 500),
             webhook_path("nosuch", ALPHA_TOKEN), webhook_path("charlie", POLL_TOKEN), f"{WEBHOOK_PREFIX}/delta/"]
    statuses = []
    for index, path in enumerate(paths):
        calls.clear()
        statuses.append((await client.post(path, json=event(event_id=f"e{index}"))).status_code)
        assert calls == [(32, 32)], path
    assert statuses == [202, 404, 404, 404, 404, 404]


# -- methods ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
async def test_other_methods_get_405(client: httpx.AsyncClient, db_path: Path, method: str) -> None:
    response = await client.request(method, alpha_path(), content=json.dumps(event()).encode())
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert inbox_rows(db_path) == []


# -- size --------------------------------------------------------------------------------------------------------
def padded_event(size: int) -> bytes:
    """A valid event padded with whitespace to exactly ``size`` bytes."""
    raw = json.dumps(event()).encode()
    return raw + b" " * (size - len(raw))


async def test_body_of_exactly_max_body_bytes_is_accepted(client: httpx.AsyncClient, db_path: Path) -> None:
    response = await client.post(alpha_path(), content=padded_event(MiB))
    assert response.status_code == 202
    assert len(inbox_rows(db_path)) == 1


async def test_body_over_max_body_bytes_gets_413(client: httpx.AsyncClient, db_path: Path,
                                                 harness: Harness) -> None:
    response = await client.post(alpha_path(), content=padded_event(MiB + 1))
    assert response.status_code == 413
    assert inbox_rows(db_path) == []
    assert metric(harness, "alpha", "too_large") == 1


async def test_declared_content_length_over_the_limit_is_refused_before_reading(
        client: httpx.AsyncClient, db_path: Path) -> None:
    """The body itself is a small valid event: only the declared length can have caused the 413."""
    small = json.dumps(event()).encode()
    response = await client.post(alpha_path(), content=small, headers={"Content-Length": str(MiB + 1)})
    assert response.status_code == 413
    huge = await client.post(alpha_path(), content=small, headers={"Content-Length": "9" * 40})
    assert huge.status_code == 413
    assert inbox_rows(db_path) == []


async def test_streamed_body_without_content_length_is_cut_off_at_the_limit(
        client: httpx.AsyncClient, db_path: Path) -> None:
    chunk = b" " * (64 * 1024)
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"id": "x", "eventType": 201, "pad": "'
        for _ in range(16 * 8):  # 8 MiB if read to the end
            sent += 1
            yield chunk

    response = await client.post(alpha_path(), content=endless())
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    # Reading stopped at the first chunk past 1 MiB instead of buffering all 8 MiB.
    assert sent <= MiB // len(chunk) + 1
    assert inbox_rows(db_path) == []


@pytest.mark.parametrize("declared", [b"abc", b"-1", b"1e3", "²".encode("latin-1"), b"1 2", b"0x10"])
async def test_invalid_content_length_gets_400(client: httpx.AsyncClient, db_path: Path, declared: bytes) -> None:
    response = await client.post(alpha_path(), content=b"{}", headers={"Content-Length": declared})
    assert response.status_code == 400
    assert inbox_rows(db_path) == []


# -- malformed bodies -----------------------------------------------------------------------------------------------
def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


MALFORMED: dict[str, bytes] = {
    "empty body": b"",
    "not JSON": b"hello",
    "truncated JSON": dumps(event())[:-1],
    "invalid UTF-8": b'{"id": "\xff\xfe", "eventType": 201}',
    "UTF-8 BOM then garbage": b"\xef\xbb\xbf{",
    "array": dumps([event()]),
    "string": b'"id"',
    "number": b"201",
    "null": b"null",
    "empty object": b"{}",
    "id missing": dumps({"eventType": 201}),
    "id null": dumps(event(event_id=None)),
    "id true": dumps(event(event_id=True)),
    "id float": dumps(event(event_id=1.5)),
    "id empty": dumps(event(event_id="")),
    "id blank": dumps(event(event_id="   ")),
    "id too long": dumps(event(event_id="x" * 257)),
    "id huge integer": b'{"id": ' + b"9" * 300 + b', "eventType": 201}',
    "id beyond Python's digit limit": b'{"id": ' + b"9" * 5000 + b', "eventType": 201}',
    "id object": dumps(event(event_id={"a": 1})),
    "id list": dumps(event(event_id=["a"])),
    "eventType missing": dumps({"id": "x"}),
    "eventType string": dumps(event(event_type="201")),
    "eventType float": dumps(event(event_type=201.0)),
    "eventType true": dumps(event(event_type=True)),
    "eventType null": dumps(event(event_type=None)),
    "NaN": b'{"id": "x", "eventType": 201, "v": NaN}',
    "Infinity": b'{"id": "x", "eventType": 201, "v": -Infinity}',
    "float overflow": b'{"id": "x", "eventType": 201, "v": 1e400}',
    "NUL in a value": b'{"id": "x", "eventType": 201, "v": "a\\u0000b"}',
    "NUL in a key": b'{"id": "x", "eventType": 201, "a\\u0000": 1}',
    "lone surrogate": b'{"id": "x", "eventType": 201, "v": "\\ud800"}',
    "nested 40 deep": b'{"id": "x", "eventType": 201, "v": ' + b"[" * 40 + b"]" * 40 + b"}",
    "nested 100000 deep": b'{"id": "x", "eventType": 201, "v": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
}


NOT_UTF8: dict[str, bytes] = {
    "UTF-16 LE with BOM": dumps(event()).decode().encode("utf-16"),
    "UTF-16 BE with BOM": b"\xfe\xff" + dumps(event()).decode().encode("utf-16-be"),
    "UTF-16 LE without BOM": dumps(event()).decode().encode("utf-16-le"),
    "UTF-16 BE without BOM": dumps(event()).decode().encode("utf-16-be"),
    "UTF-32 with BOM": dumps(event()).decode().encode("utf-32"),
    "UTF-32 BE without BOM": dumps(event()).decode().encode("utf-32-be"),
    "Latin-1 bytes": json.dumps(event(text="café"), ensure_ascii=False).encode("latin-1"),
}
MALFORMED.update(NOT_UTF8)


@pytest.mark.parametrize("body", NOT_UTF8.values(), ids=NOT_UTF8.keys())
async def test_a_body_not_in_utf8_gets_400_saying_so(client: httpx.AsyncClient, db_path: Path, body: bytes) -> None:
    response = await client.post(alpha_path(), content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "UTF-8" in response.json()["error"]
    assert inbox_rows(db_path) == []


async def test_a_utf8_body_with_a_byte_order_mark_is_accepted(client: httpx.AsyncClient, db_path: Path) -> None:
    body = event(text="café")
    response = await client.post(alpha_path(), content=b"\xef\xbb\xbf" + json.dumps(body).encode())
    assert response.status_code == 202
    assert inbox_rows(db_path)[0].payload == body


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_body_gets_400_and_writes_nothing(client: httpx.AsyncClient, db_path: Path,
                                                          harness: Harness, body: bytes) -> None:
    response = await client.post(alpha_path(), content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert set(response.json()) == {"error"}
    assert inbox_rows(db_path) == []
    assert metric(harness, "alpha", "malformed") == 1


async def test_extra_nesting_within_the_limit_and_unicode_are_accepted(client: httpx.AsyncClient,
                                                                       db_path: Path) -> None:
    body = event(event_id="ünïcødé-✓", note={"a": [[[["deep but fine"]]]]}, text="日本語 🚨")
    assert (await client.post(alpha_path(), json=body)).status_code == 202
    assert inbox_rows(db_path)[0].payload == body


async def test_store_failure_is_answered_503_so_the_sender_may_retry(
        client: httpx.AsyncClient, db_path: Path, harness: Harness, monkeypatch: pytest.MonkeyPatch,
        production_logs: io.StringIO) -> None:
    async def broken(_event: object) -> bool:
        raise OSError(f"disk full while writing for {ALPHA_TOKEN}")

    monkeypatch.setattr(harness.store, "add_inbox", broken)
    response = await client.post(alpha_path(), json=event())
    assert response.status_code == 503
    assert ALPHA_TOKEN not in response.text
    assert metric(harness, "alpha", "store_unavailable") == 1
    [line] = [json.loads(line) for line in production_logs.getvalue().splitlines()]
    assert line["event"] == "webhook_store_failed"
    assert line["error"] == "OSError: disk full while writing for ***"
    monkeypatch.undo()
    assert inbox_rows(db_path) == []


async def test_no_log_line_contains_a_token_or_a_webhook_path(
        client: httpx.AsyncClient, captured_logs: list[MutableMapping[str, Any]]) -> None:
    await client.post(alpha_path(), json=event())
    await client.post(alpha_path(), json=event())
    await client.post(alpha_path(), content=b"not json")
    await client.post(alpha_path(), content=padded_event(MiB + 1))
    await client.post(webhook_path("alpha", ALPHA_TOKEN + "x"), json=event())
    await client.post(webhook_path("nosuch", BRAVO_TOKEN), json=event())
    text = repr(captured_logs)
    assert {entry["event"] for entry in captured_logs} == {
        "webhook_event_accepted", "webhook_event_duplicate", "webhook_event_rejected"}
    assert WEBHOOK_PREFIX not in text
    assert not any(secret in text for secret in SECRETS)
