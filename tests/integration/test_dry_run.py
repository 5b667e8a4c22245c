"""``run --dry-run`` and the console preview: the connector's real poll against the emulated Sentinel, rendered as
the phone shows it; nothing reaches SIGNL4 and nothing is written to the store."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from console_access import console_client, console_for
from integration_harness import Harness
from sentinel_signl4.domain import external_id_for
from sentinel_signl4.pause_ops import new_pause
from sentinel_signl4.runner import dry_run

OVERRIDES = {"filter": {"severities": ["High"], "max_age": "15m"}}


def seed(harness: Harness, title: str) -> str:
    incident = harness.state.sentinel.create_incident(harness.world.workspace, title=title, severity="High",
                                                      created=datetime.now(UTC) - timedelta(minutes=2))
    return external_id_for("contoso", incident["id"])


def outbox_rows(harness: Harness) -> list[tuple[str, str]]:
    with sqlite3.connect(harness.tmp / "state.db") as conn:
        return conn.execute("SELECT key, state FROM outbox ORDER BY key").fetchall()


async def test_dry_run_on_a_first_run_prints_what_would_page_and_writes_nothing(harness: Harness) -> None:
    seed(harness, "Impossible travel <dry>")
    lines: list[str] = []
    code = await dry_run(harness.config(overrides=OVERRIDES), lines.append)
    text = "\n".join(lines)
    assert code == 0, text
    assert "previewing against an empty one" in text
    assert "Impossible travel <dry>" in text and "would page" in text
    assert "╭" in text and "╯" in text  # the phone frame
    assert harness.alerts() == []
    db = harness.tmp / "state.db"
    if db.exists():  # opening may create an empty file, but no table is written into it
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall() == []


async def test_dry_run_and_console_preview_leave_out_what_was_paged_and_show_windows(harness: Harness) -> None:
    paged_before = seed(harness, "Already paged")
    runtime = await harness.runtime(overrides=OVERRIDES)
    await runtime.connectors["contoso"].runtime.run_once(datetime.now(UTC))
    assert len(harness.alerts(paged_before)) == 1
    new = seed(harness, "Mass file deletion")
    now = datetime.now(UTC)
    await runtime.store.add_pause(new_pause(runtime.config, connector="contoso", severities=[], mode="hold",
                                            ends_at=now + timedelta(hours=1), reason="", by="ada", now=now))
    rows_before = outbox_rows(harness)
    lines: list[str] = []
    assert await dry_run(harness.config(overrides=OVERRIDES), lines.append) == 0
    text = "\n".join(lines)
    assert "Mass file deletion" in text and "hold (maintenance window p-" in text
    assert "Already paged" not in text
    async with console_client(console_for(runtime)) as console:
        page = await console.get("/connectors/contoso/preview")
    assert page.status_code == 200
    assert "Mass file deletion" in page.text and "would be held and paged when it ends" in page.text
    assert '<pre class="phone">' in page.text and "Already paged" not in page.text
    assert outbox_rows(harness) == rows_before
    assert harness.alerts(new) == []
