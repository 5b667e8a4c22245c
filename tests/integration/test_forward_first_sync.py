"""First sync: every matching incident gets exactly one Signl and the tag; the rest are skipped with a reason."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from integration_harness import Harness
from sentinel_signl4.domain import ActionKind, SkipReason, external_id_for


async def test_first_sync_raises_one_signl_per_matching_incident_and_tags_it(harness: Harness) -> None:
    now = datetime.now(UTC)
    before = {i["name"]: i["properties"] for i in harness.incidents()}
    expected = {
        name for name, p in before.items()
        if p["status"] == "New" and "SIGNL4" not in [label["labelName"] for label in p["labels"]]
        and (now - datetime.fromisoformat(p["createdTimeUtc"])).total_seconds() <= 24 * 3600
    }
    runtime = await harness.runtime()
    connector = runtime.connectors["contoso"].runtime
    report = await connector.run_once(now)
    assert connector.health.error is None, connector.health.error
    alerts = harness.alerts()
    assert len(alerts) == len(report.enqueued) == report.done[ActionKind.RAISE_SIGNL]
    by_external = Counter(a.external_id for a in alerts)
    assert all(count == 1 for count in by_external.values())
    # the phishing incident was labelled before (e.g. by the hosted connector)
    assert SkipReason.ALREADY_TAGGED in {reason for _, reason in report.skipped}
    for incident in report.enqueued:
        ext = external_id_for("contoso", incident.resource_id)
        assert by_external[ext] == 1
        props = harness.incident(incident.name)["properties"]
        assert "SIGNL4" in [label["labelName"] for label in props["labels"]]
    assert {i.name for i in report.enqueued} == expected
    assert len(expected) >= 3


async def test_second_cycle_pages_nobody(harness: Harness) -> None:
    runtime = await harness.runtime()
    connector = runtime.connectors["contoso"].runtime
    await connector.run_once(datetime.now(UTC))
    first = len(harness.alerts())
    report = await connector.run_once(datetime.now(UTC))
    assert len(harness.alerts()) == first
    assert report.enqueued == []
