"""The status page counts rows an operator discarded apart from the dead letters, and lists them no more."""

from __future__ import annotations

import httpx

from store_fixtures import make_action
from web_world import NOW, Harness


async def test_a_discarded_row_is_counted_as_discarded_not_as_dead(console: httpx.AsyncClient,
                                                                   harness: Harness) -> None:
    store = harness.store
    for key in ("d1", "d2"):
        await store.enqueue(make_action(key, "alpha"), NOW)
        await store.mark_dead(key, NOW, f"PermanentError: HTTP 400 ({key})")
    await store.discard_actions(NOW, "handled by phone", keys=["d1"], by="alice")
    alpha = {c["name"]: c for c in (await console.get("/status.json")).json()["connectors"]}["alpha"]
    assert alpha["outbox"]["dead"] == 1 and alpha["outbox"]["discarded"] == 1
    assert [d["reason"] for d in alpha["dead_actions"]] == ["PermanentError: HTTP 400 (d2)"]
    page = (await console.get("/status")).text
    assert "<th>discarded</th>" in page and "(d1)" not in page
