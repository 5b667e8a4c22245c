"""How spans of time read: one unit for an age, two for a configured limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sentinel_signl4.domain.spans import ago_text, span_text


@pytest.mark.parametrize(("seconds", "one", "two"), [
    (0, "0 s", "0 s"),
    (40.9, "40 s", "40 s"),
    (300, "5 min", "5 min"),
    (5400, "1 h", "1 h 30 min"),
    (7200, "2 h", "2 h"),
    (86400 + 3 * 3600, "1 d", "1 d 3 h"),
    (86400 + 300, "1 d", "1 d"),  # adjacent units only: the minutes under a day are not shown as "1 d 5 min"
    (-5, "0 s", "0 s"),
])
def test_span_text(seconds: float, one: str, two: str) -> None:
    assert span_text(seconds) == one
    assert span_text(seconds, parts=2) == two


def test_ago_text() -> None:
    now = datetime(2026, 12, 3, tzinfo=UTC)
    assert ago_text(None, now) == "never"
    assert ago_text(now + timedelta(seconds=5), now) == "just now"
    assert ago_text(now - timedelta(minutes=12, seconds=10), now) == "12 min ago"
