"""Property test of the webhook receiver: whatever arrives (bytes, JSON of any shape, odd headers, odd paths,
other methods), the answer is a 4xx, or a 2xx for a well-formed event on a valid URL; a rejected request never
changes the inbox, and an accepted one adds exactly the event it carried."""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import event as hypothesis_event
from hypothesis import strategies as st

from sentinel_signl4.web.webhook import IGNORED_EVENT_TYPES, MAX_EVENT_ID_CHARS, WEBHOOK_PREFIX, webhook_path
from web_world import ALPHA_TOKEN, BRAVO_TOKEN, POLL_TOKEN, event, inbox_rows

VALID_PATHS = {webhook_path("alpha", ALPHA_TOKEN): "alpha", webhook_path("bravo", BRAVO_TOKEN): "bravo"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=15,
)
ids = st.one_of(
    st.text(max_size=MAX_EVENT_ID_CHARS + 20), st.uuids().map(str),
    st.integers(MAX_EVENT_ID_CHARS - 2, 200_000).map(lambda n: "i" * n),
    st.integers(min_value=-(10**40), max_value=10**40), st.booleans(), st.none(), st.floats(),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
event_types = st.one_of(
    st.sampled_from([1, 200, 201, 202, 203, 300, 301, 302, 303]), st.integers(min_value=-(10**30), max_value=10**30),
    st.text(max_size=5), st.none(), st.booleans(), st.floats(allow_nan=False),
)
event_like = st.fixed_dictionaries(
    {}, optional={"id": ids, "eventType": event_types, "alert": json_values, "user": json_values},
).map(lambda d: json.dumps(d).encode())


@st.composite
def spliced(draw: st.DrawFn) -> bytes:
    """A real SIGNL4 event with a random slice replaced by random bytes."""
    raw = json.dumps(event(event_id=draw(st.uuids()).hex)).encode()
    start = draw(st.integers(0, len(raw)))
    end = draw(st.integers(start, len(raw)))
    return raw[:start] + draw(st.binary(max_size=16)) + raw[end:]


# A small id pool next to random ones, so that repeats (duplicates) happen too.
real_events = st.builds(lambda i, t: json.dumps(event(event_id=i, event_type=t)).encode(),
                        st.sampled_from(["dup-1", "dup-2", 7]) | st.uuids().map(str),
                        st.sampled_from([1, 200, 201, 202, 203, 300, 999]))
garbage = st.one_of(
    st.binary(max_size=512), json_values.map(lambda v: json.dumps(v).encode()), spliced(),
    st.sampled_from([b"NaN", b'{"id": "x", "eventType": 201, "v": Infinity}', b"[" * 5000, b"\x00" * 8,
                     b'{"id": "x", "eventType": 201, "v": "\\ud800"}', b'{"id": "\\u0000", "eventType": 201}']),
)
printable = st.text(alphabet=string.ascii_letters + string.digits + string.punctuation + " ", max_size=40)
valid_paths = st.sampled_from(sorted(VALID_PATHS))
bad_paths = st.one_of(
    st.builds(webhook_path, st.sampled_from(["alpha", "bravo", "charlie", "delta", "echo", "nosuch", ""]), printable),
    st.just(webhook_path("charlie", POLL_TOKEN)),
    printable.map(lambda text: f"{WEBHOOK_PREFIX}/{quote(text, safe='/')}"),
)
bad_headers = st.dictionaries(
    st.sampled_from(["content-type", "content-length", "content-encoding", "x-s4-anything", "accept"]),
    printable | st.integers(0, 2**70).map(str), min_size=1, max_size=3,
)
bad_methods = st.sampled_from(["GET", "PUT", "PATCH", "DELETE"])
ASPECTS = ("method", "path", "body", "headers")


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, bytes, dict[str, str]]:
    """A delivery SIGNL4 could send, with none, one or all of its aspects replaced by something hostile (so that
    valid deliveries, and near misses of them, are common rather than a lucky draw)."""
    broken = draw(st.sampled_from([(), *((aspect,) for aspect in ASPECTS), ASPECTS]))
    method = draw(bad_methods) if "method" in broken else "POST"
    path = draw(bad_paths) if "path" in broken else draw(valid_paths)
    body = draw(st.one_of(event_like, garbage)) if "body" in broken else draw(real_events)
    headers = draw(bad_headers) if "headers" in broken else {}
    return method, path, body, headers


def is_event(body: bytes) -> bool:
    """Independent statement of what a storable event is: a JSON object with a usable id and an integer type."""
    try:
        parsed: Any = json.loads(body)
    except (ValueError, RecursionError):
        return False
    if not isinstance(parsed, dict):
        return False
    raw_id, event_type = parsed.get("id"), parsed.get("eventType")
    good_id = (isinstance(raw_id, str) and raw_id.strip() != "" and len(raw_id) <= MAX_EVENT_ID_CHARS) or (
        isinstance(raw_id, int) and not isinstance(raw_id, bool))
    return good_id and isinstance(event_type, int) and not isinstance(event_type, bool)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=requests())
async def test_receiver_answers_4xx_or_2xx_and_only_an_accepted_event_changes_the_inbox(
        client: httpx.AsyncClient, db_path: Path, request: tuple[str, str, bytes, dict[str, str]]) -> None:
    method, path, body, extra_headers = request
    before = inbox_rows(db_path)
    response = await client.request(method, path, content=body, headers=extra_headers)
    after = inbox_rows(db_path)
    hypothesis_event(f"{method} {response.status_code} {response.text[:30]}")

    assert 200 <= response.status_code < 500, response.text
    if method != "POST":
        assert response.status_code in (404, 405)
    elif path not in VALID_PATHS:
        assert response.status_code == 404
    if response.status_code >= 400:
        assert after == before
        return
    assert is_event(body), body
    status = response.json()["status"]
    if status == "accepted":
        assert response.status_code == 202
        [new] = [row for row in after if row not in before]
        assert len(after) == len(before) + 1
        assert new.connector == VALID_PATHS[path]
        assert new.payload == json.loads(body)
        assert new.event_id == str(json.loads(body)["id"])
    else:
        assert (response.status_code, status) in ((200, "duplicate"), (202, "ignored"))
        assert after == before
        if status == "ignored":
            assert json.loads(body)["eventType"] in IGNORED_EVENT_TYPES
